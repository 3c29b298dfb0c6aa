-- fail: record a failed attempt and apply the retry decision.
-- KEYS  the queue's keys
-- ARGV  now, id, lease token, error JSON, decision, delay ms or reason, dead-letter max count,
--       max age ms, completed ttl ms (for a cancel); decision "retry", "dead", "cancel", or
--       "undecodable" (dead without counting the attempt or a failure)
-- Reply {"OK" | "STALE", new state, dead letters trimmed}
-- Keeps Q4 (stale leases), Q8 (a re-send returns the state it left), Q10 (errors kept with
--       the dead letter, retention applied); a job a cancel asked to stop is never retried:
--       it ends cancelled
local now = now_ms(ARGV[1])
local id, token, err, kind, arg = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local max_count, max_age, ttl = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9] or "")
local delay = tonumber(arg)
COMPLETED_TTL = ttl
local KINDS = { retry = true, dead = true, cancel = true, undecodable = true }
if not now or not max_count or not max_age or (kind == "retry" and not delay)
    or not KINDS[kind] or ((kind == "retry" or kind == "cancel") and not ttl) then
  return fail_arg("fail needs now, id, token, error, decision, retention, ttl")
end
local AFTER = { Y = "ready", D = "delayed", X = "dead", N = "cancelled" }
local st = get_state(id)
if not (st and st.l == "A" and st.tk == token) then
  if st and st.lt == token and AFTER[st.o] then
    return { "OK", AFTER[st.o], 0 }
  end
  redis.call("HINCRBY", META, "stale_rejected", 1)
  return { "STALE", "", 0 }
end
local value = redis.call("HGET", JOBS, id)
local h = value and header(value)
local stopped = stop_reason(id)
-- Checked before the first write (misplaced): a retry writes these, an end any key.
local wrong = misplaced(kind == "retry" and not stopped and { ERRORS, "hash", LEASES, "zset",
  META, "hash", BASE .. "ahead", "hash", READY, "zset", DELAYED, "zset", WAKE, "list" }
  or ending_checks({ unpack(EVERY_KEY) }, { id }, true)) or limits_misplaced({ value })
if wrong then
  return wrong
end
append_error(id, err, now)
redis.call("ZREM", LEASES, id)
free_slots({ id })
if kind == "undecodable" then
  st.a = st.a - 1
  end_lease(st, "X")
  return { "OK", "dead", bury(id, h, st, now, arg, max_count, max_age) }
end
redis.call("HINCRBY", META, "failed", 1)
if kind == "dead" then
  end_lease(st, "X")
  return { "OK", "dead", bury(id, h, st, now, arg, max_count, max_age) }
end
mark_started(id, redis.call("HGET", BASE .. "ahead", id), token) -- it ran, or ends below
if kind == "cancel" or stopped then
  end_lease(st, "N")
  cancel_job(id, h, st, now, kind == "cancel" and arg or stopped, ttl)
  return { "OK", "cancelled", 0 }
end
st.s = redis.call("HINCRBY", META, "seq", 1)
if delay <= 0 then
  st.l, st.t = "R", 0
  end_lease(st, "Y")
  put_state(id, st)
  make_ready(id, h and h.prio or 0, st.s)
  wake(1)
  return { "OK", "ready", 0 }
end
st.l, st.t = "D", 0
end_lease(st, "D")
put_state(id, st)
redis.call("ZADD", DELAYED, n2s(now + delay), id)
return { "OK", "delayed", 0 }
