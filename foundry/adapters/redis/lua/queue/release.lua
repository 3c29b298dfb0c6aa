-- release: give a leased job back unfinished: front of its priority (seq kept), attempt not
-- spent, ready now or delayed for `delay` ms first.
-- KEYS  the queue's keys
-- ARGV  now, id, lease token, delay ms, completed ttl ms
-- Reply "OK" (also for a re-send) or "STALE"
-- Keeps Q4, Q7, Q8; a job a cancel asked to stop ends cancelled instead
local now = now_ms(ARGV[1])
local id, token, delay, ttl = ARGV[2], ARGV[3], tonumber(ARGV[4] or "0"), tonumber(ARGV[5] or "")
COMPLETED_TTL = ttl
if not now or not delay or not ttl then
  return fail_arg("release needs now, id, token, delay ms, ttl ms")
end
local st = get_state(id)
if not (st and st.l == "A" and st.tk == token) then
  if st and st.lt == token and (st.o == "R" or st.o == "S") then
    return "OK"
  end
  redis.call("HINCRBY", META, "stale_rejected", 1)
  return "STALE"
end
local value = redis.call("HGET", JOBS, id)
local h = value and header(value)
local stopped = stop_reason(id)
-- Checked before the first write (misplaced): a release writes these, a cancel any key.
local wrong = misplaced(not stopped and { LEASES, "zset", META, "hash", BASE .. "ahead", "hash",
  READY, "zset", DELAYED, "zset", WAKE, "list" }
  or ending_checks({ unpack(EVERY_KEY) }, { id }, true)) or limits_misplaced({ value })
if wrong then
  return wrong
end
redis.call("ZREM", LEASES, id)
free_slots({ id })
mark_started(id, redis.call("HGET", BASE .. "ahead", id), token) -- its attempt comes back
if stopped then
  end_lease(st, "S")
  cancel_job(id, h, st, now, stopped, ttl)
  return "OK"
end
st.a, st.t = math.max(st.a - 1, 0), 0
end_lease(st, "R")
if delay > 0 then
  st.l = "D"
  put_state(id, st)
  redis.call("ZADD", DELAYED, n2s(now + delay), id)
  return "OK"
end
st.l = "R"
put_state(id, st)
make_ready(id, h and h.prio or 0, st.s)
wake(1)
return "OK"
