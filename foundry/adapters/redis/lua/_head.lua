-- Foundry's Redis Functions library: the queue's and the cache's Lua code, loaded once per Redis
-- (FUNCTION LOAD) and called by FCALL (runner.py). runner.py puts this file first, then
-- _queue.lua and _cache.lua (helpers, made once per load), then every file of queue/ as the
-- function <name>_<version> and every file of cache/ as cache_<name>_<version>; a file whose
-- header has a "-- Flags" line is registered with those flags (no-writes: Redis runs it while
-- out of memory, where it refuses a function that may write).
--
-- KEYS AND RECORDS
-- Queue keys share their queue's hash tag, so each queue function touches one Cluster slot.
-- <base> is "<QUEUE_PREFIX>:{<queue>}:"; the first eleven are named in this order by keys.py
-- QUEUE_KEY_NAMES. A queue function's KEYS is the first of them, the jobs key (all eleven work
-- too): bind() names the others from it once per queue, where ten more keys per call cost
-- Redis more to parse; the schedule functions take all eleven, then sched:due and sched:rec.
-- The functions build every other name from <base>.
--
--   key            type    holds                                          written by
--   <base>jobs     hash    id -> job record (R1)                          enqueue
--   <base>state    hash    id -> job state (R2), once delayed or claimed  claim, renew, complete,
--                          (and "#hashtable" -> a pad that keeps it a     fail, release, reap,
--                          hashtable: _queue.lua STATE_PAD)               requeue_dead, enqueue
--   <base>errors   hash    id -> JSON array of ErrorInfo                  fail, reap
--   <base>results  hash    id -> the result's JSON                        complete
--   <base>ready    zset    id by (255 - priority) * 2^44 + seq: the       enqueue, claim (pops),
--                          ready jobs the fifo does not hold              fail, release, reap,
--                                                                         requeue_dead
--   <base>fifo     list    id, seq, id, seq...: the jobs enqueued ready   enqueue, claim (pops,
--                          at priority 0, in seq order (a claim merges    merged with `ready`),
--                          it with `ready`, as if each were there with    cancel, delete, purge
--                          score 255 * 2^44 + seq)
--   <base>delayed  zset    id by run time (ms)                            enqueue, claim (moves
--                                                                         to ready), fail, release
--   <base>leases   zset    id by lease deadline (ms)                      claim, renew, complete,
--                                                                         fail, release, reap
--   <base>dead     zset    id by a sequence number (newest highest)       fail, reap, claim
--                                                                         (undecodable)
--   <base>done     zset    completed or cancelled id by its record's      complete, cancel
--                          expiry (ms)
--   <base>meta     hash    seq, epoch, paused ("1"), completed, failed,   enqueue, complete, fail,
--                          dead_trimmed, stale_rejected, cancelled,      release, reap, claim,
--                          fence (the last fencing token a claim gave),   requeue_dead, cancel;
--                          held (jobs holding a limit slot), rates       the client (paused)
--                          ("1": the rate state of the release before
--                          lim:rate was adopted, see adopt_old_rates),
--                          cbofs ("1": the pending callbacks of the
--                          release before's batches entered in cbof,
--                          see adopt_old_callbacks)
--   <base>wake     list    "1" hints that work arrived, at most 8         enqueue, fail, release,
--                                                                         reap, requeue_dead;
--                                                                         the client BLPOPs it
--   <base>u:<key>  string  "<job id> <expiry ms>": who holds a unique     enqueue (released by
--                          key (PX only frees memory)                     claim, complete, bury)
--   <base>lim:run:<key>  string  how many jobs of limit key <key> run    claim, complete, fail,
--                          (deleted at 0); META's `held` counts the       release, reap, forget
--                          jobs holding a slot: the active ones with
--                          a concurrency limit
--   <base>lim:rate:<key> hash  next: the key's earliest next start (ms);  claim, cancel, forget
--                          turn: the job delayed until then (expires a
--                          minute after `next` when no job holds the turn)
--   <base>lim:line:<key> list  ids waiting for <key>'s turn, first in     claim (RPUSH, LPOP),
--                          line first (each in `delayed` at PARKED)       cancel, forget (LPOP)
--   <base>lim:park:<key> list  ids parked until a slot of <key> frees     claim (RPUSH), lease
--                          (each also in `delayed` at PARKED = 2^52)      ends (LPOP)
--   <base>t:<tok>  string  "<expiry ms>[ <id>]...": what a claim token    claim
--                          took, re-sent while unexpired (Q8)
--   <base>r:<id>   string  the first reply of a counting admin call       delete, purge, reap,
--                          (60 s), returned to its re-send                requeue_dead
--   <base>stop     hash    id -> reason: a cancel asked the running job   cancel (set), the job's
--                          to stop (renew reports it)                     end (cancel_job, forget)
--   <base>deps     hash    waiting id -> "<count> <D|C|R>": how many      enqueue, complete, the
--                          jobs it still waits for; if one fails, D:      end of a job
--                          dead, C: cancelled, R: runs anyway             (settle_dependants)
--   <base>dependants hash  id -> "<id> <id>...": the jobs waiting for it  enqueue, the job's end
--   <base>progress hash    id -> "<fraction>[\x1f<note>]": the last        renew (forget drops it)
--                          progress its handler reported
--   <base>ahead    hash    id -> "<n> <lease token>" while that lease     claim, start, renew,
--                          holds it claimed ahead and unstarted, "<n>"   complete, fail,
--                          once started; n: its leases that lapsed       release, reap, the
--                          unstarted (kept until the job ends)           job's end
--   <base>waiters  hash    id -> "1": someone waits for the job to end    watch (set), the job's
--                                                                         end (notify_settled)
--   <base>n:<id>   list    "1" once the job ended and someone waited      complete, fail, reap,
--                          (60 s); waiters BLMOVE it onto itself          claim, delete, purge
--   <base>batchof  hash    member id -> its batch id, until the member's     batch, the member's end
--                          end is counted                                 (settle_batches)
--   <base>b:<id>   hash    a batch: counts, flags, callbacks' enqueue     batch, batch_cancel,
--                          arguments (_queue.lua, Batches)                the end of a member
--   <base>cbof     hash    callback id -> "<which> <batch id>" until it   batch, the batch's
--                          fired or its batch ended (a pending callback's  callbacks (fired, or
--                          id, which batch and enqueue refuse)             its end), reap (once)
--   <base>bm:<id>  list    a batch's member ids                           batch
--   <base>batches  zset    batch id by created ms                         batch (expiry drops)
--   <base>batches:end zset ended batch id by the expiry of its record     the batch's end
--   <base>sched:due zset   schedule name by its next tick (ms); waiting   schedule_fire,
--                          ones only (not paused nor orphaned)            schedule_admin
--   <base>sched:rec hash   schedule name -> its record (R4)               schedule_fire,
--                                                                         schedule_admin
--   <base>moving   none    never written: on Redis Cluster every call     nobody
--                          names it, so no function runs while the slot
--                          migrates (cluster_runner.py)
--
-- Outside any queue's slot, written by the client only: <QUEUE_PREFIX>:{registry}:queues (set
-- of queue names), <QUEUE_PREFIX>:{workers}:index (zset of worker ids by heartbeat expiry) and
-- <QUEUE_PREFIX>:{workers}:w:<id> (a worker's JSON info); <QUEUE_PREFIX>:{registry}:schedules
-- (set of the queues holding periodic schedules).
--
-- Cache keys (<cp> is "<CACHE_PREFIX>:"; on Redis Cluster "<CACHE_PREFIX>:{<CACHE_PREFIX>#<n>}:",
-- one of 64 buckets, each with its own stats beside its values; tag versions then live
-- under "<CACHE_PREFIX>:{<CACHE_PREFIX>#tags}:" (cache_keys.py)):
--
--   <cp>v:<key>           string  value (R3)                      cache set, mset, incr, touch,
--                                                                  del, pull, get (drops expired)
--   <cp>t:<digest>:<key>  string  a tagged value (R3); <digest>   the same functions
--                                 folds in its tags' versions
--   <cp>tag:<name>        string  a tag's version (integer)       the client (SET NX a random
--                                                                  start, INCR on flush)
--   <cp>lock:<name>       string  "<expiry ms>:<owner token>"     cache lock
--   <cp>flight:<key>      string  the same, for remember          cache lock
--   <cp>stats             hash    hits, misses, writes, deletes   cache get, mget, set, mset, incr,
--                                                                  del, pull
--
-- R1 job record, immutable: "<enqueued ms, base 36> <priority> <max attempts> <unique length>
--    <unique><blob>"; <unique> is "S<key>" or "F<key>" (released when the job starts or
--    finishes) or empty; <blob> is the codec's JSON without id and queue, or "=<name>" with
--    "\x1f<created_at us, base 36>" (blobs.py).
-- R2 job state: "<state>,<attempts>,<seq>,<lease token>,<time ms>,<outcome>,<last token>,
--    <worker>,<reason>". state R ready, D delayed, A active, C completed, X dead,
--    N cancelled, W waiting for its dependencies (time: its own run time); time is the lease deadline (A) or when it finished, died or was cancelled
--    (C, X, N), and 1 for a ready job a freed limit slot made ready (0 otherwise); the last ended lease's token and
--    outcome (C completed, Y retried now, D retried later, X dead, N cancelled by its fail,
--    R released, S released and cancelled as asked, L lost) let an exact re-send of
--    complete/fail/release be recognised (Q8), and only of the call that ended it. A lease token is
--    "<claim token>.<attempt>".
-- R3 cache value: "<expires at ms>:<payload>" (0 = forever); the header decides expiry against
--    the caller's clock, PXAT only frees memory (never before the header says).
-- R4 schedule record, JSON: {"d": definition (the recurrence as text), "l": last tick fired
--    (ms, a string) or false, "j": the last tick's job id or false, "p": paused 0/1, "o":
--    orphaned (no longer declared) 0/1}.
--
-- Every function takes "now" in ms as ARGV[1] ("" = the server's TIME), checks its arguments
-- before its first write, and is safe to re-send after a lost reply unless its header says not.

local function fail_arg(what)
  return redis.error_reply("FOUNDRY bad argument: " .. what)
end

-- An integer as digits: "%d" (a 64-bit integer) when exact, a third of "%.0f"'s cost.
local function n2s(n)
  if n % 1 == 0 and n > -9e18 and n < 9e18 then
    return string.format("%d", n)
  end
  return string.format("%.0f", n)
end

-- The milliseconds of a second by their text ("" for 0), and the last second read from TIME
-- (its text and its ms): a table lookup and a string compare, where tonumber runs strtod.
local MS_OF = { [""] = 0 }
for i = 1, 999 do
  MS_OF["" .. i] = i
end
local last_s, last_s_ms = nil, 0

-- The server's clock in ms.
local function server_ms()
  local t = redis.call("TIME")
  if t[1] ~= last_s then
    last_s, last_s_ms = t[1], tonumber(t[1]) * 1000
  end
  return last_s_ms + MS_OF[string.sub(t[2], 1, -4)]
end

-- ARGV[1]: the caller's clock in ms, or "" for the server's.
local function now_ms(arg)
  if arg ~= nil and arg ~= "" then
    return tonumber(arg)
  end
  return server_ms()
end
