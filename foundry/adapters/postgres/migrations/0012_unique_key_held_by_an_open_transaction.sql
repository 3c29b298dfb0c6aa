-- A unique key taken by a transaction still open when another enqueue asks for it.
--
-- enqueue (0010's) looked for a live holder of the key, found none (the holder's row is not
-- visible before its transaction commits, and a plain SELECT does not wait for it), then
-- inserted the key with ON CONFLICT DO UPDATE: that insert waited for the holder's commit
-- and then overwrote the key, so both jobs were stored. The window is a statement for two
-- plain dispatches, and the caller's whole transaction for dispatch(..., connection=).
-- Now the update takes only a key whose time is up; a live one (the holder that committed
-- meanwhile, its row locked by the insert) is the answer, as a duplicate. A caller in
-- REPEATABLE READ or SERIALIZABLE gets a serialization failure there instead, to retry.
--
-- enqueue_batches calls enqueue, so batches and chains keep the promise too.

CREATE OR REPLACE FUNCTION enqueue(
    p_queues text[], p_ids text[], p_priorities integer[], p_at timestamptz[],
    p_delays interval[], p_max_attempts integer[], p_blobs bytea[], p_unique_keys text[],
    p_unique_ttls interval[], p_unique_untils text[], p_after_failures text[],
    p_after_jobs integer[], p_after_ids text[], p_limit_keys text[],
    p_limit_concurrency integer[], p_limit_interval_ms bigint[], p_keep interval,
    p_max_dead integer, p_dead_age interval, p_now timestamptz
) RETURNS TABLE (i integer, existing text)
LANGUAGE plpgsql SET search_path FROM CURRENT SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
DECLARE
    v_now timestamptz := coalesce(p_now, clock_timestamp());
    v_run_at timestamptz;
    v_expires timestamptz;
    v_holder text;
    v_woken text[] := '{}';
    v_state text;
    v_pending text[];
    v_failed text;
    d record;
BEGIN
    IF coalesce(array_length(p_ids, 1), 0) = 0 THEN
        RETURN;
    END IF;
    PERFORM FROM unnest(p_queues) AS q(name)
     WHERE NOT EXISTS (SELECT FROM queues u WHERE u.name = q.name AND u.used);
    IF FOUND THEN
        INSERT INTO queues (name, used) SELECT DISTINCT unnest(p_queues), true ORDER BY 1
        ON CONFLICT DO NOTHING;
        UPDATE queues SET used = true WHERE name = ANY (p_queues) AND NOT used;
    END IF;
    FOR k IN 1 .. array_length(p_ids, 1) LOOP
        i := k;
        existing := NULL;
        v_run_at := greatest(coalesce(p_at[k], v_now + p_delays[k]), v_now);
        v_state := CASE WHEN v_run_at <= v_now THEN 'ready' ELSE 'delayed' END;
        IF p_unique_keys[k] IS NULL AND NOT k = ANY (p_after_jobs) THEN
            INSERT INTO jobs (queue, id, state, priority, seq, run_at, enqueued_at, max_attempts,
                              blob, unique_until, after_failure, limit_key, limit_concurrency,
                              limit_interval_ms)
            VALUES (p_queues[k], p_ids[k], v_state, p_priorities[k], nextval('job_seq'),
                    v_run_at, v_now, p_max_attempts[k], p_blobs[k], p_unique_untils[k],
                    p_after_failures[k], p_limit_keys[k], p_limit_concurrency[k],
                    p_limit_interval_ms[k])
            ON CONFLICT (id, queue) DO NOTHING;
            IF FOUND THEN
                IF v_state = 'ready' AND NOT p_queues[k] = ANY (v_woken) THEN
                    v_woken := v_woken || p_queues[k];
                END IF;
                RETURN NEXT;
                CONTINUE;
            END IF;
        END IF;
        SELECT j.expires_at INTO v_expires FROM jobs j
         WHERE j.queue = p_queues[k] AND j.id = p_ids[k];
        IF FOUND THEN
            IF v_expires IS NULL OR v_expires > v_now THEN
                RETURN NEXT;  -- stored already under this id
                CONTINUE;
            END IF;
            DELETE FROM jobs WHERE queue = p_queues[k] AND id = p_ids[k];
        END IF;
        IF p_unique_keys[k] IS NOT NULL THEN
            SELECT u.job_id INTO v_holder FROM unique_keys u
             WHERE u.queue = p_queues[k] AND u.key = p_unique_keys[k] AND u.expires_at > v_now
               FOR UPDATE;
            IF FOUND THEN
                existing := v_holder;
                RETURN NEXT;
                CONTINUE;
            END IF;
            INSERT INTO unique_keys (queue, key, job_id, expires_at)
            VALUES (p_queues[k], p_unique_keys[k], p_ids[k], v_now + p_unique_ttls[k])
            ON CONFLICT (queue, key) DO UPDATE
               SET job_id = excluded.job_id, expires_at = excluded.expires_at
             WHERE unique_keys.expires_at <= v_now;
            IF NOT FOUND THEN
                -- A holder committed while this insert waited on its row (locked now).
                SELECT u.job_id INTO existing FROM unique_keys u
                 WHERE u.queue = p_queues[k] AND u.key = p_unique_keys[k];
                RETURN NEXT;
                CONTINUE;
            END IF;
        END IF;
        v_pending := '{}';
        v_failed := NULL;
        IF k = ANY (p_after_jobs) THEN
            FOR d IN SELECT * FROM waits_for(p_queues[k], k, p_after_jobs, p_after_ids, v_now)
            LOOP
                IF d.state IN ('dead', 'cancelled') THEN
                    IF p_after_failures[k] <> 'run' THEN
                        v_failed := coalesce(v_failed, d.id);
                    END IF;
                ELSIF d.state <> 'completed' AND NOT d.id = ANY (v_pending) THEN
                    v_pending := v_pending || d.id;
                END IF;
            END LOOP;
            IF cardinality(v_pending) > 0 OR v_failed IS NOT NULL THEN
                v_state := 'waiting';
            END IF;
        END IF;
        INSERT INTO jobs (queue, id, state, priority, seq, run_at, enqueued_at, max_attempts,
                          blob, unique_key, unique_until, after_failure, waiting_for,
                          limit_key, limit_concurrency, limit_interval_ms)
        VALUES (p_queues[k], p_ids[k], v_state, p_priorities[k], nextval('job_seq'), v_run_at,
                v_now, p_max_attempts[k], p_blobs[k], p_unique_keys[k], p_unique_untils[k],
                p_after_failures[k], cardinality(v_pending), p_limit_keys[k],
                p_limit_concurrency[k], p_limit_interval_ms[k]);
        IF v_failed IS NOT NULL THEN
            PERFORM fail_waiter(p_queues[k], p_ids[k], p_after_failures[k], v_failed, v_now,
                                p_keep, p_max_dead, p_dead_age);
        ELSIF cardinality(v_pending) > 0 THEN
            INSERT INTO dependencies (queue, dep_id, job_id)
            SELECT p_queues[k], unnest(v_pending), p_ids[k];
        END IF;
        IF v_state = 'ready' AND NOT p_queues[k] = ANY (v_woken) THEN
            v_woken := v_woken || p_queues[k];
        END IF;
        RETURN NEXT;
    END LOOP;
    IF cardinality(v_woken) > 0 THEN
        PERFORM pg_notify('foundry_' || current_schema(), array_to_string(v_woken, ','));
    END IF;
END $$;
