-- cache pull: get and delete. Not re-sent after a lost reply (the value would be lost). A value
-- that is not Foundry's (no expiry header, or no JSON) is kept, and refused.
-- KEYS  key, stats
-- ARGV  now
-- Reply the stored string (R3), or nil; errors UNDECODABLE
local raw = live(KEYS[1])
if raw then
  local body = string.match(raw, '^%d+:(.*)$')
  if not body then return redis.error_reply('UNDECODABLE no expiry header') end
  if not pcall(cjson.decode, body) then return redis.error_reply('UNDECODABLE not JSON') end
  redis.call('DEL', KEYS[1])
  count(KEYS[2], 'hits', 1)
  count(KEYS[2], 'deletes', 1)
else
  count(KEYS[2], 'misses', 1)
end
return raw
