-- KEYS: key, stats. ARGV: now, count ('1' counts a hit or a miss). Returns the stored string.
local raw = live(KEYS[1])
if ARGV[2] == '1' then count(KEYS[2], raw and 'hits' or 'misses', 1) end
return raw
