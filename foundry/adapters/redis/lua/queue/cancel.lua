-- cancel: a pending (ready, delayed or waiting) job ends cancelled, kept `ttl` ms like a completed one
-- (in done); a running job is asked to stop (stop hash: renew tells its worker, and whatever
-- would run it again ends it cancelled); an ended job is left as it is.
-- KEYS  the queue's keys
-- ARGV  now, id, reason, ttl ms
-- Reply the job's state letter after the call (R2; "N" cancelled, "A" asked to stop), or ""
--       if no such job
-- Keeps Q1 (a cancelled job is kept for inspection, never run), Q8 (a re-send finds it "N",
--       or keeps the first reason)
local now, id, reason, ttl = now_ms(ARGV[1]), ARGV[2], ARGV[3], tonumber(ARGV[4])
COMPLETED_TTL = ttl
if not now or not id or id == "" or not reason or not ttl then
  return fail_arg("cancel needs now, id, reason and ttl")
end
local value = redis.call("HGET", JOBS, id)
if not value then
  return ""
end
local stored = redis.call("HGET", STATE, id)
local st = decode_state(stored)
if not st then
  return fail_arg("cancel found an unreadable state for " .. id)
end
if st.l == "A" then
  redis.call("HSETNX", BASE .. "stop", id, reason)
  return "A"
end
if st.l ~= "R" and st.l ~= "D" and st.l ~= "W" then
  return st.l
end
-- Checked before the first write (misplaced): a cancel may write any key.
local wrong = misplaced(ending_checks({ unpack(EVERY_KEY) }, { id }, true))
  or limits_misplaced({ value })
if wrong then
  return wrong
end
if not stored and not redis.call("ZSCORE", READY, id) then
  unlist({ id })
end
local before = { l = st.l, t = st.t }
cancel_job(id, header(value), st, now, reason, ttl)
pass_turn_on(id, value, now)
pass_slot_on(value, before)
return "N"
