-- release: give a leased job back unfinished: front of its priority (seq kept), attempt unspent.
-- ARGV: now, id, lease token. Returns "OK" (also for a re-send) or "STALE".
local now = now_ms(ARGV[1])
local id, token = ARGV[2], ARGV[3]
local st = get_state(id)
if not (st and st.l == "A" and st.tk == token) then
  if st and st.lt == token and st.o == "R" then
    return "OK"
  end
  redis.call("HINCRBY", META, "stale_rejected", 1)
  return "STALE"
end
local value = redis.call("HGET", JOBS, id)
local h = value and header(value)
st.l, st.a, st.t = "R", math.max(st.a - 1, 0), 0
end_lease(st, "R")
put_state(id, st)
redis.call("ZREM", LEASES, id)
make_ready(id, h and h.prio or 0, st.s)
wake(1)
return "OK"
