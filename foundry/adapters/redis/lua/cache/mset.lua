-- cache mset: store many keys with one expiry (its header and PXAT formatted once).
-- KEYS  stats, key...
-- ARGV  now, ttl ms (-1 forever, 0 delete), one payload per key
-- Reply how many keys were written
local ttl = tonumber(ARGV[2])
if ttl == 0 then
  for i = 2, #KEYS do redis.call('DEL', KEYS[i]) end
elseif ttl < 0 then
  for i = 2, #KEYS do redis.call('SET', KEYS[i], '0:' .. ARGV[i + 1]) end
else
  local at = NOW + ttl
  local head, pxat = n2s(at) .. ':', n2s(math.max(at, server_now() + ttl))
  for i = 2, #KEYS do redis.call('SET', KEYS[i], head .. ARGV[i + 1], 'PXAT', pxat) end
end
count(KEYS[1], 'writes', #KEYS - 1)
return #KEYS - 1
