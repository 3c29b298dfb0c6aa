-- complete: finish leased jobs, keeping each record (and result) for `ttl` ms.
-- ARGV: now, ttl ms, then per job: id, lease token, result ("" for none), unique key to release
--       ("" for none; the client knows it from the lease, which saves reading the record).
-- Returns one status per job: 1 done (or a re-send of a done completion), 0 stale lease.
local now, ttl = now_ms(ARGV[1]), tonumber(ARGV[2])
local n = (#ARGV - 2) / 4
if not now or not ttl or n < 1 or n ~= math.floor(n) then
  return fail_arg("complete needs now, ttl and 4 values per job")
end
local out, done, stale = {}, 0, 0
for i = 0, n - 1 do
  local b = 3 + i * 4
  local id, token, result, unique = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3]
  local st = get_state(id)
  if st and st.l == "A" and st.tk == token then
    st.l, st.t = "C", now
    end_lease(st, "C")
    put_state(id, st)
    redis.call("ZREM", LEASES, id)
    redis.call("ZADD", DONE, n2s(now + ttl), id)
    if result ~= "" then
      redis.call("HSET", RESULTS, id, result)
    end
    release_unique({ unique = unique }, id, "F")
    done = done + 1
    out[i + 1] = 1
  elseif st and st.lt == token and st.o == "C" then
    out[i + 1] = 1
  else
    stale = stale + 1
    out[i + 1] = 0
  end
end
if done > 0 then
  redis.call("HINCRBY", META, "completed", done)
end
if stale > 0 then
  redis.call("HINCRBY", META, "stale_rejected", stale)
end
expire_done(now)
return out
