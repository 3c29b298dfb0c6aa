-- A claim that waits (LISTEN) runs several rounds under one claim token. 0001's claim
-- remembered every round's answer under the token, an empty one too, so the round a NOTIFY
-- woke replayed the first round's empty answer and the job waited for the worker's next
-- claim. claim(..., p_remember) remembers an empty answer only when p_remember is true (the
-- last round of a call, as the Redis claim's "new" mode); a round that takes jobs always
-- remembers its token, so a re-sent claim gets those leases back (Q8).
CREATE FUNCTION claim(
    p_queues text[], p_limit integer, p_lease interval, p_token text, p_worker text,
    p_now timestamptz, p_remember boolean
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
    IF p_token IS NOT NULL AND (v_taken > 0 OR p_remember) THEN
        INSERT INTO claim_tokens (token, expires_at) VALUES (p_token, v_now + p_lease)
        ON CONFLICT (token) DO UPDATE SET expires_at = excluded.expires_at;
    END IF;
END $$;

-- 0001's claim, still called by workers of the previous release during a rolling deploy:
-- every round remembered, as before.
CREATE OR REPLACE FUNCTION claim(
    p_queues text[], p_limit integer, p_lease interval, p_token text, p_worker text,
    p_now timestamptz
) RETURNS TABLE (n bigint, queue text, id text, blob bytea, lease_token text, attempts integer,
                 deadline timestamptz, fence bigint)
LANGUAGE sql SET search_path FROM CURRENT AS $$
    SELECT * FROM claim(p_queues, p_limit, p_lease, p_token, p_worker, p_now, true)
$$;
