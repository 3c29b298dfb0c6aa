-- A job enqueued outside a batch never takes the id of a callback still pending in its queue
-- (a callback of a batch that has not ended and not fired it yet): the batch's end enqueues
-- that callback through enqueue, which leaves an id it finds stored, so the callback was
-- dropped. The client's enqueue calls refuse it before any write, with SQLSTATE FD003
-- (InvalidJob naming the id, its batch and callback), as enqueue_batches does since 0017.
--
-- * refuse_pending_callback_ids: raises FD003 for the first (queue, id) pair that is a
--   pending callback's (0017's refuse_callback_ids, over pairs of several queues).
-- * refuse_batch_ids (0013's): the same, after its own check; enqueue_jobs and
--   enqueue_batches call it.
-- * enqueue_one (0013's): the same check, after one probe of batch_callbacks_id (0017).
--
-- enqueue itself stays as it was: a callback fired at its batch's end goes through it.

CREATE FUNCTION refuse_pending_callback_ids(p_queues text[], p_ids text[])
RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    c record;
BEGIN
    SELECT cb.queue, cb.id, cb.which, cb.batch_id INTO c
      FROM unnest(p_queues, p_ids) AS j(queue, id)
      JOIN batch_callbacks cb ON cb.queue = j.queue AND cb.id = j.id
      JOIN batches b ON b.queue = cb.queue AND b.id = cb.batch_id
     WHERE b.finished_at IS NULL AND NOT (cb.which = ANY (b.fired))
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'FD003', MESSAGE = format(
            '%L is the %s callback of batch %L in queue %L, not enqueued yet (batch, job and '
            'callback ids share one space): pick another id', c.id, c.which, c.batch_id,
            c.queue);
    END IF;
END $$;

CREATE OR REPLACE FUNCTION refuse_batch_ids(p_queues text[], p_ids text[], p_now timestamptz)
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
    PERFORM refuse_pending_callback_ids(p_queues, p_ids);
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
    PERFORM FROM batch_callbacks c WHERE c.queue = p_queue AND c.id = p_id;
    IF FOUND THEN
        PERFORM refuse_pending_callback_ids(ARRAY[p_queue], ARRAY[p_id]);
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
