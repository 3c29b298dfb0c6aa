-- stats: sizes and running totals; due delayed jobs count as ready (they are claimable).
-- KEYS  the queue's keys
-- ARGV  now
-- Reply {ready, delayed, active, dead, paused, completed, failed, dead_trimmed, stale_rejected,
--        waiting}
-- Flags no-writes (answers while Redis refuses writes for want of memory)
-- Keeps nothing: it writes nothing
local now = now_ms(ARGV[1])
local due = redis.call("ZCOUNT", DELAYED, "-inf", n2s(now))
local meta = redis.call("HMGET", META, "paused", "completed", "failed", "dead_trimmed",
  "stale_rejected")
local ready = redis.call("ZCARD", READY) + redis.call("LLEN", FIFO) / 2
local out = { ready + due, redis.call("ZCARD", DELAYED) - due,
  redis.call("ZCARD", LEASES), redis.call("ZCARD", DEAD) }
for i = 1, 5 do
  out[4 + i] = tonumber(meta[i] or "0") or 0
end
out[10] = redis.call("HLEN", BASE .. "deps")
return out
