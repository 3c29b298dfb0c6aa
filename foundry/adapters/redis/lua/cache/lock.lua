-- cache lock: acquire takes a free or expired lock (or refreshes our own); release and extend
-- act only for the token that holds it; force drops it whoever holds it. A release is not
-- re-sent after a lost reply.
-- KEYS  lock
-- ARGV  now, "acquire" | "release" | "extend" | "force", token, ttl ms
-- Reply 1 if done, else 0 (force: 1 if a live lock was dropped)
local raw = live(KEYS[1])
local holder = raw and string.match(raw, '^%d+:(.*)$')
local mode, token = ARGV[2], ARGV[3]
if mode == 'force' then
  if not raw then return 0 end
  redis.call('DEL', KEYS[1])
  return 1
end
if mode == 'acquire' then
  if holder and holder ~= token then return 0 end
elseif holder ~= token then
  return 0
end
if mode == 'release' then
  redis.call('DEL', KEYS[1])
else
  store(KEYS[1], token, tonumber(ARGV[4]))
end
return 1
