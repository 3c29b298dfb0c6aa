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
return record_starts(ARGV, 1)
