-- KEYS: key. ARGV: now, ttl ms (-1 forever). Returns 1 if the key exists.
local raw = live(KEYS[1])
if not raw then return 0 end
local payload = string.match(raw, '^%d+:(.*)$')
if not payload then return redis.error_reply('UNDECODABLE no expiry header') end
store(KEYS[1], payload, tonumber(ARGV[2]))
return 1
