-- KEYS: key, stats. ARGV: now, ttl ms (-1 forever), payload, 'set' | 'add'. Returns 1 if stored.
if ARGV[4] == 'add' and live(KEYS[1]) then return 0 end
store(KEYS[1], ARGV[3], tonumber(ARGV[2]))
count(KEYS[2], 'writes', 1)
return 1
