-- KEYS: stats, key... ARGV: now, ttl ms (-1 forever), payload... (one per key).
-- Every key shares one expiry, so its header and PXAT are formatted once.
local ttl = tonumber(ARGV[2])
if ttl == 0 then
  for i = 2, #KEYS do redis.call('DEL', KEYS[i]) end
elseif ttl < 0 then
  for i = 2, #KEYS do redis.call('SET', KEYS[i], '0:' .. ARGV[i + 1]) end
else
  local at = NOW + ttl
  local head, pxat = ms(at) .. ':', ms(math.max(at, server_ms() + ttl))
  for i = 2, #KEYS do redis.call('SET', KEYS[i], head .. ARGV[i + 1], 'PXAT', pxat) end
end
count(KEYS[1], 'writes', #KEYS - 1)
return #KEYS - 1
