-- schedule_poll: the schedules of this queue due by now + ahead, and the next tick of the others.
-- KEYS: the queue's keys, then <base>sched:due (zset: name -> next tick ms, waiting ones only)
--       and <base>sched:rec (hash: name -> JSON {d = definition, l = last tick ms, j = last
--       job id, p = paused 0/1, o = orphaned 0/1}).
-- ARGV: now ("" reads TIME), limit, where to start reading the due ones (0 <= f < 1: at f of
--       them, wrapping round), so that schedulers polling together mostly read different ones,
--       and ahead (ms).
-- Returns {now, next tick ms of the rest or "", then per due schedule: name, tick ms,
--          definition}. O(log n + limit). Writes nothing.
local SDUE, SREC = KEYS[12], KEYS[13]
local now, limit, from = now_ms(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local ahead = tonumber(ARGV[4])
if not now or not limit or not from or from < 0 or from >= 1 or not ahead or ahead < 0 then
  return fail_arg("schedule_poll needs now, limit, a start in [0, 1) and ahead >= 0")
end
local out = { n2s(now), "" }
local upto = n2s(now + ahead)
local later = redis.call("ZRANGEBYSCORE", SDUE, "(" .. upto, "+inf", "WITHSCORES", "LIMIT",
  "0", "1")
if later[2] then
  out[2] = later[2]
end
if limit < 1 then
  return out
end
local skip = math.floor(from * redis.call("ZCOUNT", SDUE, "-inf", upto))
local due = redis.call("ZRANGEBYSCORE", SDUE, "-inf", upto, "WITHSCORES", "LIMIT",
  n2s(skip), n2s(limit))
if skip > 0 and #due < 2 * limit then
  local head = redis.call("ZRANGEBYSCORE", SDUE, "-inf", upto, "WITHSCORES", "LIMIT", "0",
    n2s(math.min(limit - #due / 2, skip)))
  for i = 1, #head do
    due[#due + 1] = head[i]
  end
end
for i = 1, #due, 2 do
  local rec = redis.call("HGET", SREC, due[i])
  out[#out + 1] = due[i]
  out[#out + 1] = due[i + 1]
  out[#out + 1] = rec and cjson.decode(rec).d or ""
end
return out
