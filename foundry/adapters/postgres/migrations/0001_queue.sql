-- The queue's tables. Run with the search path set to Foundry's schema (``foundry`` by
-- default); every time written here comes from the caller (the clock the queue is given, or
-- clock_timestamp()), never from now() inside a long transaction.
--
-- queues         one row per queue ever used: paused, running totals (completed, failed,
--                dead_trimmed, stale_rejected)
-- jobs           one row per stored job. ``blob`` is the codec's encoding of the immutable
--                job (payload, name, options); the other columns are its mutable state.
--                state: ready | delayed | active | completed | dead | cancelled | waiting
--                ready jobs are claimed by (priority DESC, seq): FIFO within a priority;
--                delayed ones become ready once run_at has come (their seq kept).
--                last_token / last_op / last_state: how the previous lease ended, so a
--                re-sent completion, failure or release is recognised (Q8).
-- unique_keys    a unique key held by the pending (or running) job job_id until expires_at
-- workers        the worker registry: each pool's heartbeat, forgotten after expires_at
-- schedules      periodic schedules' next tick and last firing

CREATE TABLE queues (
    name text PRIMARY KEY,
    paused boolean NOT NULL DEFAULT false,
    completed bigint NOT NULL DEFAULT 0,
    failed bigint NOT NULL DEFAULT 0,
    dead_trimmed bigint NOT NULL DEFAULT 0,
    stale_rejected bigint NOT NULL DEFAULT 0
);

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
    PRIMARY KEY (queue, id)
);

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
