-- The worker's path, cheaper: its completions and its next claim in one call, each
-- statement planned once (generic plans, one row a statement where a LIMIT would need a
-- custom plan), and completions committed without waiting for the WAL flush.
--
-- complete sets synchronous_commit off for its own transaction (set_config(..., true)): a
-- server crash (not a clean restart) can lose the last few hundred milliseconds of
-- completions; such a job is active again under its old lease, and runs again once that
-- lease lapses (its attempt counted), never lost. Claims commit as the session does
-- (synchronously by default), also in complete_and_claim: a claim lost in a crash after its
-- job started would let a second run start before the first one's worker learned of it, and
-- that run would count no attempt. Enqueues stay synchronous too: an acknowledged dispatch
-- survives a crash, and its flush writes every earlier completion with it.

-- complete: each lease's job completed with its result, kept until now + p_keep. Returns
-- (i, applied): false for a stale lease (counted); a re-send is applied (true) and changes
-- nothing. One primary-key UPDATE a lease; only the jobs that need it free a limit slot or
-- a unique key, notify waiters or settle dependants.
CREATE OR REPLACE FUNCTION complete(
    p_queues text[], p_ids text[], p_tokens text[], p_results bytea[], p_keep interval,
    p_now timestamptz
) RETURNS TABLE (i integer, applied boolean)
LANGUAGE plpgsql SET search_path FROM CURRENT SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
DECLARE
    v_now timestamptz := coalesce(p_now, clock_timestamp());
    v_async text := set_config('synchronous_commit', 'off', true);
    v_done integer[] := '{}';
    v_slot boolean;
    v_ukey text;
    v_again boolean;
    v_k integer;
    v_n integer;
BEGIN
    FOR k IN 1 .. coalesce(array_length(p_ids, 1), 0) LOOP
        UPDATE jobs j
           SET state = 'completed', result = p_results[k], finished_at = v_now,
               expires_at = v_now + p_keep, seq = nextval('job_seq'),
               last_token = j.lease_token, last_op = 'complete', last_state = 'completed',
               lease_token = NULL, lease_deadline = NULL, claim_token = NULL, stop = NULL
         -- A lease token is set only while its job is active (every end clears it), so the
         -- state is not asked for: that would let a plan walk jobs_active, every active job.
         WHERE j.queue = p_queues[k] AND j.id = p_ids[k] AND j.lease_token = p_tokens[k]
        RETURNING j.holds_slot, j.unique_key INTO v_slot, v_ukey;
        i := k;
        applied := FOUND;
        IF FOUND THEN
            v_done := v_done || k;
            IF v_slot THEN
                PERFORM free_slot(p_queues[k], p_ids[k]);
            END IF;
            IF v_ukey IS NOT NULL THEN
                DELETE FROM unique_keys u
                 WHERE u.queue = p_queues[k] AND u.key = v_ukey AND u.job_id = p_ids[k];
            END IF;
        ELSE
            -- A re-send of this completion, or a stale lease (counted).
            SELECT j.last_token = p_tokens[k] AND j.last_op = 'complete' INTO v_again
              FROM jobs j WHERE j.queue = p_queues[k] AND j.id = p_ids[k];
            applied := coalesce(v_again, false);
            IF NOT applied THEN
                INSERT INTO queues (name) VALUES (p_queues[k]) ON CONFLICT DO NOTHING;
                UPDATE queues SET stale_rejected = stale_rejected + 1 WHERE name = p_queues[k];
            END IF;
        END IF;
        RETURN NEXT;
    END LOOP;
    IF cardinality(v_done) = 0 THEN
        RETURN;
    END IF;
    -- count_ends inlined (a LANGUAGE sql function is planned at every call); one row to
    -- add to when every lease is of one queue, as a worker's usually are.
    FOREACH v_k IN ARRAY v_done LOOP
        v_n := CASE WHEN p_queues[v_done[1]] = ALL (p_queues) THEN cardinality(v_done) ELSE 1 END;
        INSERT INTO queue_totals AS t (queue, shard, completed, failed)
        VALUES (p_queues[v_k], pg_backend_pid() % 16, v_n, 0)
        ON CONFLICT (queue, shard) DO UPDATE SET completed = t.completed + excluded.completed;
        EXIT WHEN v_n > 1;
    END LOOP;
    -- Waiters to notify: one look for the whole batch, usually none.
    IF EXISTS (SELECT 1 FROM waiters w
                WHERE w.queue = ANY (p_queues) AND w.job_id = ANY (p_ids)) THEN
        FOREACH v_k IN ARRAY v_done LOOP
            PERFORM ended(p_queues[v_k], p_ids[v_k]);
        END LOOP;
    END IF;
    -- What waits for each job's end (settle: dependants, and whatever later files add).
    FOREACH v_k IN ARRAY v_done LOOP
        PERFORM settle(p_queues[v_k], p_ids[v_k], false, v_now, NULL, NULL, NULL);
    END LOOP;
END $$;

-- claim: 0003's, with fewer statements a job: the paused check inside the statements that
-- promote and take, and the next job taken by one UPDATE unless it has a limit key (then
-- it is admitted first, as before).
CREATE OR REPLACE FUNCTION claim(
    p_queues text[], p_limit integer, p_lease interval, p_token text, p_worker text,
    p_now timestamptz, p_remember boolean
) RETURNS TABLE (n bigint, queue text, id text, blob bytea, lease_token text, attempts integer,
                 deadline timestamptz, fence bigint)
LANGUAGE plpgsql SET search_path FROM CURRENT SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
DECLARE
    v_now timestamptz := coalesce(p_now, clock_timestamp());
    v_taken integer := 0;
    v_q text;
    v_ukey text;
    v_until text;
    c record;
BEGIN
    IF p_token IS NOT NULL AND EXISTS (
        SELECT 1 FROM claim_tokens t WHERE t.token = p_token AND t.expires_at > v_now
    ) THEN
        RETURN QUERY
            SELECT row_number() OVER (ORDER BY j.fence), j.queue, j.id, j.blob,
                   j.lease_token, j.attempts, j.lease_deadline, j.fence
              FROM jobs j WHERE j.claim_token = p_token AND j.state = 'active';
        RETURN;
    END IF;
    FOREACH v_q IN ARRAY p_queues LOOP
        EXIT WHEN v_taken >= p_limit;
        -- The due jobs' ids as an array: the UPDATE probes the primary key for each (a join
        -- could be planned as a hash join over the whole table).
        WITH due AS MATERIALIZED (
            SELECT j.id FROM jobs j
             WHERE j.queue = v_q AND j.state = 'delayed' AND j.run_at <= v_now
               AND NOT EXISTS (SELECT 1 FROM queues WHERE name = v_q AND paused)
             ORDER BY j.run_at LIMIT 1000 FOR UPDATE SKIP LOCKED)
        UPDATE jobs d SET state = 'ready'
         WHERE d.queue = v_q AND d.id = ANY (ARRAY(SELECT due.id FROM due));
        WHILE v_taken < p_limit LOOP
            -- The queue's next job, taken at once unless it has a limit key. A constant
            -- LIMIT keeps every plan a walk of jobs_ready in claim order.
            WITH head AS MATERIALIZED (
                SELECT h.id, h.limit_key FROM jobs h
                 WHERE h.queue = v_q AND h.state = 'ready'
                   AND NOT EXISTS (SELECT 1 FROM queues WHERE name = v_q AND paused)
                 ORDER BY h.priority DESC, h.seq
                 LIMIT 1 FOR UPDATE SKIP LOCKED)
            UPDATE jobs j
               SET state = 'active', attempts = j.attempts + 1,
                   fence = nextval('job_fence'),
                   lease_token = replace(gen_random_uuid()::text, '-', ''),
                   lease_deadline = v_now + p_lease, worker = p_worker,
                   claim_token = p_token
             WHERE j.queue = v_q
               AND j.id = (SELECT head.id FROM head WHERE head.limit_key IS NULL)
            RETURNING j.queue, j.id, j.blob, j.lease_token, j.attempts, j.lease_deadline,
                      j.fence, j.unique_key, j.unique_until
                 INTO queue, id, blob, lease_token, attempts, deadline, fence, v_ukey,
                      v_until;
            IF NOT FOUND THEN
                -- Nothing ready, or the next job has a limit key (locked by us above).
                SELECT h.id, h.limit_key, h.limit_concurrency, h.limit_interval_ms, h.reserved
                  INTO c
                  FROM jobs h
                 WHERE h.queue = v_q AND h.state = 'ready'
                   AND NOT EXISTS (SELECT 1 FROM queues WHERE name = v_q AND paused)
                 ORDER BY h.priority DESC, h.seq
                 LIMIT 1 FOR UPDATE SKIP LOCKED;
                EXIT WHEN NOT FOUND;
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
            END IF;
            IF v_until = 'started' THEN
                DELETE FROM unique_keys u
                 WHERE u.queue = v_q AND u.key = v_ukey AND u.job_id = id;
            END IF;
            v_taken := v_taken + 1;
            n := v_taken;
            RETURN NEXT;
        END LOOP;
    END LOOP;
    IF p_token IS NOT NULL AND (v_taken > 0 OR p_remember) THEN
        INSERT INTO claim_tokens (token, expires_at) VALUES (p_token, v_now + p_lease)
        ON CONFLICT (token) DO UPDATE SET expires_at = excluded.expires_at;
    END IF;
END $$;

-- complete_and_claim: complete then claim, in one call and one commit. Rows: first each
-- lease's (n = -i, applied), then each claimed job's (n >= 1, applied NULL). A call that
-- claims jobs commits as the session does (synchronously by default): see the top of this
-- file.
CREATE FUNCTION complete_and_claim(
    p_queues text[], p_ids text[], p_tokens text[], p_results bytea[], p_keep interval,
    p_claim_queues text[], p_limit integer, p_lease interval, p_token text, p_worker text,
    p_now timestamptz, p_remember boolean
) RETURNS TABLE (n bigint, queue text, id text, blob bytea, lease_token text, attempts integer,
                 deadline timestamptz, fence bigint, applied boolean)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_mode text := current_setting('synchronous_commit');
BEGIN
    RETURN QUERY
        SELECT -c.i::bigint, NULL::text, NULL::text, NULL::bytea, NULL::text, NULL::integer,
               NULL::timestamptz, NULL::bigint, c.applied
          FROM complete(p_queues, p_ids, p_tokens, p_results, p_keep, p_now) c;
    RETURN QUERY
        SELECT c.*, NULL::boolean
          FROM claim(p_claim_queues, p_limit, p_lease, p_token, p_worker, p_now, p_remember) c;
    IF FOUND THEN
        PERFORM set_config('synchronous_commit', v_mode, true);
    END IF;
END $$;
