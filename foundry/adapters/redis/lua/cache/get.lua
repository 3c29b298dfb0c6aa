-- cache get: read a key (an expired value is deleted and is a miss).
-- KEYS  key, stats
-- ARGV  now, count ("1" counts a hit or a miss)
-- Reply the stored string (R3), or nil
local raw = live(KEYS[1])
if ARGV[2] == '1' then count(KEYS[2], raw and 'hits' or 'misses', 1) end
return raw
