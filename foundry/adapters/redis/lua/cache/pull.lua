-- cache pull: get and delete. Not re-sent after a lost reply (the value would be lost).
-- KEYS  key, stats
-- ARGV  now
-- Reply the stored string (R3), or nil
local raw = live(KEYS[1])
if raw then
  redis.call('DEL', KEYS[1])
  count(KEYS[2], 'hits', 1)
  count(KEYS[2], 'deletes', 1)
else
  count(KEYS[2], 'misses', 1)
end
return raw
