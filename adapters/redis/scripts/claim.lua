-- claim: lease up to `limit` ready jobs of this queue (promoting due delayed jobs first).
-- ARGV: now, lease ms, limit, claim token, mode ("new" or "held": never claim, only re-send),
--       dead-letter max count, max age ms (for records that cannot be read).
-- A claim token already used here returns the leases it still holds (re-send, Q8).
-- Returns {epoch, status, next due ms or "", then per lease: id, attempt, deadline, record}.
local now = now_ms(ARGV[1])
local lease_ms, limit, ctoken = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local max_count, max_age = tonumber(ARGV[6]), tonumber(ARGV[7])
if not now or not lease_ms or lease_ms < 1 or not limit or limit < 1 or ctoken == ""
    or not max_count or not max_age then
  return fail_arg("claim needs now, lease ms, limit, token, mode, retention")
end
local meta = redis.call("HMGET", META, "paused", "epoch")
local out = { meta[2] or "", "OK", "" }
local ckey = BASE .. "c:" .. ctoken
local held = redis.call("LRANGE", ckey, 0, -1)
if #held > 0 then
  out[2] = "RESENT"
  for _, id in ipairs(held) do
    local st = get_state(id)
    if st and st.l == "A" and st.tk == ctoken .. "." .. st.a then
      local n = #out
      out[n + 1], out[n + 2], out[n + 3] = id, st.a, st.t
      out[n + 4] = redis.call("HGET", JOBS, id)
    end
  end
  return out
end
if ARGV[5] == "held" then
  return out
end
if meta[1] == "1" then
  out[2] = "PAUSED"
  return out
end
promote(now, 1000)
local popped = redis.call("ZPOPMIN", READY, limit)
for i = 1, #popped, 2 do
  local id, seq = popped[i], tonumber(popped[i + 1]) % BAND
  local value = redis.call("HGET", JOBS, id)
  local h = value and header(value)
  local st = get_state(id, seq)
  if value and (h == nil or st == nil) then
    bury(id, h, st or { a = 0, s = seq, tk = "", o = "" }, now,
      "undecodable: the stored record is corrupt", max_count, max_age)
  elseif value then
    st.l, st.a, st.s, st.t, st.o, st.r = "A", st.a + 1, seq, now + lease_ms, "", ""
    st.tk = ctoken .. "." .. st.a
    put_state(id, st)
    redis.call("ZADD", LEASES, n2s(st.t), id)
    redis.call("RPUSH", ckey, id)
    release_unique(h, id, "S")
    local n = #out
    out[n + 1], out[n + 2], out[n + 3], out[n + 4] = id, st.a, st.t, value
  end
end
if #out > 3 then
  redis.call("PEXPIRE", ckey, lease_ms)
else
  local first = redis.call("ZRANGE", DELAYED, 0, 0, "WITHSCORES")
  out[3] = first[2] or ""
end
return out
