-- cache set / add: store a value; "add" only when the key holds no live value. An add is not
-- re-sent after a lost reply.
-- KEYS  key, stats
-- ARGV  now, ttl ms (-1 forever, 0 delete), payload, "set" | "add"
-- Reply 1 if stored, 0 if add found a value
if ARGV[4] == 'add' and live(KEYS[1]) then return 0 end
store(KEYS[1], ARGV[3], tonumber(ARGV[2]))
count(KEYS[2], 'writes', 1)
return 1
