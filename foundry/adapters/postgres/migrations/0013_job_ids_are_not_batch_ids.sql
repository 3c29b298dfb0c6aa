-- A job never takes the id of a batch its queue keeps (batch and job ids share one space, as
-- after= names either): the enqueue calls of a client refuse it before any write, with
-- SQLSTATE FD003 (InvalidJob naming the id).
--
-- * refuse_batch_ids: raises FD003 for the first (queue, id) pair that is a kept batch's.
-- * enqueue_jobs: enqueue's arguments and answers, after that check. The client calls it
--   where it called enqueue; enqueue itself stays as it was, since a batch's callback fired
--   at the batch's end goes through it and must never fail the end of the member that
--   fires it.
-- * enqueue_one (0010's): the same check first, one primary key probe.
-- * enqueue_batches (0004's): its members' and callbacks' ids checked against the batches
--   kept before the call, after a re-send is recognised (which writes nothing).
--
-- Releases before this one keep calling enqueue, which stores what it stored before.

CREATE FUNCTION refuse_batch_ids(p_queues text[], p_ids text[], p_now timestamptz)
RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_queue text;
    v_id text;
BEGIN
    SELECT b.queue, b.id INTO v_queue, v_id
      FROM unnest(p_queues, p_ids) AS j(queue, id)
      JOIN batches b ON b.queue = j.queue AND b.id = j.id
     WHERE b.expires_at IS NULL OR b.expires_at > p_now
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'FD003', MESSAGE = format(
            '%L is a batch''s id in queue %L (batch and job ids share one space): '
            'pick another job id', v_id, v_queue);
    END IF;
END $$;

CREATE FUNCTION enqueue_jobs(
    p_queues text[], p_ids text[], p_priorities integer[], p_at timestamptz[],
    p_delays interval[], p_max_attempts integer[], p_blobs bytea[], p_unique_keys text[],
    p_unique_ttls interval[], p_unique_untils text[], p_after_failures text[],
    p_after_jobs integer[], p_after_ids text[], p_limit_keys text[],
    p_limit_concurrency integer[], p_limit_interval_ms bigint[], p_keep interval,
    p_max_dead integer, p_dead_age interval, p_now timestamptz
) RETURNS TABLE (i integer, existing text)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_now timestamptz := coalesce(p_now, clock_timestamp());
BEGIN
    PERFORM refuse_batch_ids(p_queues, p_ids, v_now);
    RETURN QUERY SELECT * FROM enqueue(
        p_queues, p_ids, p_priorities, p_at, p_delays, p_max_attempts, p_blobs, p_unique_keys,
        p_unique_ttls, p_unique_untils, p_after_failures, p_after_jobs, p_after_ids,
        p_limit_keys, p_limit_concurrency, p_limit_interval_ms, p_keep, p_max_dead,
        p_dead_age, v_now);
END $$;

CREATE OR REPLACE FUNCTION enqueue_one(
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
    PERFORM FROM batches b
     WHERE b.queue = p_queue AND b.id = p_id AND (b.expires_at IS NULL OR b.expires_at > v_now);
    IF FOUND THEN
        PERFORM refuse_batch_ids(ARRAY[p_queue], ARRAY[p_id], v_now);
    END IF;
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

CREATE OR REPLACE FUNCTION enqueue_batches(
    p_batch_ids text[], p_allow_failures boolean[], p_count integer, p_batch_of integer[],
    p_which text[],
    p_queues text[], p_ids text[], p_priorities integer[], p_at timestamptz[],
    p_delays interval[], p_max_attempts integer[], p_blobs bytea[], p_unique_keys text[],
    p_unique_ttls interval[], p_unique_untils text[], p_after_failures text[],
    p_after_jobs integer[], p_after_ids text[], p_limit_keys text[],
    p_limit_concurrency integer[], p_limit_interval_ms bigint[], p_keep interval,
    p_max_dead integer, p_dead_age interval, p_now timestamptz
) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
#variable_conflict use_column
DECLARE
    v_now timestamptz := coalesce(p_now, clock_timestamp());
    v_queue text := p_queues[1];
    v_clash text;
    v_last integer;
    v_batch integer;
BEGIN
    DELETE FROM batches b
     USING (SELECT queue, id FROM batches WHERE expires_at <= v_now
             LIMIT 100 FOR UPDATE SKIP LOCKED) old
     WHERE b.queue = old.queue AND b.id = old.id;
    IF EXISTS (SELECT 1 FROM batches WHERE queue = v_queue AND id = ANY (p_batch_ids)) THEN
        RETURN;
    END IF;
    SELECT id INTO v_clash FROM jobs
     WHERE queue = v_queue AND id = ANY (p_batch_ids)
       AND (expires_at IS NULL OR expires_at > v_now)
     LIMIT 1;
    IF v_clash IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'FD002', MESSAGE = format(
            'batch id %L is the id of a job of queue %L; pick another', v_clash, v_queue);
    END IF;
    PERFORM refuse_batch_ids(p_queues, p_ids, v_now);
    -- A job may wait for a batch of this call only once all the batch's members came.
    FOR x IN 1 .. coalesce(array_length(p_after_ids, 1), 0) LOOP
        v_batch := array_position(p_batch_ids, p_after_ids[x]);
        CONTINUE WHEN v_batch IS NULL;
        SELECT max(k) INTO v_last FROM generate_subscripts(p_batch_of, 1) k
         WHERE k <= p_count AND p_batch_of[k] = v_batch;
        IF p_after_jobs[x] <= v_last THEN
            RAISE EXCEPTION USING ERRCODE = 'FD001', MESSAGE = format(
                'job %L cannot wait for batch %L, which it comes before or belongs to',
                p_ids[p_after_jobs[x]], p_after_ids[x]);
        END IF;
    END LOOP;
    INSERT INTO batches (queue, id, seq, total, allow_failures, created_at, keep, max_dead,
                         dead_age)
    SELECT v_queue, p_batch_ids[b], nextval('job_seq'),
           (SELECT count(*) FROM generate_subscripts(p_batch_of, 1) k
             WHERE k <= p_count AND p_batch_of[k] = b),
           p_allow_failures[b], v_now, p_keep, p_max_dead, p_dead_age
      FROM generate_subscripts(p_batch_ids, 1) b ORDER BY b;
    INSERT INTO batch_callbacks (queue, batch_id, which, id, priority, at, delay, max_attempts,
                                 blob, limit_key, limit_concurrency, limit_interval_ms)
    SELECT v_queue, p_batch_ids[p_batch_of[k]], p_which[k], p_ids[k], p_priorities[k], p_at[k],
           p_delays[k], p_max_attempts[k], p_blobs[k], p_limit_keys[k],
           p_limit_concurrency[k], p_limit_interval_ms[k]
      FROM generate_subscripts(p_ids, 1) k WHERE k > p_count;
    INSERT INTO batch_members (queue, job_id, batch_id, n)
    SELECT v_queue, p_ids[k], p_batch_ids[p_batch_of[k]], k
      FROM generate_subscripts(p_ids, 1) k
     WHERE k <= p_count AND p_batch_of[k] IS NOT NULL
    ON CONFLICT (queue, job_id) DO UPDATE SET batch_id = excluded.batch_id, n = excluded.n;
    -- The jobs last: a member that ends at once (a dependency already failed) is counted.
    PERFORM * FROM enqueue(
        p_queues[1:p_count], p_ids[1:p_count], p_priorities[1:p_count], p_at[1:p_count],
        p_delays[1:p_count], p_max_attempts[1:p_count], p_blobs[1:p_count],
        p_unique_keys[1:p_count], p_unique_ttls[1:p_count], p_unique_untils[1:p_count],
        p_after_failures[1:p_count], p_after_jobs, p_after_ids, p_limit_keys[1:p_count],
        p_limit_concurrency[1:p_count], p_limit_interval_ms[1:p_count], p_keep, p_max_dead,
        p_dead_age, v_now);
END $$;
