-- watch: whether a job has ended; if not, its end (complete, dead, forgotten) will notify.
-- KEYS  the queue's keys
-- ARGV  now, id
-- Reply "C" completed or "X" dead (final), "" no such job, or "W": not final yet, and the
--       transition that ends it will push to <base>n:<id> (notify_settled), which the caller
--       blocks on
-- Changes only the waiters mark (<base>waiters), so a re-send is harmless
local id = ARGV[2]
if not id or id == "" then
  return fail_arg("watch needs now and a job id")
end
if redis.call("HEXISTS", JOBS, id) == 0 then
  return ""
end
local value = redis.call("HGET", STATE, id)
local letter = value and string.sub(value, 1, 1) or "R"
if FINAL[letter] then
  return letter
end
redis.call("HSET", BASE .. "waiters", id, "1")
return "W"
