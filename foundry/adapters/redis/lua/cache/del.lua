-- cache del: remove keys.
-- KEYS  stats, key...
-- ARGV  now
-- Reply how many keys held a live value
local n = 0
for i = 2, #KEYS do
  if live(KEYS[i]) then
    redis.call('DEL', KEYS[i])
    n = n + 1
  end
end
count(KEYS[1], 'deletes', n)
return n
