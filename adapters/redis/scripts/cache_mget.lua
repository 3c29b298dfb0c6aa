-- KEYS: stats, key... ARGV: now. Returns the stored strings (nil where missing).
local out, hits = {}, 0
for i = 2, #KEYS do
  local raw = live(KEYS[i])
  if raw then hits = hits + 1 end
  out[i - 1] = raw or false
end
count(KEYS[1], 'hits', hits)
count(KEYS[1], 'misses', #KEYS - 1 - hits)
return out
