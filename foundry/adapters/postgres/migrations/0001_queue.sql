-- The queue's tables. Run with the search path set to Foundry's schema (``foundry`` by
-- default); every time written here comes from the caller (the clock the queue is given, or
-- clock_timestamp()), never from now() inside a long transaction.
--
-- queues         one row per queue: paused, used (has held a job), running totals
--                (dead_trimmed, stale_rejected); queue_totals: completed, failed
-- jobs           one row per stored job. ``blob`` is the codec's encoding of the immutable
--                job (payload, name, options); the other columns are its mutable state.
--                state: ready | delayed | active | completed | dead | cancelled | waiting
--                ready jobs are claimed by (priority DESC, seq): FIFO within a priority;
--                delayed ones become ready once run_at has come (their seq kept).
--                last_token / last_op / last_state: how the previous lease ended, so a
--                re-sent completion, failure or release is recognised (Q8).
--                waiting jobs wait for waiting_for jobs of dependencies; after_failure
--                says what a failed one does to them (dead, cancel, run).
-- dependencies   (queue, dep_id, job_id): job_id waits for dep_id
--                limit_*: the job's limit; holds_slot: it runs in a concurrency slot of its
--                key; reserved: it waits for a rate turn handed out; parked (the order it was
--                parked in) and parked_from: delayed until its key frees a slot (run_at is
--                then the far future, so it counts as delayed)
-- unique_keys    a unique key held by the pending (or running) job job_id until expires_at
-- workers        the worker registry: each pool's heartbeat, forgotten after expires_at
-- schedules      periodic schedules' next tick and last firing

CREATE TABLE queues (
    name text PRIMARY KEY,
    paused boolean NOT NULL DEFAULT false,
    used boolean NOT NULL DEFAULT false,
    dead_trimmed bigint NOT NULL DEFAULT 0,
    stale_rejected bigint NOT NULL DEFAULT 0
);

-- Completions and failures, counted in one of 16 rows per queue chosen by the server process,
-- so concurrent workers do not queue on one row lock held until each commit's WAL flush.
CREATE TABLE queue_totals (
    queue text NOT NULL,
    shard integer NOT NULL,
    completed bigint NOT NULL DEFAULT 0,
    failed bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (queue, shard)
);

-- count: add to a queue's running totals (in this server process's shard).
CREATE FUNCTION count_ends(p_queue text, p_completed integer, p_failed integer) RETURNS void
LANGUAGE sql SET search_path FROM CURRENT AS $$
    INSERT INTO queue_totals AS t (queue, shard, completed, failed)
    VALUES (p_queue, pg_backend_pid() % 16, p_completed, p_failed)
    ON CONFLICT (queue, shard) DO UPDATE
       SET completed = t.completed + excluded.completed, failed = t.failed + excluded.failed
$$;

CREATE SEQUENCE job_seq AS bigint;
CREATE SEQUENCE job_fence AS bigint;

CREATE TABLE jobs (
    queue text NOT NULL,
    id text NOT NULL,
    state text NOT NULL CHECK (
        state IN ('ready', 'delayed', 'active', 'completed', 'dead', 'cancelled', 'waiting')
    ),
    priority integer NOT NULL,
    seq bigint NOT NULL,
    run_at timestamptz NOT NULL,
    enqueued_at timestamptz NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL,
    fence bigint NOT NULL DEFAULT 0,
    blob bytea NOT NULL,
    unique_key text,
    unique_until text,
    lease_token text,
    lease_deadline timestamptz,
    claim_token text,
    worker text,
    last_token text,
    last_op text,
    last_state text,
    errors bytea[] NOT NULL DEFAULT '{}',
    result bytea,
    reason text,
    finished_at timestamptz,
    expires_at timestamptz,
    stop text,
    progress bytea,
    after_failure text,
    waiting_for integer NOT NULL DEFAULT 0,
    limit_key text,
    limit_concurrency integer,
    limit_interval_ms bigint,
    holds_slot boolean NOT NULL DEFAULT false,
    reserved boolean NOT NULL DEFAULT false,
    parked bigint,
    parked_from timestamptz,
    PRIMARY KEY (queue, id)
);

-- Limits per key: the key's running count (concurrency) and its next free start and the end
-- of the turns handed out (rate, epoch milliseconds), as the Redis claim keeps them.
CREATE TABLE limit_keys (
    queue text NOT NULL,
    key text NOT NULL,
    running integer NOT NULL DEFAULT 0,
    next_ms bigint NOT NULL DEFAULT 0,
    tail_ms bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (queue, key)
);
-- Jobs parked until their key frees a slot, first parked first.
CREATE INDEX jobs_parked ON jobs (queue, limit_key, parked) WHERE parked IS NOT NULL;

-- The claim: the next ready job of a queue in one index step (Q2).
CREATE INDEX jobs_ready ON jobs (queue, priority DESC, seq) WHERE state = 'ready';
-- Due delayed jobs, promoted by the claim.
CREATE INDEX jobs_delayed ON jobs (queue, run_at, seq) WHERE state = 'delayed';
-- Lapsed leases, for the reaper; active jobs by deadline for listings.
CREATE INDEX jobs_active ON jobs (lease_deadline) WHERE state = 'active';
-- A re-sent claim finds the leases its token holds.
CREATE INDEX jobs_claim_token ON jobs (claim_token) WHERE claim_token IS NOT NULL;
-- Dead letters and ended records, newest first; their expiry.
CREATE INDEX jobs_finished ON jobs (queue, state, finished_at DESC)
    WHERE state IN ('completed', 'dead', 'cancelled');
CREATE INDEX jobs_expires ON jobs (expires_at) WHERE expires_at IS NOT NULL;
-- get(job_id) without a queue.
CREATE INDEX jobs_id ON jobs (id);

-- A waiting job (state waiting, waiting_for > 0) waits for each dep_id of its queue.
CREATE TABLE dependencies (
    queue text NOT NULL,
    dep_id text NOT NULL,
    job_id text NOT NULL,
    PRIMARY KEY (queue, dep_id, job_id)
);

CREATE TABLE unique_keys (
    queue text NOT NULL,
    key text NOT NULL,
    job_id text NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (queue, key)
);

CREATE TABLE workers (
    id text PRIMARY KEY,
    info bytea NOT NULL,
    expires_at timestamptz NOT NULL
);

CREATE TABLE schedules (
    queue text NOT NULL,
    name text NOT NULL,
    definition text NOT NULL,
    next_at timestamptz,
    last_tick timestamptz,
    last_job_id text,
    paused boolean NOT NULL DEFAULT false,
    orphaned boolean NOT NULL DEFAULT false,
    PRIMARY KEY (queue, name)
);

CREATE INDEX schedules_due ON schedules (next_at) WHERE NOT paused AND NOT orphaned;

-- waiters        who waits for a job's end (wait, dispatcher.result): the transition that
--                ends a job with waiters NOTIFYs them
CREATE TABLE waiters (
    token text PRIMARY KEY,
    queue text NOT NULL,
    job_id text NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX waiters_job ON waiters (queue, job_id);

-- claim_tokens   a claim's token, kept for its lease, so its re-send returns what it took
CREATE TABLE claim_tokens (
    token text PRIMARY KEY,
    expires_at timestamptz NOT NULL
);

-- The transitions. Each takes the time as ``now`` (NULL: the server's clock_timestamp()),
-- validates before it writes, and is idempotent under re-send (Q8), as the Redis scripts
-- are. ``SET search_path FROM CURRENT`` binds each to this schema whoever calls it (the
-- caller's own connection, for a transactional enqueue).

-- enqueue: each job in order; returns (i, existing): existing is NULL when stored (or
-- already stored under this id), else the id of the pending job holding its unique key.
CREATE FUNCTION enqueue(
    p_queues text[], p_ids text[], p_priorities integer[], p_at timestamptz[],
    p_delays interval[], p_max_attempts integer[], p_blobs bytea[], p_unique_keys text[],
    p_unique_ttls interval[], p_unique_untils text[], p_after_failures text[],
    p_after_jobs integer[], p_after_ids text[], p_limit_keys text[],
    p_limit_concurrency integer[], p_limit_interval_ms bigint[], p_keep interval,
    p_max_dead integer, p_dead_age interval, p_now timestamptz
) RETURNS TABLE (i integer, existing text)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
#variable_conflict use_column
DECLARE
    v_now timestamptz := coalesce(p_now, clock_timestamp());
    v_run_at timestamptz;
    v_holder text;
    v_woken text[] := '{}';
    v_state text;
    v_pending text[];
    v_failed text;
    d record;
BEGIN
    FOR k IN 1 .. coalesce(array_length(p_ids, 1), 0) LOOP
        i := k;
        existing := NULL;
        INSERT INTO queues (name, used) VALUES (p_queues[k], true) ON CONFLICT DO NOTHING;
        DELETE FROM jobs
         WHERE queue = p_queues[k] AND id = p_ids[k] AND expires_at <= v_now;
        IF EXISTS (SELECT 1 FROM jobs WHERE queue = p_queues[k] AND id = p_ids[k]) THEN
            RETURN NEXT;
            CONTINUE;
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
        v_run_at := greatest(coalesce(p_at[k], v_now + p_delays[k]), v_now);
        v_state := CASE WHEN v_run_at <= v_now THEN 'ready' ELSE 'delayed' END;
        v_pending := '{}';
        v_failed := NULL;
        FOR d IN SELECT * FROM waits_for(p_queues[k], k, p_after_jobs, p_after_ids, v_now) LOOP
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
        ELSE
            INSERT INTO dependencies (queue, dep_id, job_id)
            SELECT p_queues[k], unnest(v_pending), p_ids[k];
        END IF;
        IF v_state = 'ready' AND NOT p_queues[k] = ANY (v_woken) THEN
            v_woken := v_woken || p_queues[k];
        END IF;
        RETURN NEXT;
    END LOOP;
    UPDATE queues SET used = true WHERE name = ANY (p_queues) AND NOT used;
    PERFORM wake(v_woken);
END $$;

-- wake: tell blocked claims (LISTEN) that these queues have ready jobs; delivered on commit.
CREATE FUNCTION wake(p_queues text[]) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
#variable_conflict use_column
BEGIN
    IF coalesce(array_length(p_queues, 1), 0) > 0 THEN
        PERFORM pg_notify('foundry_' || current_schema(), array_to_string(p_queues, ','));
    END IF;
END $$;

-- ended: tell the waiters of a job (if any) that it ended; delivered on commit.
CREATE FUNCTION ended(p_queue text, p_id text) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM waiters w WHERE w.queue = p_queue AND w.job_id = p_id) THEN
        PERFORM pg_notify('foundry_' || current_schema() || '_ended', p_queue || ' ' || p_id);
    END IF;
END $$;

-- waits_for: the jobs job k of an enqueue names in after=, in order, with their states;
-- raises FD001 (InvalidJob) for one its queue does not hold.
CREATE FUNCTION waits_for(
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
            RAISE EXCEPTION USING ERRCODE = 'FD001', MESSAGE = format(
                'job %L is not in queue %L; a job can wait only for jobs of its own queue '
                'enqueued before it (or earlier in the same batch)', p_ids[x], p_queue);
        END IF;
        RETURN NEXT;
    END LOOP;
END $$;

-- settle: the job p_id ended (p_failed: dead, cancelled or deleted; else completed): each
-- job waiting for it waits for one fewer (ready, or delayed to its own run time, at none),
-- or, for a failed one, fails as its after_failure says.
CREATE FUNCTION settle(
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
END $$;

-- fail_waiter: a waiting job whose dependency p_dep failed ends dead (with a
-- DependencyFailed error) or cancelled, as p_rule says, reason 'dependency failed'.
CREATE FUNCTION fail_waiter(
    p_queue text, p_id text, p_rule text, p_dep text, p_now timestamptz, p_keep interval,
    p_max_dead integer, p_dead_age interval
) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF p_rule = 'dead' THEN
        UPDATE jobs
           SET errors = errors || convert_to(jsonb_build_object(
                   'type', 'DependencyFailed',
                   'message', format('job %s it waits for did not complete '
                                     '(dead, cancelled or deleted)', p_dep),
                   'at', (extract(epoch FROM p_now) * 1000000)::bigint)::text, 'UTF8')
         WHERE queue = p_queue AND id = p_id;
    END IF;
    PERFORM end_job(p_queue, p_id, CASE WHEN p_rule = 'dead' THEN 'dead' ELSE 'cancel' END,
                    NULL, true, 'dependency failed', 'dependency', p_now, p_keep, p_max_dead,
                    p_dead_age);
END $$;

-- admit: may job p_id (limit key p_key) start now? true: it takes a slot of its key (and its
-- rate turn); false: its key runs p_concurrency jobs already, so it is parked (delayed until a
-- slot frees), or it must wait for its rate turn, so it is delayed until then. The rules of
-- the domain's rate_turn and the memory queue's Limiter.
CREATE FUNCTION admit(
    p_queue text, p_id text, p_key text, p_concurrency integer, p_interval_ms bigint,
    p_reserved boolean, p_now timestamptz
) RETURNS boolean
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_now_ms bigint := floor(extract(epoch FROM p_now) * 1000)::bigint;
    k limit_keys%ROWTYPE;
    v_turn bigint;
BEGIN
    INSERT INTO limit_keys (queue, key) VALUES (p_queue, p_key) ON CONFLICT DO NOTHING;
    SELECT * INTO k FROM limit_keys WHERE queue = p_queue AND key = p_key FOR UPDATE;
    IF p_concurrency IS NOT NULL AND k.running >= p_concurrency THEN
        UPDATE jobs
           SET state = 'delayed', parked = nextval('job_seq'), parked_from = run_at,
               run_at = timestamptz '9999-12-31 00:00:00+00'
         WHERE queue = p_queue AND id = p_id;
        RETURN false;
    END IF;
    IF p_interval_ms IS NOT NULL THEN
        IF (p_reserved OR k.tail_ms <= v_now_ms) AND k.next_ms <= v_now_ms THEN
            UPDATE limit_keys SET next_ms = v_now_ms + p_interval_ms
             WHERE queue = p_queue AND key = p_key;
        ELSE
            IF p_reserved THEN
                v_turn := k.next_ms;
            ELSE
                v_turn := greatest(k.tail_ms, k.next_ms, v_now_ms);
                UPDATE limit_keys SET tail_ms = v_turn + p_interval_ms
                 WHERE queue = p_queue AND key = p_key;
            END IF;
            UPDATE jobs
               SET state = 'delayed', reserved = true,
                   run_at = timestamptz 'epoch' + v_turn * interval '1 millisecond'
             WHERE queue = p_queue AND id = p_id;
            RETURN false;
        END IF;
    END IF;
    UPDATE jobs SET reserved = false, holds_slot = p_concurrency IS NOT NULL
     WHERE queue = p_queue AND id = p_id;
    IF p_concurrency IS NOT NULL THEN
        UPDATE limit_keys SET running = running + 1 WHERE queue = p_queue AND key = p_key;
    END IF;
    RETURN true;
END $$;

-- free_slot: the lease of job p_id ended: give its key's slot back, and make the job parked
-- first for that key ready (its seq kept).
CREATE FUNCTION free_slot(p_queue text, p_id text) RETURNS void
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
     WHERE queue = p_queue AND limit_key = v_key AND parked IS NOT NULL AND state = 'delayed'
     ORDER BY parked LIMIT 1 FOR UPDATE;
    IF v_next IS NOT NULL THEN
        UPDATE jobs SET state = 'ready', run_at = parked_from, parked = NULL, parked_from = NULL
         WHERE queue = p_queue AND id = v_next;
        PERFORM wake(ARRAY[p_queue]);
    END IF;
END $$;

-- claim: up to p_limit ready jobs, queue by queue in the order given (Q2), skipping paused
-- queues; due delayed jobs are made ready first (seq kept). A re-sent token returns the
-- jobs it holds instead (Q8). Rows come back in claim order (n).
CREATE FUNCTION claim(
    p_queues text[], p_limit integer, p_lease interval, p_token text, p_worker text,
    p_now timestamptz
) RETURNS TABLE (n bigint, queue text, id text, blob bytea, lease_token text, attempts integer,
                 deadline timestamptz, fence bigint)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
#variable_conflict use_column
DECLARE
    v_now timestamptz := coalesce(p_now, clock_timestamp());
    v_taken integer := 0;
    v_round integer;
    v_q text;
    v_ukey text;
    v_until text;
    c record;
BEGIN
    IF p_token IS NOT NULL THEN
        IF EXISTS (SELECT 1 FROM claim_tokens t WHERE t.token = p_token AND t.expires_at > v_now)
        THEN
            RETURN QUERY
                SELECT row_number() OVER (ORDER BY j.fence), j.queue, j.id, j.blob,
                       j.lease_token, j.attempts, j.lease_deadline, j.fence
                  FROM jobs j WHERE j.claim_token = p_token AND j.state = 'active';
            RETURN;
        END IF;
        INSERT INTO claim_tokens (token, expires_at) VALUES (p_token, v_now + p_lease)
        ON CONFLICT (token) DO UPDATE SET expires_at = excluded.expires_at;
    END IF;
    FOREACH v_q IN ARRAY p_queues LOOP
        EXIT WHEN v_taken >= p_limit;
        CONTINUE WHEN EXISTS (SELECT 1 FROM queues WHERE name = v_q AND paused);
        UPDATE jobs d SET state = 'ready'
          FROM (SELECT j.queue, j.id FROM jobs j
                 WHERE j.queue = v_q AND j.state = 'delayed' AND j.run_at <= v_now
                 ORDER BY j.run_at LIMIT 1000 FOR UPDATE SKIP LOCKED) due
         WHERE d.queue = due.queue AND d.id = due.id;
        LOOP
            v_round := 0;
            FOR c IN SELECT j.id, j.limit_key, j.limit_concurrency, j.limit_interval_ms,
                            j.reserved
                       FROM jobs j
                      WHERE j.queue = v_q AND j.state = 'ready'
                      ORDER BY j.priority DESC, j.seq
                      LIMIT p_limit - v_taken
                        FOR UPDATE SKIP LOCKED LOOP
                v_round := v_round + 1;
                -- A job over its key's limit is parked or delayed for its turn, unspent.
                CONTINUE WHEN c.limit_key IS NOT NULL
                          AND NOT admit(v_q, c.id, c.limit_key, c.limit_concurrency,
                                        c.limit_interval_ms, c.reserved, v_now);
                UPDATE jobs j
                   SET state = 'active', attempts = j.attempts + 1,
                       fence = nextval('job_fence'),
                       lease_token = replace(gen_random_uuid()::text, '-', ''),
                       lease_deadline = v_now + p_lease, worker = p_worker,
                       claim_token = p_token
                 WHERE j.queue = v_q AND j.id = c.id
                RETURNING j.queue, j.id, j.blob, j.lease_token, j.attempts, j.lease_deadline,
                          j.fence, j.unique_key, j.unique_until
                     INTO queue, id, blob, lease_token, attempts, deadline, fence, v_ukey,
                          v_until;
                IF v_until = 'started' THEN
                    DELETE FROM unique_keys u
                     WHERE u.queue = v_q AND u.key = v_ukey AND u.job_id = c.id;
                END IF;
                v_taken := v_taken + 1;
                n := v_taken;
                RETURN NEXT;
            END LOOP;
            EXIT WHEN v_round = 0 OR v_taken >= p_limit;
        END LOOP;
    END LOOP;
END $$;

-- renew: each lease still held gets deadline now + p_duration (and its progress, if
-- given); returns (i, deadline, stop) for those, nothing for a lost one.
CREATE FUNCTION renew(
    p_queues text[], p_ids text[], p_tokens text[], p_progress bytea[], p_duration interval,
    p_now timestamptz
) RETURNS TABLE (i bigint, deadline timestamptz, stop text)
LANGUAGE sql SET search_path FROM CURRENT AS $$
    UPDATE jobs j
       SET lease_deadline = coalesce(p_now, clock_timestamp()) + p_duration,
           progress = coalesce(l.progress, j.progress)
      FROM unnest(p_queues, p_ids, p_tokens, p_progress) WITH ORDINALITY
           AS l(queue, id, token, progress, i)
     WHERE j.queue = l.queue AND j.id = l.id AND j.state = 'active'
       AND j.lease_token = l.token
    RETURNING l.i, j.lease_deadline, j.stop
$$;

-- held: lock the job p_token leases and say whether this is the lease (1), the re-send of
-- what it last did with p_op (0: apply nothing), or a stale lease (-1: counted).
CREATE FUNCTION held(p_queue text, p_id text, p_token text, p_op text) RETURNS integer
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
#variable_conflict use_column
DECLARE
    v jobs%ROWTYPE;
BEGIN
    SELECT * INTO v FROM jobs WHERE queue = p_queue AND id = p_id FOR UPDATE;
    IF FOUND AND v.state = 'active' AND v.lease_token = p_token THEN
        RETURN 1;
    END IF;
    IF FOUND AND v.last_token = p_token AND v.last_op = p_op THEN
        RETURN 0;
    END IF;
    INSERT INTO queues (name) VALUES (p_queue) ON CONFLICT DO NOTHING;
    UPDATE queues SET stale_rejected = stale_rejected + 1 WHERE name = p_queue;
    RETURN -1;
END $$;

-- finish: the job ended (completed, dead, cancelled) at v_now: its unique key freed.
CREATE FUNCTION free_unique(p_queue text, p_id text) RETURNS void
LANGUAGE sql SET search_path FROM CURRENT AS $$
    DELETE FROM unique_keys u
     USING jobs j
     WHERE j.queue = p_queue AND j.id = p_id AND u.queue = j.queue AND u.key = j.unique_key
       AND u.job_id = j.id
$$;

-- complete: each lease's job completed with its result, kept until now + p_keep. Returns
-- (i, applied): false for a stale lease (counted); a re-send is applied (true) and changes
-- nothing.
CREATE FUNCTION complete(
    p_queues text[], p_ids text[], p_tokens text[], p_results bytea[], p_keep interval,
    p_now timestamptz
) RETURNS TABLE (i integer, applied boolean)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
#variable_conflict use_column
DECLARE
    v_now timestamptz := coalesce(p_now, clock_timestamp());
    v_held integer;
BEGIN
    FOR k IN 1 .. coalesce(array_length(p_ids, 1), 0) LOOP
        i := k;
        v_held := held(p_queues[k], p_ids[k], p_tokens[k], 'complete');
        applied := v_held >= 0;
        IF v_held = 1 THEN
            PERFORM free_slot(p_queues[k], p_ids[k]);
            PERFORM free_unique(p_queues[k], p_ids[k]);
            UPDATE jobs
               SET state = 'completed', result = p_results[k], finished_at = v_now,
                   expires_at = v_now + p_keep, seq = nextval('job_seq'),
                   last_token = lease_token, last_op = 'complete', last_state = 'completed',
                   lease_token = NULL, lease_deadline = NULL, claim_token = NULL, stop = NULL
             WHERE queue = p_queues[k] AND id = p_ids[k];
            PERFORM count_ends(p_queues[k], 1, 0);
            PERFORM ended(p_queues[k], p_ids[k]);
            PERFORM settle(p_queues[k], p_ids[k], false, v_now, NULL, NULL, NULL);
        END IF;
        RETURN NEXT;
    END LOOP;
END $$;

-- trim_dead: keep at most p_max_count dead letters of the queue, none older than p_oldest.
CREATE FUNCTION trim_dead(p_queue text, p_max_count integer, p_oldest timestamptz)
RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
#variable_conflict use_column
DECLARE
    v_count integer;
    v_aged integer;
BEGIN
    DELETE FROM jobs d
     USING (SELECT j.queue, j.id FROM jobs j
             WHERE j.queue = p_queue AND j.state = 'dead'
             ORDER BY j.seq DESC OFFSET coalesce(p_max_count, 2147483647)) extra
     WHERE d.queue = extra.queue AND d.id = extra.id;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    IF p_oldest IS NOT NULL THEN
        DELETE FROM jobs WHERE queue = p_queue AND state = 'dead' AND finished_at < p_oldest;
        GET DIAGNOSTICS v_aged = ROW_COUNT;
        v_count := v_count + v_aged;
    END IF;
    IF v_count > 0 THEN
        UPDATE queues SET dead_trimmed = dead_trimmed + v_count WHERE name = p_queue;
    END IF;
END $$;

-- end_job: move a job that is being failed, released or lost to where its decision sends
-- it: p_kind retry (ready or delayed at p_run_at, a new seq unless p_keep_seq), dead or
-- cancelled (with p_reason). Returns the new state.
CREATE FUNCTION end_job(
    p_queue text, p_id text, p_kind text, p_run_at timestamptz, p_keep_seq boolean,
    p_reason text, p_op text, p_now timestamptz, p_keep interval, p_max_dead integer,
    p_dead_age interval
) RETURNS text
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
#variable_conflict use_column
DECLARE
    v_state text;
BEGIN
    PERFORM free_slot(p_queue, p_id);
    IF p_kind = 'retry' THEN
        v_state := CASE WHEN p_run_at <= p_now THEN 'ready' ELSE 'delayed' END;
        UPDATE jobs
           SET state = v_state, run_at = p_run_at,
               seq = CASE WHEN p_keep_seq THEN seq ELSE nextval('job_seq') END,
               last_token = lease_token, last_op = p_op, last_state = v_state,
               lease_token = NULL, lease_deadline = NULL, claim_token = NULL
         WHERE queue = p_queue AND id = p_id;
        IF v_state = 'ready' THEN
            PERFORM wake(ARRAY[p_queue]);
        END IF;
        RETURN v_state;
    END IF;
    v_state := CASE WHEN p_kind = 'dead' THEN 'dead' ELSE 'cancelled' END;
    PERFORM free_unique(p_queue, p_id);
    UPDATE jobs
       SET state = v_state, reason = p_reason, finished_at = p_now, seq = nextval('job_seq'),
           expires_at = CASE WHEN v_state = 'dead' THEN NULL ELSE p_now + p_keep END,
           last_token = lease_token, last_op = p_op, last_state = v_state,
           lease_token = NULL, lease_deadline = NULL, claim_token = NULL, stop = NULL
     WHERE queue = p_queue AND id = p_id;
    PERFORM ended(p_queue, p_id);
    PERFORM settle(p_queue, p_id, true, p_now, p_keep, p_max_dead, p_dead_age);
    IF v_state = 'dead' THEN
        PERFORM trim_dead(p_queue, p_max_dead, p_now - p_dead_age);
    END IF;
    RETURN v_state;
END $$;

-- fail: record p_error for this attempt, then apply the decision (retry after p_delay, dead
-- or cancel with p_reason; a retry of a job asked to stop is a cancel). Returns the new
-- state; for a re-send, the state the first one left; NULL for a stale lease (counted).
CREATE FUNCTION fail(
    p_queue text, p_id text, p_token text, p_error bytea, p_kind text, p_delay interval,
    p_reason text, p_keep interval, p_max_dead integer, p_dead_age interval, p_now timestamptz
) RETURNS text
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
#variable_conflict use_column
DECLARE
    v_now timestamptz := coalesce(p_now, clock_timestamp());
    v_held integer := held(p_queue, p_id, p_token, 'fail');
    v_stop text;
    v_kind text := p_kind;
    v_reason text := p_reason;
BEGIN
    IF v_held = 0 THEN
        RETURN (SELECT last_state FROM jobs WHERE queue = p_queue AND id = p_id);
    ELSIF v_held < 0 THEN
        RETURN NULL;
    END IF;
    PERFORM count_ends(p_queue, 0, 1);
    UPDATE jobs SET errors = errors || p_error WHERE queue = p_queue AND id = p_id
    RETURNING stop INTO v_stop;
    IF v_kind = 'retry' AND v_stop IS NOT NULL THEN
        v_kind := 'cancel';
        v_reason := v_stop;
    END IF;
    RETURN end_job(p_queue, p_id, v_kind, v_now + p_delay, false, v_reason, 'fail', v_now,
                   p_keep, p_max_dead, p_dead_age);
END $$;

-- release: give the job back unspent (Q7): front of its priority (seq kept), after p_delay;
-- a job asked to stop is cancelled. Returns false for a stale lease (counted).
CREATE FUNCTION release(
    p_queue text, p_id text, p_token text, p_delay interval, p_keep interval,
    p_now timestamptz
) RETURNS boolean
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
#variable_conflict use_column
DECLARE
    v_now timestamptz := coalesce(p_now, clock_timestamp());
    v_held integer := held(p_queue, p_id, p_token, 'release');
    v jobs%ROWTYPE;
BEGIN
    IF v_held <> 1 THEN
        RETURN v_held = 0;
    END IF;
    SELECT * INTO v FROM jobs WHERE queue = p_queue AND id = p_id;
    IF v.stop IS NOT NULL THEN
        PERFORM end_job(p_queue, p_id, 'cancel', NULL, true, v.stop, 'release', v_now,
                        p_keep, NULL, NULL);
    ELSE
        UPDATE jobs SET attempts = attempts - 1 WHERE queue = p_queue AND id = p_id;
        PERFORM end_job(p_queue, p_id, 'retry',
                        CASE WHEN p_delay > interval '0' THEN v_now + p_delay
                             ELSE least(v.run_at, v_now) END,
                        true, NULL, 'release', v_now, p_keep, NULL, NULL);
    END IF;
    RETURN true;
END $$;

-- cancel: a pending job (ready, delayed, waiting) ends cancelled with p_reason; a running one
-- is asked to stop (renew tells its worker; the first reason stands); an ended one is left.
-- Returns the job's state after the call, NULL for an unknown job.
CREATE FUNCTION cancel(
    p_queue text, p_id text, p_reason text, p_keep interval, p_max_dead integer,
    p_dead_age interval, p_now timestamptz
) RETURNS text
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
#variable_conflict use_column
DECLARE
    v_now timestamptz := coalesce(p_now, clock_timestamp());
    v jobs%ROWTYPE;
BEGIN
    SELECT * INTO v FROM jobs j
     WHERE j.id = p_id AND (p_queue IS NULL OR j.queue = p_queue)
       AND (j.expires_at IS NULL OR j.expires_at > v_now)
     ORDER BY j.queue LIMIT 1 FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF v.state IN ('ready', 'delayed', 'waiting') THEN
        PERFORM free_unique(v.queue, v.id);
        UPDATE jobs
           SET state = 'cancelled', reason = p_reason, finished_at = v_now,
               expires_at = v_now + p_keep, seq = nextval('job_seq'), stop = NULL
         WHERE queue = v.queue AND id = v.id;
        PERFORM ended(v.queue, v.id);
        PERFORM settle(v.queue, v.id, true, v_now, p_keep, p_max_dead, p_dead_age);
        RETURN 'cancelled';
    END IF;
    IF v.state = 'active' AND v.stop IS NULL THEN
        UPDATE jobs SET stop = p_reason WHERE queue = v.queue AND id = v.id;
    END IF;
    RETURN v.state;
END $$;
