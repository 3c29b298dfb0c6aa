-- cache mget: read many keys; one MGET per 1,000 keys (unpack's limit), not a GET per key. A
-- 13-digit expiry header (every time from 2001 to 2286) is compared as a string.
-- KEYS  stats, key...
-- ARGV  now
-- Reply the stored strings (R3), nil where missing or expired
local now13 = n2s(NOW)
if #now13 ~= 13 then now13 = nil end
local function expired(raw)
  if string.byte(raw, 1) == 48 and string.byte(raw, 2) == 58 then return false end -- forever
  if now13 and string.byte(raw, 14) == 58 then return string.sub(raw, 1, 13) <= now13 end
  local at = tonumber(string.match(raw, '^(%d+):'))
  return at ~= nil and at > 0 and at <= NOW
end
local out, hits, gone = {}, 0, {}
for first = 2, #KEYS, 1000 do
  local raws = redis.call('MGET', unpack(KEYS, first, math.min(first + 999, #KEYS)))
  for i = 1, #raws do
    local raw = raws[i]
    if raw and expired(raw) then
      gone[#gone + 1] = KEYS[first + i - 1]
      raw = false
    elseif raw then
      hits = hits + 1
    end
    out[first + i - 2] = raw
  end
end
for i = 1, #gone do redis.call('DEL', gone[i]) end
count(KEYS[1], 'hits', hits)
count(KEYS[1], 'misses', #KEYS - 1 - hits)
return out
