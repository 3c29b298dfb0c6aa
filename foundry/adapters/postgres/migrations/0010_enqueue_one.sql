-- A cheaper enqueue of one job (the single dispatch), and of each job of enqueue's arrays.
--
-- * enqueue_one: one job with no unique key and no after= ids, in scalar arguments (no
--   arrays to read, no rows to return: its answer is enqueue's existing for that job, always
--   NULL, as it asks for no unique key). Three statements where enqueue ran five and a
--   function call: the queue's row is read, and written only the first time; the job is
--   inserted with ON CONFLICT DO NOTHING, and only a conflict looks at the row stored under
--   its id (kept: nothing changes; an ended record whose time is up: deleted, and the job
--   stored); NOTIFY is sent from here, not through wake().
-- * enqueue (0006's): the same for its jobs without a unique key or after= ids, and the
--   queues' rows read before any is written. Same arguments, same answers.
--
-- Releases before this one keep calling enqueue, which stores what it stored before.

CREATE FUNCTION enqueue_one(
    p_queue text, p_id text, p_priority integer, p_at timestamptz, p_delay interval,
    p_max_attempts integer, p_blob bytea, p_after_failure text, p_limit_key text,
    p_limit_concurrency integer, p_limit_interval_ms bigint, p_now timestamptz
) RETURNS text
LANGUAGE plpgsql SET search_path FROM CURRENT SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    v_now timestamptz := coalesce(p_now, clock_timestamp());
    v_run_at timestamptz := greatest(coalesce(p_at, v_now + p_delay), v_now);
    v_state text := CASE WHEN v_run_at <= v_now THEN 'ready' ELSE 'delayed' END;
    v_expires timestamptz;
BEGIN
    PERFORM FROM queues WHERE name = p_queue AND used;
    IF NOT FOUND THEN
        INSERT INTO queues (name, used) VALUES (p_queue, true) ON CONFLICT DO NOTHING;
        UPDATE queues SET used = true WHERE name = p_queue AND NOT used;
    END IF;
    LOOP
        INSERT INTO jobs (queue, id, state, priority, seq, run_at, enqueued_at, max_attempts,
                          blob, after_failure, limit_key, limit_concurrency, limit_interval_ms)
        VALUES (p_queue, p_id, v_state, p_priority, nextval('job_seq'), v_run_at, v_now,
                p_max_attempts, p_blob, p_after_failure, p_limit_key, p_limit_concurrency,
                p_limit_interval_ms)
        ON CONFLICT (id, queue) DO NOTHING;
        EXIT WHEN FOUND;
        SELECT j.expires_at INTO v_expires FROM jobs j WHERE j.queue = p_queue AND j.id = p_id;
        IF FOUND AND (v_expires IS NULL OR v_expires > v_now) THEN
            RETURN NULL;  -- stored already under this id
        END IF;
        DELETE FROM jobs WHERE queue = p_queue AND id = p_id;
    END LOOP;
    IF v_state = 'ready' THEN
        PERFORM pg_notify('foundry_' || current_schema(), p_queue);
    END IF;
    RETURN NULL;
END $$;

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
               SET job_id = excluded.job_id, expires_at = excluded.expires_at;
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
