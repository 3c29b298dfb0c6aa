-- batch_cancel: cancel a batch: its pending (ready, delayed, waiting) members end cancelled,
-- its running ones are asked to stop (as cancel does), and `then` never fires.
-- KEYS  the queue's keys
-- ARGV  now, batch id, reason, completed ttl ms
-- Reply 1 if the batch is known (also when it had ended or was cancelled before: left as it
--       is), 0 if not
-- Keeps B4, Q8 (a re-send changes nothing)
local now, bid, reason, ttl = now_ms(ARGV[1]), ARGV[2], ARGV[3], tonumber(ARGV[4])
if not now or not bid or bid == "" or not reason or not ttl then
  return fail_arg("batch_cancel needs now, batch id, reason and ttl")
end
COMPLETED_TTL = ttl
local bkey = BASE .. "b:" .. bid
local v = redis.call("HMGET", bkey, "t", "e", "cx")
if not v[1] then
  return 0
end
if v[2] or v[3] then
  return 1
end
-- Checked before the first write (misplaced): cancelling members writes any key.
local checks = { unpack(EVERY_KEY) }
checks[#checks + 1], checks[#checks + 2] = BASE .. "bm:" .. bid, "list"
local wrong = misplaced(checks)
local members = not wrong and redis.call("LRANGE", BASE .. "bm:" .. bid, 0, -1)
wrong = wrong or misplaced(ending_checks({}, members, true)) or limits_misplaced_of(members)
if wrong then
  return wrong
end
redis.call("HSET", bkey, "cx", "1", "r", reason)
local listed = {} -- members in the fifo, taken out in one pass
-- Ready members a freed slot made ready (record, state before): their slots pass on once
-- every member is cancelled, so none passes to a parked member about to be cancelled.
local passing = {}
for i = 1, #members, 1000 do
  local chunk = { unpack(members, i, math.min(i + 999, #members)) }
  local marks = redis.call("HMGET", BASE .. "batchof", unpack(chunk))
  local stored = redis.call("HMGET", STATE, unpack(chunk))
  for j, id in ipairs(chunk) do
    if marks[j] == bid then
      local st = decode_state(stored[j])
      if st and st.l == "A" then
        redis.call("HSETNX", BASE .. "stop", id, reason)
      elseif st and (st.l == "R" or st.l == "D" or st.l == "W") then
        local value = redis.call("HGET", JOBS, id)
        local before = { l = st.l, t = st.t }
        if value and not stored[j] and not redis.call("ZSCORE", READY, id) then
          listed[#listed + 1] = id
        end
        cancel_job(id, value and header(value), st, now, reason, ttl)
        pass_turn_on(id, value, now)
        if value then
          passing[#passing + 1] = { value, before }
        end
      end
    end
  end
end
unlist(listed)
for _, left in ipairs(passing) do
  pass_slot_on(left[1], left[2])
end
return 1
