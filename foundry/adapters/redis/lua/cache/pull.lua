-- cache pull: the two steps of a pull. The client reads the stored string (no `expected`),
-- decodes it, and only then deletes it, here, if the key still holds exactly that string: the
-- client's decoder alone decides what is a value, so one it refuses is never deleted. The
-- delete is not re-sent after a lost reply (the value would be lost).
-- KEYS  key, stats
-- ARGV  now[, expected: the stored string the client read and decoded]
-- Reply nil if the key holds no live value (a miss counted); 1 if it held `expected`, now
--       deleted (a hit and a delete counted); else the stored string (R3) it holds, kept
local raw = live(KEYS[1])
if not raw then
  count(KEYS[2], 'misses', 1)
  return nil
end
if raw ~= ARGV[2] then return raw end
redis.call('DEL', KEYS[1])
count(KEYS[2], 'hits', 1)
count(KEYS[2], 'deletes', 1)
return 1
