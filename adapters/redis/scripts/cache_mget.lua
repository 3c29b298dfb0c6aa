-- KEYS: stats, key... ARGV: now. Returns the stored strings (nil where missing or expired).
-- One MGET per 1,000 keys (unpack's stack limit) instead of one GET per key.
local out, hits, expired = {}, 0, {}
for first = 2, #KEYS, 1000 do
  local last = math.min(first + 999, #KEYS)
  local raws = redis.call('MGET', unpack(KEYS, first, last))
  for i = 1, #raws do
    local raw = raws[i]
    if raw then
      local at = tonumber(string.match(raw, '^(%d+):'))
      if at and at > 0 and at <= NOW then
        expired[#expired + 1] = KEYS[first + i - 1]
        raw = false
      else
        hits = hits + 1
      end
    end
    out[first + i - 2] = raw
  end
end
for i = 1, #expired do redis.call('DEL', expired[i]) end
count(KEYS[1], 'hits', hits)
count(KEYS[1], 'misses', #KEYS - 1 - hits)
return out
