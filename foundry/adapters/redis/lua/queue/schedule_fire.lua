-- schedule_fire: step schedules of this queue, each atomically: enqueue its ticks' jobs and
-- move its next tick, only if it still waits for the tick the caller read (so N schedulers
-- step it once per tick), with the caller's definition, not paused nor orphaned.
-- KEYS: the queue's keys, then sched:due and sched:rec (see schedule_poll).
-- ARGV: now, epoch candidate, then per firing: name, definition, due ms, next ms, job count,
--       then per job: tick ms and the 7 values of one enqueue job (id, blob, priority, max
--       attempts, at ms, after ms, unique).
-- Returns {epoch, then per firing: applied (1/0), job count, the jobs' outcomes (0 = enqueued,
--          or the id holding the unique key: the tick is skipped)}.
-- Jobs are stored exactly as enqueue stores them (idempotent by id, Q8; unique keys, Q9).
local SDUE, SREC = KEYS[12], KEYS[13]
local now = now_ms(ARGV[1])
if not now then
  return fail_arg("schedule_fire needs now")
end
local firings, i = {}, 3
while i <= #ARGV do
  local f = { name = ARGV[i], def = ARGV[i + 1], due = tonumber(ARGV[i + 2]),
              nxt = ARGV[i + 3], count = tonumber(ARGV[i + 4]), at = i + 5 }
  if f.name == "" or not f.due or not tonumber(f.nxt) or not f.count or f.count < 0 then
    return fail_arg("firing " .. #firings .. " needs name, definition, due, next, count")
  end
  for j = 0, f.count - 1 do
    local b = f.at + j * 8
    local prio, max = tonumber(ARGV[b + 3]), tonumber(ARGV[b + 4])
    if not tonumber(ARGV[b]) or (ARGV[b + 1] or "") == "" or not prio or prio < -255
        or prio > 255 or not max or max < 1 or not tonumber(ARGV[b + 5])
        or not tonumber(ARGV[b + 6])
        or (ARGV[b + 7] ~= "" and not string.match(ARGV[b + 7], "^%d+ [SF].")) then
      return fail_arg("job " .. j .. " of firing " .. f.name)
    end
  end
  firings[#firings + 1] = f
  i = f.at + f.count * 8
end

-- Checked before the first write (misplaced): what storing the jobs and moving the schedules
-- write after it (a firing's own schedule keys are read first, but after the writes of the
-- firings before it) and the jobs' unique keys; every key when a job's id is an expired
-- record's (forgotten first, as enqueue does).
local ids, own = {}, { SDUE, "zset", SREC, "hash", DONE, "zset" }
for _, f in ipairs(firings) do
  for j = 0, f.count - 1 do
    local b = f.at + j * 8
    ids[#ids + 1] = ARGV[b + 1]
    local key = string.match(ARGV[b + 7], "^%d+ [SF](.+)$")
    if key then
      own[#own + 1], own[#own + 2] = BASE .. "u:" .. key, "string"
    end
  end
end
local wrong = misplaced(own)
local checks = { JOBS, "hash", STATE, "hash", READY, "zset", DELAYED, "zset", META, "hash",
  WAKE, "list" }
for i = 1, #ids, 1000 do
  local scores = not wrong
    and redis.call("ZMSCORE", DONE, unpack(ids, i, math.min(i + 999, #ids))) or {}
  for _, expires in ipairs(scores) do
    if expires and tonumber(expires) <= now then
      checks = EVERY_KEY
    end
  end
end
wrong = wrong or misplaced(checks)
if wrong then
  return wrong
end

local meta = redis.call("HMGET", META, "epoch", "seq")
if not meta[1] then
  redis.call("HSET", META, "epoch", ARGV[2])
  meta[1] = ARGV[2]
end
local seq, enq, woken = tonumber(meta[2] or "0"), base36(now), 0

-- One job, as enqueue stores it: 0, or the id of the job holding its unique key.
local function store(b)
  local id = ARGV[b]
  if redis.call("HEXISTS", JOBS, id) == 1 then
    local expires = redis.call("ZSCORE", DONE, id)
    if not (expires and tonumber(expires) <= now) then
      return 0
    end
    forget(id, now)
  end
  local uspec = ""
  if ARGV[b + 6] ~= "" then
    local ttl, rest = string.match(ARGV[b + 6], "^(%d+) (.+)$")
    local key = BASE .. "u:" .. string.sub(rest, 2)
    local holder = unique_holder(key, now)
    if holder and holder ~= id then
      return holder
    end
    redis.call("SET", key, id .. " " .. n2s(now + tonumber(ttl)), "PX", ttl)
    uspec = rest
  end
  seq = seq + 1
  redis.call("HSET", JOBS, id, enq .. " " .. ARGV[b + 2] .. " " .. ARGV[b + 3] .. " " .. #uspec
    .. " " .. uspec .. ARGV[b + 1])
  local run_at = math.max(tonumber(ARGV[b + 4]), now + tonumber(ARGV[b + 5]))
  if run_at <= now then
    make_ready(id, tonumber(ARGV[b + 2]), seq)
    woken = woken + 1
  else
    redis.call("ZADD", DELAYED, n2s(run_at), id)
    put_state(id, { l = "D", a = 0, s = seq, tk = "", t = 0, o = "", lt = "", w = "", r = "" })
  end
  return 0
end

local out = { meta[1] }
for _, f in ipairs(firings) do
  local score = redis.call("ZSCORE", SDUE, f.name)
  local raw = redis.call("HGET", SREC, f.name)
  local rec = raw and cjson.decode(raw)
  if not (score and tonumber(score) == f.due and rec and rec.d == f.def and rec.p == 0
      and rec.o == 0) then
    out[#out + 1] = 0
    out[#out + 1] = 0
  else
    out[#out + 1] = 1
    out[#out + 1] = f.count
    for j = 0, f.count - 1 do
      local b = f.at + j * 8
      local outcome = store(b + 1)
      rec.l = ARGV[b]
      if outcome == 0 then
        rec.j = ARGV[b + 1]
      end
      out[#out + 1] = outcome
    end
    redis.call("ZADD", SDUE, f.nxt, f.name)
    redis.call("HSET", SREC, f.name, cjson.encode(rec))
  end
end
redis.call("HSET", META, "seq", n2s(seq))
wake(woken)
return out
