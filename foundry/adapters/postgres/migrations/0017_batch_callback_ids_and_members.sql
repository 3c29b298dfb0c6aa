-- A batch never takes the id of a callback still pending in its queue (a callback of a batch
-- that has not ended and not fired it yet): that id is the callback job's, which the batch's
-- end enqueues later, so a batch, member or callback holding it now would take its place
-- (the callback's enqueue then finds the id stored and leaves it). enqueue_batches refuses
-- it before any write, with SQLSTATE FD003 (InvalidJob naming the id, its batch and callback).
--
-- A batch also keeps its members' ids, in its order, for as long as its row is kept
-- (batch_members loses a member's row when its end is counted): what waiting for a whole
-- batch waits for. A batch stored before this file has none (NULL).
--
-- * batch_callbacks_id: the callbacks by id, for that check.
-- * batches.members: the member ids (p_ids' order).
-- * refuse_callback_ids: raises FD003 for the first id that is a pending callback's.
-- * enqueue_batches (0013's): the same, with the check after refuse_batch_ids, and the
--   member ids written.

CREATE INDEX batch_callbacks_id ON batch_callbacks (queue, id);
ALTER TABLE batches ADD COLUMN members text[];

CREATE FUNCTION refuse_callback_ids(p_queue text, p_ids text[])
RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    c record;
BEGIN
    SELECT cb.id, cb.which, cb.batch_id INTO c
      FROM batch_callbacks cb
      JOIN batches b ON b.queue = cb.queue AND b.id = cb.batch_id
     WHERE cb.queue = p_queue AND cb.id = ANY (p_ids)
       AND b.finished_at IS NULL AND NOT (cb.which = ANY (b.fired))
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'FD003', MESSAGE = format(
            '%L is the %s callback of batch %L in queue %L, not enqueued yet (batch, job and '
            'callback ids share one space): pick another id', c.id, c.which, c.batch_id,
            p_queue);
    END IF;
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
    PERFORM refuse_callback_ids(v_queue, p_batch_ids || p_ids);
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
                         dead_age, members)
    SELECT v_queue, p_batch_ids[b], nextval('job_seq'), cardinality(m.ids),
           p_allow_failures[b], v_now, p_keep, p_max_dead, p_dead_age, m.ids
      FROM generate_subscripts(p_batch_ids, 1) b,
           LATERAL (SELECT ARRAY(SELECT p_ids[k] FROM generate_subscripts(p_batch_of, 1) k
                                  WHERE k <= p_count AND p_batch_of[k] = b ORDER BY k) AS ids) m
     ORDER BY b;
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
