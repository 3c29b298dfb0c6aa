-- enqueue: store jobs, ready now or delayed until max(at, now + after).
-- KEYS  the queue's jobs key (or all its keys)
-- ARGV  now, epoch candidate, then per job: id, blob, priority, max attempts, at ms, after ms,
--       unique ("" or "<ttl ms> <S|F><key>"), dependencies ("" or "<D|C|R> <id> <id>...": the
--       jobs it waits for, and whether it goes dead (D), is cancelled (C) or runs (R) if one
--       of them fails); or, for one plain job (ready now, priority 0, no unique key, no
--       dependencies), the short form: now, epoch candidate, id, blob, max attempts
-- Reply {epoch, one outcome per job: 0 enqueued (or already stored), or the id holding the
--       unique key}; or, before any write, {"!", job index, id} for a dependency that is
--       neither held (stored, its record not past its time) nor earlier in the batch, or
--       {"!j", job index, id} for a job id that is a kept batch's (ids share one space), or
--       {"!c", id, "<which> <batch id>"} for a job id that is a pending callback's (its
--       batch's end enqueues that callback later, and would find its id taken); the short
--       form's job newly stored: the epoch alone
-- Keeps Q1 (stored before the reply), Q2 (seq in order: a job ready at priority 0 joins the
--       fifo's tail, any other ready job `ready`), Q3 (delayed in `delayed`), Q8 (a stored id
--       is left unchanged), Q9 (unique keys)
local now = now_ms(ARGV[1])
local per = 8
local n = (#ARGV - 2) / per
-- A plain job is stored before the general path's helpers are made; the short form's reply
-- is then the epoch alone (a string, where a table costs Redis a conversion), or the error
-- reply of a key of the wrong type, nothing written.
if #ARGV == 5 then
  local epoch = enqueue_plain(now, ARGV[2], ARGV[3], ARGV[4], ARGV[5])
  if epoch then
    return epoch
  end
  ARGV = { ARGV[1], ARGV[2], ARGV[3], ARGV[4], "0", ARGV[5], "0", "0", "", "" }
  n = 1
elseif n == 1 and ARGV[5] == "0" and ARGV[7] == "0" and ARGV[8] == "0" and ARGV[9] == ""
    and ARGV[10] == "" then
  local epoch = enqueue_plain(now, ARGV[2], ARGV[3], ARGV[4], ARGV[6])
  if type(epoch) == "table" then
    return epoch -- a key of the wrong type
  elseif epoch then
    return { epoch, 0 }
  end
end
if not now or n < 1 or n ~= math.floor(n) then
  return fail_arg("enqueue needs now, epoch and 8 values per job")
end
for i = 0, n - 1 do
  local b = 3 + i * per
  local prio, max = num(ARGV[b + 2]), num(ARGV[b + 3])
  if ARGV[b] == "" or not prio or prio < -255 or prio > 255 or not max or max < 1
      or not num(ARGV[b + 4]) or not num(ARGV[b + 5])
      or (ARGV[b + 6] ~= "" and not string.match(ARGV[b + 6], "^%d+ [SF].")) then
    return fail_arg("job " .. i .. " of the batch")
  end
end
-- The keys the jobs will be written to, checked before the first write (misplaced): the
-- jobs hash and the meta are read first, so need none; a job waiting for others may end at
-- once (a dependency failed), which writes any key.
local function keys_to_check()
  local wants, checks = {}, {}
  local function want(key, kind)
    if not wants[key] then
      wants[key] = true
      checks[#checks + 1], checks[#checks + 2] = key, kind
    end
  end
  for i = 0, n - 1 do
    local b = 3 + i * per
    if ARGV[b + 7] ~= "" then
      return EVERY_KEY
    elseif ARGV[b + 6] ~= "" then
      want(BASE .. "u:" .. string.sub(string.match(ARGV[b + 6], "^%d+ (.+)$"), 2), "string")
    end
    if math.max(num(ARGV[b + 4]), now + num(ARGV[b + 5])) > now then
      want(DELAYED, "zset")
      want(STATE, "hash")
    else
      want(ARGV[b + 2] == "0" and FIFO or READY, ARGV[b + 2] == "0" and "list" or "zset")
      want(WAKE, "list")
    end
  end
  return checks
end
local wrong = misplaced(keys_to_check())
if wrong then
  return wrong
end
local earlier, stale = {}, {}
for i = 0, n - 1 do
  local b = 3 + i * per
  if batch_kept(ARGV[b], now, stale) then
    return { "!j", i, ARGV[b] }
  end
  if ARGV[b + 7] ~= "" then
    for dep in string.gmatch(string.sub(ARGV[b + 7], 3), "%S+") do
      if not earlier[dep] and not holds_dependency(dep, now) then
        return { "!", i, dep }
      end
    end
  end
  earlier[ARGV[b]] = true
end
local cbof = BASE .. "cbof"
if redis.call("HLEN", cbof) > 0 then
  local ids = {}
  for i = 0, n - 1 do
    ids[#ids + 1] = ARGV[3 + i * per]
  end
  local refused = pending_callback_among(ids)
  if refused then
    return refused
  end
end
-- Before the first write: the records of the batches kept past their time whose ids these
-- jobs take go.
wrong = forget_stale_batches(stale)
if wrong then
  return wrong
end

-- How a new job waits for the jobs `spec` names: "dead" or "cancel" if one failed and its
-- rule says so, else the count it still waits for (the batch's new jobs in `fresh` are
-- pending).
local function wait_for(id, spec, fresh)
  local rule, pending = string.sub(spec, 1, 1), {}
  for dep in string.gmatch(string.sub(spec, 3), "%S+") do
    local letter = fresh[dep] and "R" or (get_state(dep) or { l = "C" }).l
    if (letter == "X" or letter == "N") and rule ~= "R" then
      return rule == "C" and "cancel" or "dead"
    elseif letter ~= "C" and letter ~= "X" and letter ~= "N" then
      pending[#pending + 1] = dep
    end
  end
  for _, dep in ipairs(pending) do
    local others = redis.call("HGET", BASE .. "dependants", dep)
    redis.call("HSET", BASE .. "dependants", dep, others and (others .. " " .. id) or id)
  end
  if #pending > 0 then
    redis.call("HSET", BASE .. "deps", id, #pending .. " " .. rule)
  end
  return #pending
end

-- The queue's epoch (set to the candidate if it has none, once the jobs hash was met) and seq.
local meta = redis.call("HMGET", META, "epoch", "seq")
local epoch, seq = meta[1] or ARGV[2], tonumber(meta[2] or "0")
local out = { epoch }
local first_seq, seq_s, seq_s_of = seq, nil, nil -- seq_s: n2s(seq_s_of), made once
local enq = ms36(now)
-- One job without a unique key or dependencies (a delayed or prioritised dispatch) is stored
-- by HSETNX, one call where HMGET and HSET are two; an id already stored takes the general
-- path.
local written, stored = false, nil
if n == 1 and ARGV[9] == "" and ARGV[10] == "" then
  written = redis.call("HSETNX", JOBS, ARGV[3], enq .. " " .. ARGV[5] .. " " .. ARGV[6]
    .. " 0 " .. ARGV[4]) == 1
end
if written then
  stored = { false }
else
  local ids = {}
  for i = 0, n - 1 do
    ids[i + 1] = ARGV[3 + i * per]
  end
  stored = redis.call("HMGET", JOBS, unpack(ids))
end
-- Before the first write: whether each stored id is a completed or cancelled record past its
-- time, which is forgotten (forget) and stored anew; forgetting writes any key, so they are
-- all checked then (misplaced).
local expired, done_checked, all_checked = {}, false, false
for i = 1, n do
  if stored[i] then
    local wrong = not done_checked and misplaced({ DONE, "zset" })
    done_checked = true
    local expires = not wrong and redis.call("ZSCORE", DONE, ARGV[3 + (i - 1) * per])
    expired[i] = expires and tonumber(expires) <= now
    wrong = wrong or (expired[i] and not all_checked and misplaced(EVERY_KEY))
    all_checked = all_checked or expired[i]
    if wrong then
      return wrong
    end
  end
end
if not meta[1] then
  redis.call("HSET", META, "epoch", epoch)
end
local records, ready, listed, seen = {}, {}, {}, {}
local pushed = 0 -- fifo entries pushed before the end (see before_ending_at_once)
-- A job that ends at once (a dependency already failed) may end its batch, whose callbacks a
-- nested enqueue stores: so that the fifo stays in seq order and every seq is used once, the
-- jobs listed so far are pushed first and the nested calls continue from this call's seq,
-- which is read back after them.
local function before_ending_at_once()
  redis.call("HSET", META, "seq", n2s(seq))
  if #listed > 0 then
    multi("RPUSH", FIFO, listed)
    pushed = pushed + #listed / 2
    listed = {}
  end
end
for i = 0, n - 1 do
  local b = 3 + i * per
  local id, uspec = ARGV[b], ""
  local holder = false
  if seen[id] then
    holder = 0
  elseif stored[i + 1] then
    if expired[i + 1] then
      forget(id, now)
    else
      holder = 0
    end
  end
  if not holder and ARGV[b + 6] ~= "" then
    local ttl, rest = string.match(ARGV[b + 6], "^(%d+) (.+)$")
    local key = BASE .. "u:" .. string.sub(rest, 2)
    holder = unique_holder(key, now) or false
    if holder == id then
      holder = false
    end
    if not holder then
      redis.call("SET", key, id .. " " .. n2s(now + tonumber(ttl)), "PX", ttl)
      uspec = rest
    end
  end
  if holder then
    out[#out + 1] = holder
  else
    seen[id] = true
    seq = seq + 1
    local run_at = math.max(num(ARGV[b + 4]), now + num(ARGV[b + 5]))
    local r = #records
    if not written then
      records[r + 1] = id
      -- One concatenation (a single Lua op) instead of a table.concat of a new table.
      records[r + 2] = enq .. " " .. ARGV[b + 2] .. " " .. ARGV[b + 3] .. " " .. #uspec .. " "
        .. uspec .. ARGV[b + 1]
    end
    local waits = ARGV[b + 7] ~= "" and wait_for(id, ARGV[b + 7], seen) or 0
    if waits == "cancel" then
      before_ending_at_once()
      cancel_job(id, { unique = uspec }, decode_state(nil, seq), now, "dependency failed",
        3600000)
      seq = num(redis.call("HGET", META, "seq"))
    elseif waits == "dead" then
      before_ending_at_once()
      local st = decode_state(nil, seq)
      append_error(id, '{"type":"DependencyFailed","message":"a job it waits for did not '
        .. 'complete (dead, cancelled or deleted)"}', now)
      release_unique({ unique = uspec }, id, "*")
      bury(id, { unique = uspec }, st, now, "dependency failed", 0, 0)
      seq = num(redis.call("HGET", META, "seq"))
    elseif waits > 0 then
      put_state(id, { l = "W", a = 0, s = seq, tk = "", t = run_at, o = "", lt = "", w = "",
                      r = "" })
    elseif run_at <= now and ARGV[b + 2] == "0" then
      seq_s, seq_s_of = n2s(seq), seq
      r = #listed
      listed[r + 1], listed[r + 2] = id, seq_s
    elseif run_at <= now then
      -- A number, not n2s: redis.call converts it exactly (%.17g, integers < 2^53), without
      -- interning a Lua string per job.
      r = #ready
      ready[r + 1] = (255 - num(ARGV[b + 2])) * BAND + seq
      ready[r + 2] = id
    else
      redis.call("ZADD", DELAYED, n2s(run_at), id)
      put_state(id, { l = "D", a = 0, s = seq, tk = "", t = 0, o = "", lt = "", w = "", r = "" })
    end
    out[#out + 1] = 0
  end
end
if seq > first_seq then
  multi("HSET", JOBS, records)
  redis.call("HSET", META, "seq", seq_s_of == seq and seq_s or n2s(seq))
end
multi("ZADD", READY, ready)
multi("RPUSH", FIFO, listed)
wake((#ready + #listed) / 2 + pushed)
return out
