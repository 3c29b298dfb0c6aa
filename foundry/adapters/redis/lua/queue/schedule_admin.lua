-- schedule_admin: the schedules' state of this queue, kept and shown.
-- KEYS: the queue's keys, then sched:due and sched:rec (see schedule_poll).
-- ARGV[1] = operation:
--   sync, redefine (1/0), then per schedule: name, definition, first tick ms: a schedule not
--     stored (or orphaned, or with redefine another definition) waits for its first tick; a
--     paused one stays paused. Returns how many changed.
--   orphan, names...: they stop waiting and are marked orphaned. Returns how many.
--   pause, name / resume, name, next ms / forget, name: 1 if the schedule exists, else 0
--     (resume changes only a paused or orphaned one, and then answers 2).
--   list: {name, record JSON, next tick ms or "", ...} for every schedule.
local SDUE, SREC = KEYS[12], KEYS[13]
local op = ARGV[1]

local function load(name)
  local raw = redis.call("HGET", SREC, name)
  return raw and cjson.decode(raw)
end

local function save(name, rec)
  redis.call("HSET", SREC, name, cjson.encode(rec))
end

if op == "sync" then
  local changed = 0
  for i = 3, #ARGV, 3 do
    local name, def, first = ARGV[i], ARGV[i + 1], ARGV[i + 2]
    local rec = load(name)
    if not rec or rec.o == 1 or (ARGV[2] == "1" and rec.d ~= def) then
      rec = rec or { l = false, j = false, p = 0 }
      rec.d, rec.o = def, 0
      save(name, rec)
      if rec.p == 0 then
        redis.call("ZADD", SDUE, first, name)
      end
      changed = changed + 1
    end
  end
  return changed
elseif op == "orphan" then
  local count = 0
  for i = 2, #ARGV do
    local rec = load(ARGV[i])
    if rec then
      rec.o = 1
      save(ARGV[i], rec)
      redis.call("ZREM", SDUE, ARGV[i])
      count = count + 1
    end
  end
  return count
elseif op == "pause" or op == "resume" then
  local rec = load(ARGV[2])
  if not rec then
    return 0
  end
  local changed = 0
  if op == "pause" then
    rec.p = 1
    redis.call("ZREM", SDUE, ARGV[2])
  elseif rec.p == 1 or rec.o == 1 then -- an active one keeps its next tick
    rec.p, rec.o = 0, 0
    redis.call("ZADD", SDUE, ARGV[3], ARGV[2])
    changed = 1
  end
  save(ARGV[2], rec)
  return 1 + changed
elseif op == "forget" then
  redis.call("ZREM", SDUE, ARGV[2])
  return redis.call("HDEL", SREC, ARGV[2])
elseif op == "list" then
  local all, out = redis.call("HGETALL", SREC), {}
  for i = 1, #all, 2 do
    out[#out + 1] = all[i]
    out[#out + 1] = all[i + 1]
    out[#out + 1] = redis.call("ZSCORE", SDUE, all[i]) or ""
  end
  return out
end
return fail_arg("schedule_admin: unknown operation " .. tostring(op))
