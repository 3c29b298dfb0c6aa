-- KEYS: key, stats. ARGV: now. Get and delete; returns the stored string.
local raw = live(KEYS[1])
if raw then
  redis.call('DEL', KEYS[1])
  count(KEYS[2], 'hits', 1)
  count(KEYS[2], 'deletes', 1)
else
  count(KEYS[2], 'misses', 1)
end
return raw
