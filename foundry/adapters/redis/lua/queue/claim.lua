-- claim: lease up to `limit` ready jobs of this queue, promoting due delayed jobs first.
-- KEYS  the queue's keys
-- ARGV  now, lease ms, limit, claim token, mode, worker, dead-letter max count, max age ms,
--       how many of the jobs taken start now ("" for all: the rest are held ahead, their
--       attempts given back if their leases lapse before a start is reported); mode "new": claim; "try": claim, but remember the token only if something was
--       claimed; "held": claim nothing, only return what the token holds; then, as start
--       takes them, pairs of id and lease token of jobs held ahead that started (recorded
--       first, whatever the mode)
-- Reply {epoch, "OK" | "RESENT" | "PAUSED", next due ms or "", then per lease: id, attempt,
--       deadline, fence, record, "" or, held ahead, the job's unstarted lapses so far}; a record whose header is corrupt is buried on the way. The
--       fence comes from the queue's counter (META fence), so each claim of a job gets a
--       greater one; the lease token is "<claim token>.<attempt>.<fence>"
-- Keeps Q2 (order), Q3 (due jobs only), Q4 (one holder per job), Q6 (the attempt counts at
--       claim, given back if a lease held ahead lapses unstarted), limits (a job over its key's limit is set aside, no attempt spent), Q8: the token's record (t:<token>) returns the leases it still holds until
--       the lease duration has passed, also for a claim that found nothing
local now = now_ms(ARGV[1])
local lease_ms, limit, ctoken = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local mode, worker = ARGV[5], ARGV[6]
local max_count, max_age = tonumber(ARGV[7]), tonumber(ARGV[8])
local starting = tonumber(ARGV[9] or "") or limit
local AHEAD = BASE .. "ahead"
if not now or not lease_ms or lease_ms < 1 or not limit or limit < 1 or ctoken == ""
    or not max_count or not max_age or #ARGV < 9 or #ARGV % 2 == 0 then
  return fail_arg("claim needs now, lease ms, limit, token, mode, worker, retention, starting"
    .. " and id/token pairs")
end
local meta = redis.call("HMGET", META, "paused", "epoch", "rates")
local out = { meta[2] or "", "OK", "" }
local tkey = BASE .. "t:" .. ctoken
local remembered = redis.call("GET", tkey)
local expiry, resent_ids = string.match(remembered or "", "^(%d+)(.*)$")
local resent = expiry and tonumber(expiry) > now
local upgrading = not meta[3] and meta[2] -- the first claim since the upgrade (META exists)
local due, first = {}, nil
if not resent and mode ~= "held" and meta[1] ~= "1" then
  due = redis.call("ZRANGEBYSCORE", DELAYED, "-inf", n2s(now), "LIMIT", "0", "1000")
end
-- A claim pops jobs before it leases them: every key it writes after its first write is
-- checked first (misplaced), so none refuses halfway. The meta, the token's record and the
-- delayed set were read above (the first claim since the upgrade reads the delayed set again
-- once it lined up the earlier release's jobs); the ready set and the fifo are read before
-- the first write too (peek_round), but checked when due jobs or reported starts are written
-- before them. A re-send or a "held" call writes only the starts, whose key it reads first.
if not resent and mode ~= "held" then
  local checks = upgrading and { unpack(EVERY_KEY) }
    or { JOBS, "hash", STATE, "hash", LEASES, "zset" }
  local n = #checks
  if starting < limit or #ARGV > 9 then
    checks[n + 1], checks[n + 2], n = AHEAD, "hash", n + 2
  end
  if #due > 0 or #ARGV > 9 then
    checks[n + 1], checks[n + 2], checks[n + 3], checks[n + 4] = READY, "zset", FIFO, "list"
  end
  local wrong = misplaced(checks)
  if wrong then
    return wrong
  end
end
-- The next `want` ready jobs, left in place: {popped (id, score...), from `ready`, from the
-- fifo, ids = their ids, values = their records} (take_ready(round[2], round[3]) pops them).
local function peek_round(want)
  local round = { peek_ready(want) }
  local ids = {}
  for i = 1, #round[1], 2 do
    ids[#ids + 1] = round[1][i]
  end
  round.ids = ids
  round.values = #ids > 0 and redis.call("HMGET", JOBS, unpack(ids)) or {}
  return round
end

-- The limit keys the first round may write (those of the first jobs it pops, and of the due
-- ones, which may come before them) are checked too: `seen` keeps what was, for later rounds.
local seen = {}
if not resent and mode ~= "held" and meta[1] ~= "1" then
  first = peek_round(limit)
  local wrong = claim_limits_misplaced(first.values, seen)
    or #due > 0 and claim_limits_misplaced(redis.call("HMGET", JOBS, unpack(due)), seen)
  if wrong then
    return wrong
  end
end
record_starts(ARGV, 10)

local function held(ids)
  local prefix = ctoken .. "."
  out[2] = "RESENT"
  for id in string.gmatch(ids, "%S+") do
    local st = get_state(id)
    if st and st.l == "A" and string.sub(st.tk, 1, #prefix) == prefix then
      local n = #out
      out[n + 1], out[n + 2], out[n + 3] = id, st.a, st.t
      out[n + 4] = string.match(st.tk, "(%d+)$")
      out[n + 5] = redis.call("HGET", JOBS, id)
      out[n + 6] = unstarted(redis.call("HGET", AHEAD, id), st.tk) or ""
    end
  end
  return out
end

-- Whether a popped job may start now (its limit, if any, allows it); if not, it is set
-- aside: parked until a slot of its key frees, or delayed until the start its rate gives it.
local function admitted(id, value, a, seq, o, lt, book)
  local lim = limit_of(value)
  local verdict = lim and admit(id, lim, now, book) or true
  if verdict == true then
    return true
  end
  put_state(id, { l = "D", a = tonumber(a) or 0, s = seq, tk = "", t = 0, o = o or "",
                  lt = lt or "", w = "", r = "" })
  redis.call("ZADD", DELAYED, n2s(verdict == "park" and PARKED or verdict), id)
  return false
end

-- Start every popped job (ids `ids`, records `values`), `before` taken already: reads and
-- writes batched (one HMGET / HSET / ZADD each). Those past the first `starting` of the claim
-- are held ahead. Returns the ids leased.
local function start_all(popped, ids, values, before)
  local states = redis.call("HMGET", STATE, unpack(ids))
  local marks = before + #ids > starting and redis.call("HMGET", AHEAD, unpack(ids)) or {}
  local new_states, leased, taken, book, aheads = { STATE_PAD_FIELD, STATE_PAD }, {}, {}, { held = 0 }, {}
  local fence = redis.call("HINCRBY", META, "fence", #ids) - #ids
  local deadline = now + lease_ms
  local deadline_s = n2s(deadline)
  for k, id in ipairs(ids) do
    local value, seq = values[k], tonumber(popped[2 * k]) % BAND
    local unique = value and unique_of(value)
    local l, a, o, lt, _ -- the stored state's fields a claim keeps (none for a fresh job)
    if states[k] then
      l, a, _, _, _, o, lt = split_state(states[k])
    end
    if value and (unique == nil or (states[k] and not l)) then
      local st = decode_state(states[k], seq)
      bury(id, header(value), st or { a = 0, s = seq, tk = "", o = "", lt = "", w = "" }, now,
        "undecodable: the stored record is corrupt", max_count, max_age)
    elseif value and admitted(id, value, a, seq, o, lt, book) then -- else set aside
      local attempt = (a and num(a) or 0) + 1
      local attempt_s = TEXT[attempt] or n2s(attempt)
      local fence_s = n2s(fence + k)
      local token = ctoken .. "." .. attempt_s .. "." .. fence_s
      new_states[#new_states + 1] = id
      new_states[#new_states + 1] =
        join_state("A", attempt_s, n2s(seq), token, deadline_s, o or "", lt or "", worker, "")
      leased[#leased + 1], leased[#leased + 2] = deadline_s, id
      taken[#taken + 1] = id
      if unique ~= "" then
        release_unique({ unique = unique }, id, "S")
      end
      local lapses = marks[k] and tonumber(string.match(marks[k], "^%d+")) or 0
      local ahead = before + #taken > starting and lapses < UNSTARTED_MAX
      if ahead then
        aheads[#aheads + 1], aheads[#aheads + 2] = id, n2s(lapses) .. " " .. token
      end
      local n = #out
      out[n + 1], out[n + 2], out[n + 3], out[n + 4] = id, attempt, deadline, fence_s
      out[n + 5], out[n + 6] = value, ahead and n2s(lapses) or ""
    end
  end
  multi("HSET", AHEAD, aheads)
  if book.held > 0 then
    redis.call("HINCRBY", META, "held", n2s(book.held))
  end
  if #taken > 0 then
    multi("HSET", STATE, new_states)
    multi("ZADD", LEASES, leased)
  end
  return taken
end

if resent then
  return held(resent_ids)
end
if mode == "held" then
  if remembered then
    redis.call("DEL", tkey)
  end
  return out
end
if upgrading then
  adopt_old_rates(now)
  redis.call("HSET", META, "rates", "1")
  if meta[1] ~= "1" then
    -- A job lined up for a start that has come is due now: this claim takes it (every key
    -- was checked; the round that meets it checks its limit's keys).
    due = redis.call("ZRANGEBYSCORE", DELAYED, "-inf", n2s(now), "LIMIT", "0", "1000")
  end
end
local taken = {}
if meta[1] == "1" then
  out[2] = "PAUSED"
else
  promote(due)
  -- Jobs set aside for their limits do not count: pop again, so that no job of a free key
  -- waits behind them (at most 1000 popped per claim).
  -- A later round stops before a job whose limit key is of the wrong type (the next claim
  -- refuses, having written nothing).
  local want, budget = limit, 1000
  while want > 0 and budget > 0 do
    -- The first round's jobs were peeked and checked above, unless due jobs joined them.
    local checked = first and #due == 0
    local round = checked and first or peek_round(want)
    first, due = nil, {}
    local popped = round[1]
    if #popped == 0 or (not checked and claim_limits_misplaced(round.values, seen)) then
      break
    end
    take_ready(round[2], round[3])
    for _, id in ipairs(start_all(popped, round.ids, round.values, #taken)) do
      taken[#taken + 1] = id
    end
    want, budget = limit - #taken, budget - #popped / 2
  end
end
if #out == 3 then
  local first = redis.call("ZRANGE", DELAYED, "0", "0", "WITHSCORES")
  out[3] = first[2] or ""
  if mode == "try" then
    if remembered then
      redis.call("DEL", tkey)
    end
    return out
  end
end
taken[0] = n2s(now + lease_ms)
redis.call("SET", tkey, table.concat(taken, " ", 0), "PX", n2s(lease_ms + 60000))
return out
