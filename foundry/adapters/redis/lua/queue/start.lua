-- start: jobs of leases claimed ahead started: their attempts stay spent if the leases lapse.
-- KEYS  the queue's keys
-- ARGV  pairs of id, lease token
-- Reply how many starts were recorded (a lease that no longer holds its job, or whose start
--       was recorded already, changes nothing: Q8)
-- Keeps Q6 (an attempt counts a start once its start is known)
local n = #ARGV / 2
if n < 1 or n ~= math.floor(n) then
  return fail_arg("start needs id/token pairs")
end
local ids = {}
for i = 1, n do
  ids[i] = ARGV[2 * i - 1]
end
local marks = redis.call("HMGET", BASE .. "ahead", unpack(ids))
local recorded = 0
for i = 1, n do
  if unstarted(marks[i], ARGV[2 * i]) then
    mark_started(ids[i], marks[i], ARGV[2 * i])
    recorded = recorded + 1
  end
end
return recorded
