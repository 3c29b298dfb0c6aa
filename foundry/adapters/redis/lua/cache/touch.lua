-- cache touch: reset a key's expiry to ttl from now.
-- KEYS  key
-- ARGV  now, ttl ms (-1 forever)
-- Reply 1 if the key holds a live value, else 0
local raw = live(KEYS[1])
if not raw then return 0 end
local payload = string.match(raw, '^%d+:(.*)$')
if not payload then return redis.error_reply('UNDECODABLE no expiry header') end
store(KEYS[1], payload, tonumber(ARGV[2]))
return 1
