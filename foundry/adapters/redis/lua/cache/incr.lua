-- cache incr: add `step`, creating the key at 0 and keeping its expiry. Not re-sent after a
-- lost reply (it would count twice).
-- KEYS  key, stats
-- ARGV  now, step
-- Reply the new value; errors UNDECODABLE (no header), NOTINT, OVERFLOW (past +-(2^53 - 1),
--       where a Lua number stops being an exact integer)
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
  redis.call('SET', KEYS[1], at .. ':' .. n2s(result), 'KEEPTTL')
else
  redis.call('SET', KEYS[1], '0:' .. n2s(result))
end
count(KEYS[2], 'writes', 1)
return result
