-- KEYS: key, stats. ARGV: now, step. Adds step, creating the key at 0, keeping its expiry.
-- Counters stay within +-(2^53 - 1), where a Lua number is still an exact integer.
local LIMIT = 9007199254740991
local raw = live(KEYS[1])
local at, current = '0', 0
if raw then
  local head, body = string.match(raw, '^(%d+):(.*)$')
  if not head then return redis.error_reply('UNDECODABLE no expiry header') end
  if not string.match(body, '^%-?%d+$') then return redis.error_reply('NOTINT') end
  at, current = head, tonumber(body)
end
local result = current + tonumber(ARGV[2])
if math.abs(current) > LIMIT or math.abs(result) > LIMIT then
  return redis.error_reply('OVERFLOW')
end
if raw then
  redis.call('SET', KEYS[1], at .. ':' .. ms(result), 'KEEPTTL')
else
  redis.call('SET', KEYS[1], '0:' .. ms(result))
end
count(KEYS[2], 'writes', 1)
return result
