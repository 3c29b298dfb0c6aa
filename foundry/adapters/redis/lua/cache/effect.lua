-- cache effect: one step on the record of an effect that must happen once (cache_effect.py's
-- decide, the same rule). The record is "P:<fence>" (an attempt is acting) or "D:<fence>"
-- (done), behind the expiry header. Every step may be re-sent: a second run answers alike.
-- KEYS  effect record
-- ARGV  now, "begin" | "finish" | "abort", fence, ttl ms
-- Reply begin: "done", "stale" (a greater fence is pending) or "run" (pending ours);
--       finish: "ok" (done ours) or "stale"; abort: "ok" (our pending mark dropped)
local raw = live(KEYS[1])
local kind, held = nil, -1
if raw then
  local k, f = string.match(raw, '^%d+:([PD]):(%d+)$')
  kind, held = k, tonumber(f) or -1
end
local op, fence, ttl = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
if op == 'begin' then
  if kind == 'D' then return 'done' end
  if kind == 'P' and held > fence then return 'stale' end
  store(KEYS[1], 'P:' .. n2s(fence), ttl)
  return 'run'
elseif op == 'finish' then
  if kind == 'D' then return 'ok' end
  if kind == 'P' and held > fence then return 'stale' end
  store(KEYS[1], 'D:' .. n2s(fence), ttl)
  return 'ok'
end
if kind == 'P' and held == fence then
  redis.call('DEL', KEYS[1])
end
return 'ok'
