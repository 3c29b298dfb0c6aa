-- batch: store batches (with their callbacks) and jobs, in one call: every job goes through
-- enqueue's own body, after the batches' records, so a member that ends at once (a dependency
-- already failed) is counted.
-- KEYS  the queue's keys
-- ARGV  now, epoch candidate, completed ttl ms, batch count, then per batch 22 values: id,
--       allow failures ("1" or "0"), its first member's index among the jobs (0-based), its
--       member count, and for then, catch and finally: id ("" for none), blob, priority, max
--       attempts, at ms, after ms; then the jobs, 8 values each as enqueue takes them
-- Reply {epoch, one outcome per job as enqueue's}; {epoch} for a re-send (a batch id already
--       stored: nothing written); or, before any write, {"!", job index, id} for a dependency
--       neither held (a job or batch stored, its record not past its time) nor earlier in
--       the call, {"!b", id} for a batch id that is a stored job's, {"!j", job index (-1 for
--       a callback), id} for a job or callback id that is a kept batch's, {"!c", id,
--       "<which> <batch id>"} for a batch, job or callback id that is a pending callback's
-- Keeps Q1, Q8 (a re-send changes nothing), B1-B3 (ports/batches.py)
local now, ttl, nb = now_ms(ARGV[1]), tonumber(ARGV[3]), tonumber(ARGV[4])
local PER_BATCH, PER_JOB = 22, 8
if not now or not ttl or not nb or nb < 0 then
  return fail_arg("batch needs now, epoch, ttl and a batch count")
end
local first_job = 5 + nb * PER_BATCH
local n = (#ARGV - first_job + 1) / PER_JOB
if n < 1 or n ~= math.floor(n) then
  return fail_arg("batch needs 22 values per batch and 8 per job")
end
COMPLETED_TTL = ttl
local batches, stale = {}, {}
for i = 0, nb - 1 do
  local b = 5 + i * PER_BATCH
  local first, count = tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3])
  if ARGV[b] == "" or not first or not count or count < 1 or first + count > n then
    return fail_arg("batch " .. i .. " of the call")
  end
  batches[#batches + 1] = { b = b, id = ARGV[b], first = first, last = first + count - 1 }
end
for _, batch in ipairs(batches) do
  if batch_kept(batch.id, now, stale) then
    return { redis.call("HGET", META, "epoch") or ARGV[2] }
  end
  if redis.call("HEXISTS", JOBS, batch.id) == 1 then
    return { "!b", batch.id }
  end
end
-- Before any write: no job or callback takes a kept batch's id (the ids share one space).
for i = 0, n - 1 do
  local id = ARGV[first_job + i * PER_JOB]
  if batch_kept(id, now, stale) then
    return { "!j", i, id }
  end
end
for _, batch in ipairs(batches) do
  for k = 0, 2 do
    local id = ARGV[batch.b + 4 + k * 6]
    if id ~= "" and batch_kept(id, now, stale) then
      return { "!j", -1, id }
    end
  end
end
-- Before any write: no batch, job or callback takes a pending callback's id (the end of a
-- running batch enqueues that callback later, and would find its id taken).
local cbof = BASE .. "cbof"
if redis.call("HLEN", cbof) > 0 then
  local ids = {}
  for _, batch in ipairs(batches) do
    ids[#ids + 1] = batch.id
    for k = 0, 2 do
      local id = ARGV[batch.b + 4 + k * 6]
      if id ~= "" then
        ids[#ids + 1] = id
      end
    end
  end
  for i = 0, n - 1 do
    ids[#ids + 1] = ARGV[first_job + i * PER_JOB]
  end
  local refused = pending_callback_among(ids)
  if refused then
    return refused
  end
end
-- Before any write: every dependency is stored, or a job or (ended) batch earlier in the call.
local earlier = {}
local next_batch = 1
for i = 0, n - 1 do
  while batches[next_batch] and batches[next_batch].last < i do
    earlier[batches[next_batch].id] = true
    next_batch = next_batch + 1
  end
  local spec = ARGV[first_job + i * PER_JOB + 7]
  for dep in string.gmatch(string.sub(spec, 3), "%S+") do
    if not earlier[dep] and not holds_dependency(dep, now) then
      return { "!", i, dep }
    end
  end
  earlier[ARGV[first_job + i * PER_JOB]] = true
end

-- Checked before the first write (misplaced): the batches' own keys, every key (a member
-- may end at once) and the members' unique keys; then the ended batches' records kept past
-- their time whose ids the call takes go (forget_stale_batches).
local checks = { unpack(EVERY_KEY) }
for _, batch in ipairs(batches) do
  checks[#checks + 1], checks[#checks + 2] = BASE .. "b:" .. batch.id, "hash"
  checks[#checks + 1], checks[#checks + 2] = BASE .. "bm:" .. batch.id, "list"
end
for i = 0, n - 1 do
  local key = string.match(ARGV[first_job + i * PER_JOB + 6], "^%d+ [SF](.+)$")
  if key then
    checks[#checks + 1], checks[#checks + 2] = BASE .. "u:" .. key, "string"
  end
end
local wrong = misplaced(checks) or forget_stale_batches(stale)
if wrong then
  return wrong
end

local now_s = n2s(now)
for _, batch in ipairs(batches) do
  local b, bkey = batch.b, BASE .. "b:" .. batch.id
  local fields = { "t", n2s(batch.last - batch.first + 1), "c", "0", "f", "0", "x", "0",
                   "af", ARGV[b + 1], "ca", now_s }
  for k, which in ipairs({ "then", "catch", "finally" }) do
    local at = b + 4 + (k - 1) * 6
    if ARGV[at] ~= "" then
      for j, name in ipairs({ "id", "blob", "p", "m", "at", "af" }) do
        fields[#fields + 1] = which .. ":" .. name
        fields[#fields + 1] = ARGV[at + j - 1]
      end
      redis.call("HSET", cbof, ARGV[at], which .. " " .. batch.id)
    end
  end
  redis.call("HSET", bkey, unpack(fields))
  local members, pairs_ = {}, {}
  for i = batch.first, batch.last do
    local id = ARGV[first_job + i * PER_JOB]
    members[#members + 1] = id
    pairs_[#pairs_ + 1] = id
    pairs_[#pairs_ + 1] = batch.id
  end
  multi("RPUSH", BASE .. "bm:" .. batch.id, members)
  multi("HSET", BASE .. "batchof", pairs_)
  redis.call("ZADD", BASE .. "batches", now_s, batch.id)
end

local out = {}
for start = 0, n - 1, 1000 do
  local args = { ARGV[1], ARGV[2] }
  local stop = math.min(start + 999, n - 1)
  for i = first_job + start * PER_JOB, first_job + (stop + 1) * PER_JOB - 1 do
    args[#args + 1] = ARGV[i]
  end
  local reply = FN.enqueue(KEYS, args)
  COMPLETED_TTL = ttl
  if reply.err then
    return reply
  elseif reply[1] == "!" then
    return redis.error_reply("FOUNDRY batch: a dependency vanished mid-call: " .. reply[3])
  end
  out[1] = reply[1]
  for j = 2, #reply do
    out[#out + 1] = reply[j]
  end
end
expire_batches(now)
return out
