-- A slot passed on only by the job a freed slot made ready.
--
-- A ready job leaving unclaimed (cancelled or deleted) made the first parked job of its key
-- ready whenever the key ran fewer jobs than its concurrency, also when no freed slot had
-- made the leaving job ready: then two jobs were ready for one slot, and the one the claim
-- met second was parked again, behind the jobs parked after it. Now free_slot leaves
-- `parked` set on the job it makes ready (its mark: a freed slot made it ready), admit
-- clears it on every claim that does not park the job, and the statements that cancel or
-- delete a ready job pass the slot on only for a job with the mark (statements.py).

-- admit: as 0014's, clearing `parked` (a freed slot's mark) unless it parks the job.
CREATE OR REPLACE FUNCTION admit(
    p_queue text, p_id text, p_key text, p_concurrency integer, p_interval_ms bigint,
    p_reserved boolean, p_now timestamptz
) RETURNS boolean
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_now_ms bigint := floor(extract(epoch FROM p_now) * 1000)::bigint;
    k limit_keys%ROWTYPE;
BEGIN
    -- The upsert locks the key's row, also one the upkeep is about to remove.
    INSERT INTO limit_keys AS l (queue, key) VALUES (p_queue, p_key)
    ON CONFLICT (queue, key) DO UPDATE SET running = l.running
    RETURNING * INTO k;
    IF p_concurrency IS NOT NULL AND k.running >= p_concurrency THEN
        UPDATE jobs
           SET state = 'delayed', parked = nextval('job_seq'), parked_from = run_at,
               run_at = timestamptz '9999-12-31 00:00:00+00'
         WHERE queue = p_queue AND id = p_id;
        RETURN false;
    END IF;
    IF p_interval_ms IS NOT NULL THEN
        IF k.turn IS NOT NULL AND k.turn <> p_id THEN
            UPDATE jobs
               SET state = 'delayed', reserved = true, parked = nextval('job_seq'),
                   parked_from = run_at, run_at = timestamptz '9999-12-31 00:00:00+00'
             WHERE queue = p_queue AND id = p_id;
            RETURN false;
        ELSIF k.next_ms > v_now_ms THEN
            UPDATE limit_keys SET turn = p_id WHERE queue = p_queue AND key = p_key;
            UPDATE jobs
               SET state = 'delayed', parked = NULL,
                   run_at = timestamptz 'epoch' + k.next_ms * interval '1 millisecond'
             WHERE queue = p_queue AND id = p_id;
            RETURN false;
        END IF;
        -- The job that held the turn keeps the key's schedule: a late claim does not push
        -- the turns after it back.
        UPDATE limit_keys
           SET next_ms = CASE WHEN k.turn IS NULL THEN v_now_ms
                              ELSE greatest(k.next_ms, v_now_ms - p_interval_ms) END
                         + p_interval_ms,
               turn = NULL
         WHERE queue = p_queue AND key = p_key;
        IF k.turn IS NOT NULL THEN
            PERFORM next_in_line(p_queue, p_key);
        END IF;
    END IF;
    UPDATE jobs SET reserved = false, parked = NULL, holds_slot = p_concurrency IS NOT NULL
     WHERE queue = p_queue AND id = p_id;
    IF p_concurrency IS NOT NULL THEN
        UPDATE limit_keys SET running = running + 1 WHERE queue = p_queue AND key = p_key;
    END IF;
    RETURN true;
END $$;

-- free_slot: as 0014's, leaving `parked` set on the job it makes ready (the mark); a parked
-- row locked by its cancel or delete is skipped (see next_in_line).
CREATE OR REPLACE FUNCTION free_slot(p_queue text, p_id text) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_key text;
    v_next text;
BEGIN
    UPDATE jobs SET holds_slot = false
     WHERE queue = p_queue AND id = p_id AND holds_slot
    RETURNING limit_key INTO v_key;
    IF v_key IS NULL THEN
        RETURN;
    END IF;
    UPDATE limit_keys SET running = greatest(running - 1, 0)
     WHERE queue = p_queue AND key = v_key;
    SELECT id INTO v_next FROM jobs
     WHERE queue = p_queue AND limit_key = v_key AND parked IS NOT NULL AND NOT reserved
       AND state = 'delayed'
     ORDER BY parked LIMIT 1 FOR UPDATE SKIP LOCKED;
    IF v_next IS NOT NULL THEN
        UPDATE jobs SET state = 'ready', run_at = parked_from, parked_from = NULL
         WHERE queue = p_queue AND id = v_next;
        PERFORM wake(ARRAY[p_queue]);
    END IF;
END $$;
