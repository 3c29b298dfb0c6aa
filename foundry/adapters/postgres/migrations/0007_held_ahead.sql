-- Jobs claimed ahead of need (ClaimRequest.ahead), as the Redis queue holds them: a claim's
-- last p_ahead jobs are held unstarted. Their attempt is counted by the claim, as any claim's,
-- but given back by the reaper if the lease lapses before its start is reported (p_started
-- of a claim, a renew with p_started true, or the job settled): a worker that dies holding
-- jobs it never started spends none of their attempts. At most 2 such lapses a job (the
-- ports' UNSTARTED_LAPSES_MAX): from then on its claims count at once, so a job that kills
-- its worker before its start is reported still ends dead.
--
-- jobs.ahead   true while the current lease holds the job claimed ahead and unstarted, else
--              NULL (every claim sets it; NULL columns cost no bytes beyond the null bitmap)
-- jobs.lapses  how many of the job's leases lapsed unstarted (NULL: none)

ALTER TABLE jobs ADD COLUMN ahead boolean, ADD COLUMN lapses smallint;

-- start: the jobs of these leases, held ahead, started: their attempts stay spent. A lease
-- that no longer holds its job changes nothing.
CREATE FUNCTION start(p_queues text[], p_ids text[], p_tokens text[]) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    FOR k IN 1 .. coalesce(array_length(p_ids, 1), 0) LOOP
        UPDATE jobs SET ahead = NULL
         WHERE queue = p_queues[k] AND id = p_ids[k] AND lease_token = p_tokens[k] AND ahead;
    END LOOP;
END $$;

-- claim: 0005's, with the last p_ahead jobs taken held ahead (unless the job's unstarted
-- lapses reached 2), and the starts p_started_* reported first, in the same transaction.
-- Rows also give, for a job held ahead, its unstarted lapses so far (NULL: not held ahead).
CREATE FUNCTION claim(
    p_queues text[], p_limit integer, p_lease interval, p_token text, p_worker text,
    p_now timestamptz, p_remember boolean, p_ahead integer, p_started_queues text[],
    p_started_ids text[], p_started_tokens text[]
) RETURNS TABLE (n bigint, queue text, id text, blob bytea, lease_token text, attempts integer,
                 deadline timestamptz, fence bigint, lapses integer)
LANGUAGE plpgsql SET search_path FROM CURRENT SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
DECLARE
    v_now timestamptz := coalesce(p_now, clock_timestamp());
    v_taken integer := 0;
    v_starting integer := greatest(p_limit - coalesce(p_ahead, 0), 0);
    v_q text;
    v_ukey text;
    v_until text;
    v_ahead boolean;
    c record;
BEGIN
    IF cardinality(p_started_ids) > 0 THEN
        PERFORM start(p_started_queues, p_started_ids, p_started_tokens);
    END IF;
    IF p_token IS NOT NULL AND EXISTS (
        SELECT 1 FROM claim_tokens t WHERE t.token = p_token AND t.expires_at > v_now
    ) THEN
        RETURN QUERY
            SELECT row_number() OVER (ORDER BY j.fence), j.queue, j.id, j.blob,
                   j.lease_token, j.attempts, j.lease_deadline, j.fence,
                   CASE WHEN j.ahead THEN coalesce(j.lapses, 0)::integer END
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
            v_ahead := CASE WHEN v_taken >= v_starting THEN true END;
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
                   claim_token = p_token,
                   ahead = CASE WHEN coalesce(j.lapses, 0) < 2 THEN v_ahead END
             WHERE j.queue = v_q
               AND j.id = (SELECT head.id FROM head WHERE head.limit_key IS NULL)
            RETURNING j.queue, j.id, j.blob, j.lease_token, j.attempts, j.lease_deadline,
                      j.fence, CASE WHEN j.ahead THEN coalesce(j.lapses, 0)::integer END,
                      j.unique_key, j.unique_until
                 INTO queue, id, blob, lease_token, attempts, deadline, fence, lapses, v_ukey,
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
                       claim_token = p_token,
                       ahead = CASE WHEN coalesce(j.lapses, 0) < 2 THEN v_ahead END
                 WHERE j.queue = v_q AND j.id = c.id
                RETURNING j.queue, j.id, j.blob, j.lease_token, j.attempts, j.lease_deadline,
                          j.fence, CASE WHEN j.ahead THEN coalesce(j.lapses, 0)::integer END,
                          j.unique_key, j.unique_until
                     INTO queue, id, blob, lease_token, attempts, deadline, fence, lapses,
                          v_ukey, v_until;
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

-- 0005's claim, still called by workers of the previous release (directly and through
-- 0005's complete_and_claim): nothing held ahead, so every claim resets jobs.ahead.
CREATE OR REPLACE FUNCTION claim(
    p_queues text[], p_limit integer, p_lease interval, p_token text, p_worker text,
    p_now timestamptz, p_remember boolean
) RETURNS TABLE (n bigint, queue text, id text, blob bytea, lease_token text, attempts integer,
                 deadline timestamptz, fence bigint)
LANGUAGE sql SET search_path FROM CURRENT AS $$
    SELECT c.n, c.queue, c.id, c.blob, c.lease_token, c.attempts, c.deadline, c.fence
      FROM claim(p_queues, p_limit, p_lease, p_token, p_worker, p_now, p_remember, 0,
                 '{}', '{}', '{}') c
$$;

-- complete_and_claim: 0005's, with the claim's p_ahead and the starts to report, and each
-- claimed job's unstarted lapses (NULL: not held ahead). Commits as 0005's does, but a call
-- that reports starts waits for the WAL flush even when it claims nothing: a start lost in a
-- crash would give back the attempt of a job that ran.
CREATE FUNCTION complete_and_claim(
    p_queues text[], p_ids text[], p_tokens text[], p_results bytea[], p_keep interval,
    p_claim_queues text[], p_limit integer, p_lease interval, p_token text, p_worker text,
    p_now timestamptz, p_remember boolean, p_ahead integer, p_started_queues text[],
    p_started_ids text[], p_started_tokens text[]
) RETURNS TABLE (n bigint, queue text, id text, blob bytea, lease_token text, attempts integer,
                 deadline timestamptz, fence bigint, lapses integer, applied boolean)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_mode text := current_setting('synchronous_commit');
BEGIN
    RETURN QUERY
        SELECT -c.i::bigint, NULL::text, NULL::text, NULL::bytea, NULL::text, NULL::integer,
               NULL::timestamptz, NULL::bigint, NULL::integer, c.applied
          FROM complete(p_queues, p_ids, p_tokens, p_results, p_keep, p_now) c;
    RETURN QUERY
        SELECT c.*, NULL::boolean
          FROM claim(p_claim_queues, p_limit, p_lease, p_token, p_worker, p_now, p_remember,
                     p_ahead, p_started_queues, p_started_ids, p_started_tokens) c;
    IF FOUND OR cardinality(p_started_ids) > 0 THEN
        PERFORM set_config('synchronous_commit', v_mode, true);
    END IF;
END $$;

-- renew: 0001's, and a lease renewed with p_started true reports its start (held ahead: its
-- attempt stays spent).
CREATE FUNCTION renew(
    p_queues text[], p_ids text[], p_tokens text[], p_progress bytea[], p_duration interval,
    p_now timestamptz, p_started boolean[]
) RETURNS TABLE (i bigint, deadline timestamptz, stop text)
LANGUAGE sql SET search_path FROM CURRENT AS $$
    UPDATE jobs j
       SET lease_deadline = coalesce(p_now, clock_timestamp()) + p_duration,
           progress = coalesce(l.progress, j.progress),
           ahead = CASE WHEN l.started THEN NULL ELSE j.ahead END
      FROM unnest(p_queues, p_ids, p_tokens, p_progress, p_started) WITH ORDINALITY
           AS l(queue, id, token, progress, started, i)
     WHERE j.queue = l.queue AND j.id = l.id AND j.state = 'active'
       AND j.lease_token = l.token
    RETURNING l.i, j.lease_deadline, j.stop
$$;

-- give_back: the reaper found the lease of a job held ahead lapsed unstarted: its attempt
-- comes back and the lapse is counted (the reaper then makes it ready again, seq kept).
CREATE FUNCTION give_back(p_queue text, p_id text) RETURNS void
LANGUAGE sql SET search_path FROM CURRENT AS $$
    UPDATE jobs SET attempts = greatest(attempts - 1, 0), lapses = coalesce(lapses, 0) + 1,
                    ahead = NULL
     WHERE queue = p_queue AND id = p_id AND ahead
$$;
