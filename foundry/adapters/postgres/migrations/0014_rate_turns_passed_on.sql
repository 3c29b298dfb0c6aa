-- Rate turns passed on: a job cancelled or deleted while it waited for its key's rate no
-- longer takes its turn with it.
--
-- admit (0001's) gave each waiting job a turn of its own, one interval after the last handed
-- out (limit_keys.tail_ms), so with '1/h' and ten jobs waiting, the tenth waited nine hours
-- even when the eight before it were cancelled. Now one job at a time holds the key's next
-- turn (limit_keys.turn, delayed until next_ms); the others wait in line (reserved, parked
-- like a job waiting for a slot: run_at far ahead, the order in parked). A start hands the
-- turn to the first in line (next_in_line), and so does the holder leaving unclaimed,
-- cancelled or deleted by any statement (the jobs_turn_* triggers).

ALTER TABLE limit_keys DROP COLUMN tail_ms;
ALTER TABLE limit_keys ADD COLUMN turn text;
-- A job delayed to a turn of its own before this migration (its run time is that turn, its
-- own having passed when a claim met it) is due again now: its next claim meets the key
-- afresh, holding the turn or in line, so the turns of jobs cancelled before it pass on too.
-- (reserved means "in line" from here on.)
UPDATE jobs SET reserved = false,
       run_at = CASE WHEN state = 'delayed' THEN least(run_at, clock_timestamp()) ELSE run_at END
 WHERE reserved;

-- next_in_line: key p_key of p_queue has no job holding its turn (the caller holds the key's
-- row): the first job in line holds it now, delayed until the key's next start. A job row
-- locked here is being cancelled or deleted (no claim takes a parked row): it is skipped, as
-- waiting for it while holding the key's row could deadlock with the trigger its removal
-- runs, which takes the key's row (so does free_slot).
CREATE FUNCTION next_in_line(p_queue text, p_key text) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_next text;
BEGIN
    SELECT id INTO v_next FROM jobs
     WHERE queue = p_queue AND limit_key = p_key AND parked IS NOT NULL AND reserved
       AND state = 'delayed'
     ORDER BY parked LIMIT 1 FOR UPDATE SKIP LOCKED;
    IF v_next IS NULL THEN
        UPDATE limit_keys SET turn = NULL WHERE queue = p_queue AND key = p_key;
        RETURN;
    END IF;
    UPDATE limit_keys SET turn = v_next WHERE queue = p_queue AND key = p_key;
    UPDATE jobs j
       SET reserved = false, parked = NULL, parked_from = NULL,
           run_at = timestamptz 'epoch' + k.next_ms * interval '1 millisecond'
      FROM limit_keys k
     WHERE j.queue = p_queue AND j.id = v_next AND k.queue = p_queue AND k.key = p_key;
    PERFORM wake(ARRAY[p_queue]);
END $$;

-- admit: may job p_id (limit key p_key) start now? true: it takes a slot of its key (and its
-- rate turn, which then goes to the first in line); false: its key runs p_concurrency jobs
-- already, so it is parked (delayed until a slot frees), or another job holds its key's rate
-- turn, so it waits in line (reserved and parked), or the key's next start is to come, so it
-- holds the turn, delayed until then. The rules of the domain's rate_turn and the memory
-- queue's Limiter. p_reserved is no longer read (the key's row says who holds the turn).
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
               SET state = 'delayed',
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
    UPDATE jobs SET reserved = false, holds_slot = p_concurrency IS NOT NULL
     WHERE queue = p_queue AND id = p_id;
    IF p_concurrency IS NOT NULL THEN
        UPDATE limit_keys SET running = running + 1 WHERE queue = p_queue AND key = p_key;
    END IF;
    RETURN true;
END $$;

-- free_slot: as 0001's, for jobs parked for a slot only (not those in line for a turn).
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
        UPDATE jobs SET state = 'ready', run_at = parked_from, parked = NULL, parked_from = NULL
         WHERE queue = p_queue AND id = v_next;
        PERFORM wake(ARRAY[p_queue]);
    END IF;
END $$;

-- pass_turn_on: a pending job left unclaimed (cancelled or deleted): if it held its key's
-- rate turn, the first job in line takes the turn.
CREATE FUNCTION pass_turn_on() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    PERFORM 1 FROM limit_keys
     WHERE queue = OLD.queue AND key = OLD.limit_key AND turn = OLD.id FOR UPDATE;
    IF FOUND THEN
        PERFORM next_in_line(OLD.queue, OLD.limit_key);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER jobs_turn_deleted AFTER DELETE ON jobs FOR EACH ROW
    WHEN (OLD.limit_interval_ms IS NOT NULL AND OLD.state IN ('ready', 'delayed'))
    EXECUTE FUNCTION pass_turn_on();
CREATE TRIGGER jobs_turn_cancelled AFTER UPDATE OF state ON jobs FOR EACH ROW
    WHEN (OLD.limit_interval_ms IS NOT NULL AND OLD.state IN ('ready', 'delayed')
          AND NEW.state = 'cancelled')
    EXECUTE FUNCTION pass_turn_on();
