-- complete: finish leased jobs, keeping each record (and result) for `ttl` ms.
-- KEYS  the queue's keys
-- ARGV  now, ttl ms, then per job: id, lease token, result ("" for none), the unique key to
--       release ("" for none; the client knows it from the lease, which saves a read)
-- Reply one status per job: 1 completed (or a re-send of a completion), 0 stale lease
-- Keeps Q4 (a stale lease changes nothing and is counted), Q8 (a re-send is accepted)
local now, ttl = now_ms(ARGV[1]), tonumber(ARGV[2])
COMPLETED_TTL = ttl
local n = (#ARGV - 2) / 4
if not now or not ttl or n < 1 or n ~= math.floor(n) then
  return fail_arg("complete needs now, ttl and 4 values per job")
end
local ids = {}
for i = 0, n - 1 do
  ids[i + 1] = ARGV[3 + i * 4]
end
local states = redis.call("HMGET", STATE, unpack(ids))
local out, stale, finished = {}, 0, {}
local new_states, ended, expiry, results, uniques = {}, {}, {}, {}, {}
local now_s, expires = n2s(now), n2s(now + ttl)
for i = 0, n - 1 do
  local b = 3 + i * 4
  local id, token, result, unique = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3]
  local l, a, s, tk, _, o, lt, w, r
  if states[i + 1] then
    l, a, s, tk, _, o, lt, w, r = split_state(states[i + 1])
  end
  if finished[id] == token then
    out[i + 1] = 1 -- the same lease twice in one batch: the second is a re-send
  elseif l == "A" and tk == token then
    -- Completed at now; the lease ends with outcome C, its token kept for re-sends.
    finished[id] = token
    new_states[#new_states + 1] = id
    new_states[#new_states + 1] = join_state("C", a, s, "", now_s, "C", tk, w, r)
    ended[#ended + 1] = id
    expiry[#expiry + 1], expiry[#expiry + 2] = expires, id
    if result ~= "" then
      results[#results + 1], results[#results + 2] = id, result
    end
    if unique ~= "" then
      uniques[#uniques + 1], uniques[#uniques + 2] = id, unique
    end
    out[i + 1] = 1
  elseif l and lt == token and o == "C" then
    out[i + 1] = 1
  else
    stale = stale + 1
    out[i + 1] = 0
  end
end
-- Each helper reads a key of its own and finds nothing without it: one EXISTS spares the
-- three reads when nobody waits for a job, no job waits for another and no batch is open.
local settling = #ended > 0
  and redis.call("EXISTS", BASE .. "waiters", BASE .. "dependants", BASE .. "batchof") > 0
if #ended > 0 then
  -- Checked before the first write (misplaced); the state hash was read above, and the
  -- ahead marks go first (a write refused first writes nothing). A job waiting for a
  -- completed one may end at once, which writes any key, and so may its batch.
  local checks = settling and ending_checks({ unpack(EVERY_KEY) }, ended, false)
    or { LEASES, "zset", DONE, "zset", META, "hash" }
  if #results > 0 then
    checks[#checks + 1], checks[#checks + 2] = RESULTS, "hash"
  end
  for i = 2, #uniques, 2 do
    checks[#checks + 1], checks[#checks + 2] = BASE .. "u:" .. string.sub(uniques[i], 2), "string"
  end
  -- The slots the jobs held are read here, and their limits' keys checked.
  local wrong = misplaced(checks)
  local held = not wrong and slots_held(ended)
  wrong = wrong or held and slots_misplaced(held)
  if wrong then
    return wrong
  end
  multi("HDEL", BASE .. "ahead", ended)
  for i = 1, #uniques, 2 do
    release_unique({ unique = uniques[i + 1] }, uniques[i], "F")
  end
  multi("HSET", STATE, new_states)
  multi("ZREM", LEASES, ended)
  if held then
    give_slots_back(held)
  end
  multi("ZADD", DONE, expiry)
  redis.call("HINCRBY", META, "completed", n2s(#ended))
  if settling then
    notify_settled(ended)
    settle_completed(ended, now)
    settle_batches(ended, "c", now)
  end
end
multi("HSET", RESULTS, results)
if stale > 0 then
  redis.call("HINCRBY", META, "stale_rejected", n2s(stale))
end
expire_done(now)
return out
