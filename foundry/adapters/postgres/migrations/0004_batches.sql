-- Batches (BatchPort, B1-B5): jobs dispatched together whose end enqueues callback jobs,
-- exactly once, in the transaction that ends the member that fires them. The rules of the end
-- are the domain's (domain/batch.py BatchProgress.ended), as the Redis functions keep them.
--
-- batches          one row per batch: its counts; what was asked of it (allow_failures,
--                  cancel_requested and its reason); caught (catch fired); fired (the
--                  callbacks fired); succeeded (then fired), finished_at and expires_at (an
--                  ended batch is kept as long as a completed job's record); keep, max_dead
--                  and dead_age: the end policy of its dispatch, for the jobs its end fails.
--                  Its row lock serialises the ends of its members: two members ending
--                  together are counted one after the other, so one of them is the last.
-- batch_callbacks  the enqueue arguments of each callback job (which: then, catch, finally)
-- batch_members    a member whose end is not counted yet -> its batch, and its place in the
--                  batch (n); the row goes when its end is counted, so a member requeued from
--                  the dead letters is not counted again
--
-- A job waiting for a batch (after=[batch id]) has a dependencies row naming the batch's id;
-- the batch's end settles it, as a job's end does (completed when then fired, else failed).

CREATE TABLE batches (
    queue text NOT NULL,
    id text NOT NULL,
    seq bigint NOT NULL,
    total integer NOT NULL CHECK (total > 0),
    completed integer NOT NULL DEFAULT 0,
    failed integer NOT NULL DEFAULT 0,
    cancelled integer NOT NULL DEFAULT 0,
    allow_failures boolean NOT NULL,
    cancel_requested boolean NOT NULL DEFAULT false,
    reason text,
    caught boolean NOT NULL DEFAULT false,
    fired text[] NOT NULL DEFAULT '{}',
    succeeded boolean,
    created_at timestamptz NOT NULL,
    finished_at timestamptz,
    expires_at timestamptz,
    keep interval NOT NULL,
    max_dead integer,
    dead_age interval,
    PRIMARY KEY (queue, id)
);
-- A queue's batches newest first; batch(id) without a queue; the ended ones' expiry.
CREATE INDEX batches_newest ON batches (queue, seq DESC);
CREATE INDEX batches_id ON batches (id);
CREATE INDEX batches_expires ON batches (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE batch_callbacks (
    queue text NOT NULL,
    batch_id text NOT NULL,
    which text NOT NULL CHECK (which IN ('then', 'catch', 'finally')),
    id text NOT NULL,
    priority integer NOT NULL,
    at timestamptz,
    delay interval NOT NULL,
    max_attempts integer NOT NULL,
    blob bytea NOT NULL,
    limit_key text,
    limit_concurrency integer,
    limit_interval_ms bigint,
    PRIMARY KEY (queue, batch_id, which),
    FOREIGN KEY (queue, batch_id) REFERENCES batches (queue, id) ON DELETE CASCADE
);

CREATE TABLE batch_members (
    queue text NOT NULL,
    job_id text NOT NULL,
    batch_id text NOT NULL,
    n integer NOT NULL,
    PRIMARY KEY (queue, job_id),
    FOREIGN KEY (queue, batch_id) REFERENCES batches (queue, id) ON DELETE CASCADE
);
CREATE INDEX batch_members_batch ON batch_members (queue, batch_id, n);

-- Every role that may write jobs may write these tables too: every end of a job reads and
-- writes batch_members, so a role granted before this file (GRANT ... ON ALL TABLES covers
-- the tables there were then) would otherwise fail every completion after the upgrade.
DO $$
DECLARE
    g record;
BEGIN
    FOR g IN SELECT DISTINCT a.grantee FROM pg_class c, aclexplode(c.relacl) a
              WHERE c.oid = 'jobs'::regclass AND a.privilege_type = 'DELETE'
                AND a.grantee <> c.relowner LOOP
        EXECUTE format(
            'GRANT SELECT, INSERT, UPDATE, DELETE ON batches, batch_callbacks, batch_members '
            'TO %s',
            CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(g.grantee)) END);
    END LOOP;
END $$;

-- enqueue_batches: store batches (with their callbacks) and jobs of one queue, in one call.
-- The p_ids ... arrays are enqueue's: the first p_count entries are the jobs to enqueue now
-- (members and plain jobs, in order), the rest the callbacks; p_batch_of says which batch
-- (index into p_batch_ids) each entry belongs to, p_which which callback an entry is. A
-- re-send (a batch id already kept) writes nothing; bad input raises before the call ends,
-- so nothing it wrote stays: FD001 (a member waiting for its own batch or a later one, or an
-- after id the queue does not hold), FD002 (a batch id that is a job's).
CREATE FUNCTION enqueue_batches(
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

-- fire_callback: enqueue batch p_batch's p_which callback (if it has one) as of p_now, through
-- enqueue (an id already stored is left as it is).
CREATE FUNCTION fire_callback(
    p_queue text, p_batch text, p_which text, p_now timestamptz, p_keep interval,
    p_max_dead integer, p_dead_age interval
) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    c batch_callbacks%ROWTYPE;
BEGIN
    SELECT * INTO c FROM batch_callbacks
     WHERE queue = p_queue AND batch_id = p_batch AND which = p_which;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    PERFORM * FROM enqueue(
        ARRAY[p_queue], ARRAY[c.id], ARRAY[c.priority], ARRAY[c.at], ARRAY[c.delay],
        ARRAY[c.max_attempts], ARRAY[c.blob], ARRAY[NULL::text], ARRAY[NULL::interval],
        ARRAY[NULL::text], ARRAY['dead'], '{}'::integer[], '{}'::text[], ARRAY[c.limit_key],
        ARRAY[c.limit_concurrency], ARRAY[c.limit_interval_ms], p_keep, p_max_dead,
        p_dead_age, p_now);
END $$;

-- batch_member_ended: job p_id ended (p_failed: dead, cancelled or deleted; else completed).
-- If it is a member whose end is not counted yet, count it in its batch (under the batch's
-- row lock), fire what its end fires (catch at the first death; at the last end then, when
-- every member completed or failures are allowed and no cancel was asked, and finally), and
-- at the batch's end settle the jobs waiting for the batch. One index probe for a job that
-- is no batch's member.
CREATE FUNCTION batch_member_ended(p_queue text, p_id text, p_failed boolean, p_now timestamptz)
RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
#variable_conflict use_column
DECLARE
    v_batch text;
    v_dead boolean := false;
    v_fired text[] := '{}';
    v_ended boolean;
    v_ok boolean;
    b batches%ROWTYPE;
    w text;
BEGIN
    DELETE FROM batch_members m WHERE m.queue = p_queue AND m.job_id = p_id
    RETURNING m.batch_id INTO v_batch;
    IF v_batch IS NULL THEN
        RETURN;
    END IF;
    IF p_failed THEN
        v_dead := EXISTS (SELECT 1 FROM jobs j
                           WHERE j.queue = p_queue AND j.id = p_id AND j.state = 'dead');
    END IF;
    SELECT * INTO b FROM batches WHERE queue = p_queue AND id = v_batch FOR UPDATE;
    IF NOT FOUND OR b.finished_at IS NOT NULL THEN
        RETURN;
    END IF;
    IF NOT p_failed THEN
        b.completed := b.completed + 1;
    ELSIF v_dead THEN
        b.failed := b.failed + 1;
        IF NOT b.caught THEN
            b.caught := true;
            v_fired := v_fired || 'catch'::text;
        END IF;
    ELSE
        b.cancelled := b.cancelled + 1;
    END IF;
    v_ended := b.completed + b.failed + b.cancelled >= b.total;
    IF v_ended THEN
        v_ok := NOT b.cancel_requested AND (b.allow_failures OR b.completed = b.total);
        IF v_ok THEN
            v_fired := v_fired || 'then'::text;
        END IF;
        v_fired := v_fired || 'finally'::text;
    END IF;
    UPDATE batches
       SET completed = b.completed, failed = b.failed, cancelled = b.cancelled,
           caught = b.caught, fired = fired || v_fired, succeeded = v_ok,
           finished_at = CASE WHEN v_ended THEN p_now END,
           expires_at = CASE WHEN v_ended THEN p_now + b.keep END
     WHERE queue = p_queue AND id = v_batch;
    FOREACH w IN ARRAY v_fired LOOP
        PERFORM fire_callback(p_queue, v_batch, w, p_now, b.keep, b.max_dead, b.dead_age);
    END LOOP;
    IF v_ended THEN
        PERFORM settle(p_queue, v_batch, NOT v_ok, p_now, b.keep, b.max_dead, b.dead_age);
    END IF;
END $$;

-- settle (0001's, then the batch's count): the jobs waiting for p_id first, then its batch,
-- in the order the other queues keep.
CREATE OR REPLACE FUNCTION settle(
    p_queue text, p_id text, p_failed boolean, p_now timestamptz, p_keep interval,
    p_max_dead integer, p_dead_age interval
) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    d record;
    w jobs%ROWTYPE;
    v_run_at timestamptz;
BEGIN
    FOR d IN DELETE FROM dependencies WHERE queue = p_queue AND dep_id = p_id
             RETURNING job_id LOOP
        SELECT * INTO w FROM jobs WHERE queue = p_queue AND id = d.job_id FOR UPDATE;
        CONTINUE WHEN NOT FOUND OR w.state <> 'waiting';
        IF p_failed AND w.after_failure <> 'run' THEN
            PERFORM fail_waiter(p_queue, w.id, w.after_failure, p_id, p_now, p_keep,
                                p_max_dead, p_dead_age);
        ELSIF w.waiting_for <= 1 THEN
            v_run_at := greatest(w.run_at, p_now);
            UPDATE jobs
               SET waiting_for = 0, run_at = v_run_at,
                   state = CASE WHEN v_run_at <= p_now THEN 'ready' ELSE 'delayed' END
             WHERE queue = p_queue AND id = w.id;
            IF v_run_at <= p_now THEN
                PERFORM wake(ARRAY[p_queue]);
            END IF;
        ELSE
            UPDATE jobs SET waiting_for = waiting_for - 1 WHERE queue = p_queue AND id = w.id;
        END IF;
    END LOOP;
    PERFORM batch_member_ended(p_queue, p_id, p_failed, p_now);
END $$;

-- waits_for (0001's, and batches): the jobs or batches job k of an enqueue names in after=,
-- in order, with their states (a batch: waiting until it ends, then completed when then
-- fired, else cancelled); raises FD001 (InvalidJob) for one its queue does not hold.
CREATE OR REPLACE FUNCTION waits_for(
    p_queue text, p_k integer, p_jobs integer[], p_ids text[], p_now timestamptz
) RETURNS TABLE (id text, state text)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
#variable_conflict use_column
BEGIN
    FOR x IN 1 .. coalesce(array_length(p_jobs, 1), 0) LOOP
        CONTINUE WHEN p_jobs[x] <> p_k;
        id := p_ids[x];
        SELECT j.state INTO state FROM jobs j
         WHERE j.queue = p_queue AND j.id = p_ids[x]
           AND (j.expires_at IS NULL OR j.expires_at > p_now);
        IF NOT FOUND THEN
            SELECT CASE WHEN b.finished_at IS NULL THEN 'waiting'
                        WHEN b.succeeded THEN 'completed' ELSE 'cancelled' END
              INTO state FROM batches b
             WHERE b.queue = p_queue AND b.id = p_ids[x]
               AND (b.expires_at IS NULL OR b.expires_at > p_now);
        END IF;
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'FD001', MESSAGE = format(
                'job %L is not in queue %L; a job can wait only for jobs of its own queue '
                'enqueued before it (or earlier in the same batch)', p_ids[x], p_queue);
        END IF;
        RETURN NEXT;
    END LOOP;
END $$;

-- cancel_batch: ask a cancel of the batch (then never fires): its pending members end
-- cancelled (in the batch's order), its running ones are asked to stop, through cancel. A
-- batch that ended or was cancelled before is left as it is. Returns the batch's queue, NULL
-- for an unknown batch.
CREATE FUNCTION cancel_batch(
    p_queue text, p_id text, p_reason text, p_keep interval, p_max_dead integer,
    p_dead_age interval, p_now timestamptz
) RETURNS text
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
#variable_conflict use_column
DECLARE
    v_now timestamptz := coalesce(p_now, clock_timestamp());
    b batches%ROWTYPE;
    m record;
BEGIN
    SELECT * INTO b FROM batches
     WHERE id = p_id AND (p_queue IS NULL OR queue = p_queue)
       AND (expires_at IS NULL OR expires_at > v_now)
     ORDER BY queue LIMIT 1;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    -- The members' rows first, then the batch's: the order in which a worker ending a member
    -- takes them (a cycle is left only with a worker ending several members in one call in
    -- another order than the batch's; PostgreSQL then aborts one side, which is sent again).
    PERFORM 1 FROM jobs j JOIN batch_members m ON m.queue = j.queue AND m.job_id = j.id
      WHERE m.queue = b.queue AND m.batch_id = b.id ORDER BY m.n FOR UPDATE OF j;
    SELECT * INTO b FROM batches WHERE queue = b.queue AND id = b.id FOR UPDATE;
    IF b.finished_at IS NOT NULL OR b.cancel_requested THEN
        RETURN b.queue;
    END IF;
    UPDATE batches SET cancel_requested = true, reason = p_reason
     WHERE queue = b.queue AND id = b.id;
    FOR m IN SELECT job_id FROM batch_members
              WHERE queue = b.queue AND batch_id = b.id ORDER BY n LOOP
        -- A member an earlier cancel ended (it waited for that one) is counted already.
        CONTINUE WHEN NOT EXISTS (SELECT 1 FROM batch_members
                                   WHERE queue = b.queue AND job_id = m.job_id);
        PERFORM cancel(b.queue, m.job_id, p_reason, p_keep, p_max_dead, p_dead_age, v_now);
    END LOOP;
    RETURN b.queue;
END $$;
