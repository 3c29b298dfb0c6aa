-- KEYS: stats, key... ARGV: now, ttl ms (-1 forever), payload... (one per key).
local ttl = tonumber(ARGV[2])
for i = 2, #KEYS do store(KEYS[i], ARGV[i + 1], ttl) end
count(KEYS[1], 'writes', #KEYS - 1)
return #KEYS - 1
