-- renew: extend leases to now + duration, storing the progress their jobs reported.
-- KEYS  the queue's keys
-- ARGV  now, duration ms, then per lease: id, lease token, progress ("" for none, else
--       "<fraction>[\x1f<note>]"), "1" if its job started (a lease held ahead: its start is
--       recorded, as `start` does) else ""
-- Reply one new deadline per lease, or 0 where the lease is lost, or {deadline, reason} where
--       a cancel asked the job to stop
-- Keeps Q4 (only the current lease is extended, only its holder's progress stored), Q6
local now, duration = now_ms(ARGV[1]), tonumber(ARGV[2])
local n = (#ARGV - 2) / 4
if not now or not duration or duration < 1 or n ~= math.floor(n) then
  return fail_arg("renew needs now, duration and id/token/progress/started quadruples")
end
local out = {}
local stops = redis.call("EXISTS", BASE .. "stop") == 1
local aheads = redis.call("EXISTS", BASE .. "ahead") == 1
-- Checked before the first write (misplaced): one lease's state is read before it is written.
local wrong = misplaced({ STATE, "hash", LEASES, "zset", BASE .. "progress", "hash",
  BASE .. "ahead", "hash", BASE .. "stop", "hash" })
if wrong then
  return wrong
end
for i = 0, n - 1 do
  local b = 3 + i * 4
  local id, token, progress, started = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3]
  local st = get_state(id)
  if st and st.l == "A" and st.tk == token then
    if aheads and started == "1" then
      mark_started(id, redis.call("HGET", BASE .. "ahead", id), token)
    end
    st.t = now + duration
    put_state(id, st)
    redis.call("ZADD", LEASES, n2s(st.t), id)
    if progress ~= "" then
      redis.call("HSET", BASE .. "progress", id, progress)
    end
    local reason = stops and stop_reason(id)
    if reason then
      out[i + 1] = { st.t, reason }
    else
      out[i + 1] = st.t
    end
  else
    out[i + 1] = 0
  end
end
return out
