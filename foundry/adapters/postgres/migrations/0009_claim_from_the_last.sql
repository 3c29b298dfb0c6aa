-- claim: 0007's, with each job after the first of a queue looked up from the one taken last
-- (same priority, next seq) instead of from the queue's start. Until a vacuum, jobs_ready
-- keeps an entry for every job claimed since (its row is no longer ready, but the index
-- entry stays), and each lookup from the start passed all of them: a drain's claims grew
-- slower as it went, about 90 index pages a lookup after 20,000 jobs. Now a claim walks
-- them once, not once a job. The order is the same: a claim takes its jobs in (priority
-- DESC, seq) order, and when the priority it is at has no job left it looks from the start.

CREATE OR REPLACE FUNCTION claim(
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
    v_prio integer;  -- the priority and seq of the job taken last (NULL: walk from the start)
    v_seq bigint;
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
        v_seq := NULL;
        WHILE v_taken < p_limit LOOP
            v_ahead := CASE WHEN v_taken >= v_starting THEN true END;
            IF v_seq IS NOT NULL THEN
                -- The job after the one taken last, at its priority: one index step. From the
                -- queue's start, each step would pass every entry claimed since the last
                -- vacuum (and those this call took), dead but still in jobs_ready.
                WITH head AS MATERIALIZED (
                    SELECT h.id, h.limit_key FROM jobs h
                     WHERE h.queue = v_q AND h.state = 'ready' AND h.priority = v_prio
                       AND h.seq > v_seq
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
                          j.unique_key, j.unique_until, j.priority, j.seq
                     INTO queue, id, blob, lease_token, attempts, deadline, fence, lapses,
                          v_ukey, v_until, v_prio, v_seq;
            END IF;
            IF v_seq IS NULL THEN
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
                          j.unique_key, j.unique_until, j.priority, j.seq
                     INTO queue, id, blob, lease_token, attempts, deadline, fence, lapses, v_ukey,
                          v_until, v_prio, v_seq;
                IF NOT FOUND THEN
                    -- Nothing ready, or the next job has a limit key (locked by us above).
                    SELECT h.id, h.limit_key, h.limit_concurrency, h.limit_interval_ms, h.reserved,
                           h.priority, h.seq
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
                    v_prio := c.priority;
                    v_seq := c.seq;
                END IF;
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
