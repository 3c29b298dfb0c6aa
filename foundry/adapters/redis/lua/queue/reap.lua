-- reap: recover leases whose deadline has passed (deadline < now): back to ready with their
-- seq, or dead with "lease lost" once the attempts are spent; a lease held ahead whose start
-- was never recorded gives its attempt back (its job's unstarted lapses counted).
-- KEYS  the queue's keys
-- ARGV  now, batch size, dead-letter max count, max age ms, request id, completed ttl ms
-- Reply {recovered, dead letters trimmed}
-- Keeps Q5 (recovery), Q6 (a job that kills its worker every time ends dead, unstarted lapses
--       bounded by UNSTARTED_MAX), Q8; a job a cancel asked to stop ends cancelled instead
local now, batch = now_ms(ARGV[1]), tonumber(ARGV[2])
local max_count, max_age, ttl = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[6] or "")
COMPLETED_TTL = ttl
if not now or not batch or not max_count or not max_age or not ttl then
  return fail_arg("reap needs now, batch, retention, request id, ttl")
end
local again = replayed(ARGV[5])
if again then
  local recovered, trimmed = string.match(again, "^(%d+) (%d+)$")
  return { tonumber(recovered), tonumber(trimmed) }
end
local expired = redis.call("ZRANGEBYSCORE", LEASES, "-inf", "(" .. n2s(now), "LIMIT", 0, batch)
-- Checked before the first write (misplaced): a lapsed lease may end its job, which writes
-- any key.
local wrong = #expired > 0
  and (misplaced(ending_checks({ unpack(EVERY_KEY) }, expired, true))
    or limits_misplaced_of(expired))
if wrong then
  return wrong
end
local marks = redis.call("HMGET", META, "epoch", "cbofs")
if marks[1] and not marks[2] then -- the first reap since the upgrade (META exists)
  wrong = adopt_old_callbacks()
  if wrong then
    return wrong
  end
end
local trimmed, woken = 0, 0
for _, id in ipairs(expired) do
  redis.call("ZREM", LEASES, id)
  local value = redis.call("HGET", JOBS, id)
  local h = value and header(value)
  local st = get_state(id)
  if st and st.l == "A" then
    end_lease(st, "L")
    free_slots({ id })
    local stopped = stop_reason(id)
    local lapses = unstarted(redis.call("HGET", BASE .. "ahead", id), st.lt)
    if stopped then
      cancel_job(id, h, st, now, stopped, ttl)
    elseif lapses and h then
      st.a, st.l, st.t = math.max(st.a - 1, 0), "R", 0
      put_state(id, st)
      redis.call("HSET", BASE .. "ahead", id, n2s(tonumber(lapses) + 1))
      make_ready(id, h.prio, st.s)
      woken = woken + 1
    elseif h == nil or st.a >= h.max then
      append_error(id, '{"type":"LeaseLost","message":"the lease expired before the job '
        .. 'finished (its worker died or stalled)","attempt":' .. n2s(st.a)
        .. ',"at":' .. n2s(now * 1000) .. ',"worker":' .. cjson.encode(st.w) .. '}', now)
      trimmed = trimmed + bury(id, h, st, now, "lease lost", max_count, max_age)
    else
      st.l, st.t = "R", 0
      put_state(id, st)
      make_ready(id, h.prio, st.s)
      woken = woken + 1
    end
  end
end
wake(woken)
remember(ARGV[5], #expired .. " " .. trimmed)
return { #expired, trimmed }
