-- The queue's helpers. Every queue function starts with bind(KEYS) (runner.py adds it), which
-- names its queue's keys for the helpers from the first (the jobs key): calls never overlap,
-- so one set of names serves all, and a call on the queue of the call before finds them made.
local JOBS, STATE, ERRORS, RESULTS, READY, DELAYED, LEASES, DEAD, DONE, META, WAKE, BASE, FIFO
-- The queue's keys of one name each, with the type each holds (the key table in _head.lua):
-- what a function that may write any of them checks first (see misplaced).
local EVERY_KEY
-- How long a cancelled record is kept (ms): the completed records' ttl when the calling
-- function was given it, else an hour (the default).
local COMPLETED_TTL

local function bind(keys)
  COMPLETED_TTL = nil
  if keys[1] == JOBS then
    return -- a library's locals outlive its calls
  end
  JOBS = keys[1]
  BASE = string.sub(JOBS, 1, -5)
  STATE, ERRORS, RESULTS = BASE .. "state", BASE .. "errors", BASE .. "results"
  READY, DELAYED, LEASES = BASE .. "ready", BASE .. "delayed", BASE .. "leases"
  DEAD, DONE, META, WAKE = BASE .. "dead", BASE .. "done", BASE .. "meta", BASE .. "wake"
  FIFO = BASE .. "fifo"
  EVERY_KEY = { JOBS, "hash", STATE, "hash", ERRORS, "hash", RESULTS, "hash", READY, "zset",
    DELAYED, "zset", LEASES, "zset", DEAD, "zset", DONE, "zset", META, "hash", WAKE, "list",
    FIFO, "list", BASE .. "ahead", "hash", BASE .. "stop", "hash", BASE .. "deps", "hash",
    BASE .. "dependants", "hash", BASE .. "progress", "hash", BASE .. "waiters", "hash",
    BASE .. "batchof", "hash", BASE .. "cbof", "hash", BASE .. "batches", "zset",
    BASE .. "batches:end", "zset" }
end

-- Redis keeps what a function wrote before one of its commands failed: a key of the wrong type
-- met halfway would leave a job half written (stored but in no set, popped but not leased).
-- So a function checks, before its first write, the keys it may write (or read as their type)
-- after it: `checks` holds pairs of key and type. The error reply names the first key of
-- another type (the adapter reports its queue broken); nil when all are right or absent. A
-- key whose first use fails before anything is written needs no check: each costs a call.
local function misplaced(checks)
  for i = 1, #checks, 2 do
    local kind = redis.call("TYPE", checks[i]).ok
    if kind ~= "none" and kind ~= checks[i + 1] then
      return redis.error_reply("WRONGTYPE " .. checks[i] .. " is a " .. kind .. ", not a "
        .. checks[i + 1] .. " (the call was refused before writing anything)")
    end
  end
  return nil
end
-- The keys of single jobs and batches that the end of the jobs `ids` may write (or read as
-- their type) beyond EVERY_KEY, appended to `checks` for misplaced: each ending job's
-- notification list when someone waits for it (n:<id>, notify_settled) and its batch's record
-- (b:<id>, batch_members_ended); then the same for the jobs that end with them: those waiting
-- for them (if `failed`) or for their batch (which may end failed) that go dead or are
-- cancelled when one fails. One HMGET of the waiters, batchof and dependants (of the deps of
-- the waiting jobs found) per 1,000 ids and level.
local function ending_checks(checks, ids, failed)
  local seen, level = {}, {}
  for _, id in ipairs(ids) do
    if not seen[id] then
      seen[id], level[#level + 1] = true, id
    end
  end
  local function add(key, kind)
    checks[#checks + 1], checks[#checks + 2] = key, kind
  end
  while #level > 0 do
    local waiting = {} -- ids of the batches found and (if `failed`) of the level's jobs
    for i = 1, #level, 1000 do
      local chunk = { unpack(level, i, math.min(i + 999, #level)) }
      local marks = redis.call("HMGET", BASE .. "waiters", unpack(chunk))
      local bids = redis.call("HMGET", BASE .. "batchof", unpack(chunk))
      for j, id in ipairs(chunk) do
        if marks[j] then
          add(BASE .. "n:" .. id, "list")
        end
        if bids[j] and not seen[bids[j]] then
          seen[bids[j]], waiting[#waiting + 1] = true, bids[j]
          add(BASE .. "b:" .. bids[j], "hash")
        end
        if failed then
          waiting[#waiting + 1] = id
        end
      end
    end
    level, failed = {}, true
    for i = 1, #waiting, 1000 do
      local chunk = { unpack(waiting, i, math.min(i + 999, #waiting)) }
      local found = {}
      for _, text in ipairs(redis.call("HMGET", BASE .. "dependants", unpack(chunk))) do
        for dependant in string.gmatch(text or "", "%S+") do
          if not seen[dependant] then
            seen[dependant], found[#found + 1] = true, dependant
          end
        end
      end
      for k = 1, #found, 1000 do
        local some = { unpack(found, k, math.min(k + 999, #found)) }
        local specs = redis.call("HMGET", BASE .. "deps", unpack(some))
        for j, dependant in ipairs(some) do
          local rule = string.match(specs[j] or "", "^%d+ (%u)$")
          if rule == "D" or rule == "C" then
            level[#level + 1] = dependant
          end
        end
      end
    end
  end
  return checks
end
local BAND = 17592186044416 -- 2^44: ready score = (255 - priority) * BAND + seq, exact in a double
-- A fifo entry's score, were it in `ready`: priority 0's band plus its seq.
local FIFO_BAND = 255 * BAND
local WAKE_CAP = 8
-- A settled job's notification outlives the gap between a waiter's watch and its BLMOVE.
local SETTLED_TTL = "60000"
-- The states a job never leaves by itself (R2 letters): completed, dead, cancelled.
local FINAL = { C = true, X = true, N = true }
-- STATE's one field that is no job (ids never hold "#"): its value, longer than Redis's
-- hash-max-listpack-value (64 by default), keeps STATE a hashtable. A listpack (up to
-- hash-max-listpack-entries, 512 by default) is searched field by field, so each read and
-- write of a queue's first few hundred states would scan them all. Every claim that leases
-- a job writes it beside the states (Redis never turns a hashtable back into a listpack).
local STATE_PAD_FIELD = "#hashtable"
local STATE_PAD = "a value longer than hash-max-listpack-value keeps this hash a hashtable (_queue.lua)"

local function base36(n)
  local digits, out = "0123456789abcdefghijklmnopqrstuvwxyz", ""
  repeat
    local d = n % 36
    out = string.sub(digits, d + 1, d + 1) .. out
    n = (n - d) / 36
  until n == 0
  return out
end

-- Two base-36 digits by value (0 to 36^2 - 1), made once (a library's load may not read
-- `string`).
local PAIRS36 = {}
do
  local d = { "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "a", "b", "c", "d", "e", "f",
    "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q", "r", "s", "t", "u", "v", "w", "x", "y",
    "z" }
  for i = 0, 1295 do
    PAIRS36[i] = d[(i - i % 36) / 36 + 1] .. d[i % 36 + 1]
  end
end

-- A time in ms in base 36, the last one remembered: calls within one ms share it (a
-- library's locals outlive its calls), and its digits but the last two (they change every
-- 1.3 s) too: a new ms is one concatenation, where base36 makes a string per digit.
local last_ms, last_ms36, last_high, last_high36 = -1, "", -1, ""
local function ms36(ms)
  if ms ~= last_ms then
    local low = ms % 1296
    local high = (ms - low) / 1296
    if high == 0 then
      last_ms36 = base36(ms)
    else
      if high ~= last_high then
        last_high, last_high36 = high, base36(high)
      end
      last_ms36 = last_high36 .. PAIRS36[low]
    end
    last_ms = ms
  end
  return last_ms36
end

-- Small integers by their text: a table lookup, where tonumber runs strtod; other text
-- (and anything tonumber reads differently, such as " 3") goes to tonumber.
local SMALL, TEXT = {}, {}
for i = -255, 1000 do
  SMALL["" .. i], TEXT[i] = i, "" .. i
end
local function num(text)
  return SMALL[text] or tonumber(text)
end

-- The header of a job record (R1), or nil if it is corrupt.
local function header(value)
  local enq, prio, max, ulen, pos = string.match(value, "^(%w+) (%-?%d+) (%d+) (%d+) ()")
  if not enq then
    return nil
  end
  ulen = tonumber(ulen)
  return { enq = tonumber(enq, 36), prio = tonumber(prio), max = tonumber(max),
           unique = string.sub(value, pos, pos + ulen - 1) }
end

-- The unique key part of a job record's header (R1; "" for none), or nil if the header is
-- corrupt: header()'s check, without its numbers and table, for the claim's hot path.
local function unique_of(value)
  local ulen, pos = string.match(value, "^%w+ %-?%d+ %d+ (%d+) ()")
  if not ulen then
    return nil
  end
  return string.sub(value, pos, pos + num(ulen) - 1)
end

-- A job state (R2). split_state and join_state read and write its nine fields as stored
-- strings, for the hot paths that change a few fields and copy the rest (no number
-- conversions); decode_state and encode_state give and take a table with numbers.
local function split_state(v)
  return string.match(v, "^(%u),(%d+),(%d+),([^,]*),(%d+),(%u?),([^,]*),([^,]*),(.*)$")
end

local function join_state(l, a, s, tk, t, o, lt, w, r)
  return l .. "," .. a .. "," .. s .. "," .. tk .. "," .. t .. "," .. o .. "," .. lt .. "," .. w
    .. "," .. r
end

local function decode_state(v, seq)
  if not v then
    return { l = "R", a = 0, s = seq or 0, tk = "", t = 0, o = "", lt = "", w = "", r = "" }
  end
  local l, a, s, tk, t, o, lt, w, r = split_state(v)
  if not l then
    return nil
  end
  return { l = l, a = tonumber(a), s = tonumber(s), tk = tk, t = tonumber(t), o = o, lt = lt,
           w = w, r = r }
end

local function encode_state(st)
  return join_state(st.l, n2s(st.a), n2s(st.s), st.tk, n2s(st.t), st.o, st.lt or "", st.w or "",
    st.r)
end

local function get_state(id, seq)
  return decode_state(redis.call("HGET", STATE, id), seq)
end

local function put_state(id, st)
  redis.call("HSET", STATE, id, encode_state(st))
end

-- One command over a long argument list, in slices Lua's unpack can take (none for an empty
-- list: callers need no guard).
-- (A number given to redis.call is formatted by "%.17g", a float conversion costing about a
-- third of a us: the hot paths pass strings.)
local function multi(command, key, args)
  local step = 4000
  for i = 1, #args, step do
    redis.call(command, key, unpack(args, i, math.min(i + step - 1, #args)))
  end
end

-- One command over a long list of keys (DEL, MGET's like), in slices as `multi`.
local function multi_keys(command, keys)
  local step = 4000
  for i = 1, #keys, step do
    redis.call(command, unpack(keys, i, math.min(i + step - 1, #keys)))
  end
end

-- The current lease ended by `outcome`: remember its token for re-sends.
local function end_lease(st, outcome)
  st.lt, st.tk, st.o = st.tk, "", outcome
end

-- Jobs claimed ahead of need (ClaimRequest.ahead) in <base>ahead: "<n> <lease token>" while
-- that lease holds the job unstarted (if it lapses, the attempt is given back), "<n>" once it
-- started; n counts the job's leases that lapsed unstarted. From UNSTARTED_MAX on (the ports'
-- UNSTARTED_LAPSES_MAX) its claims count at once. Kept until the job ends.
local UNSTARTED_MAX = 2

-- The count of unstarted lapses if `mark` says lease `token` holds its job unstarted, else nil.
local function unstarted(mark, token)
  if not mark then
    return nil
  end
  local n, tk = string.match(mark, "^(%d+) (.*)$")
  if tk == token then
    return n
  end
  return nil
end

-- Lease `token` of job `id` (its mark `mark`) started, or ended: only the count is kept.
local function mark_started(id, mark, token)
  local n = unstarted(mark, token)
  if n == "0" then
    redis.call("HDEL", BASE .. "ahead", id)
  elseif n then
    redis.call("HSET", BASE .. "ahead", id, n)
  end
end

-- Leases held ahead that started: pairs of id and lease token in `args` from `first` on
-- (start's ARGV, or what follows a claim's own arguments). A mark still naming its lease
-- keeps only its count of unstarted lapses (one HDEL of those at none, one HSET of the rest).
-- Returns how many starts were recorded.
local function record_starts(args, first)
  local ids = {}
  for i = first, #args, 2 do
    ids[#ids + 1] = args[i]
  end
  if #ids == 0 then
    return 0
  end
  local ahead = BASE .. "ahead"
  local marks = redis.call("HMGET", ahead, unpack(ids))
  local gone, kept = {}, {}
  for k, id in ipairs(ids) do
    local n = unstarted(marks[k], args[first + 2 * k - 1])
    if n == "0" then
      gone[#gone + 1] = id
    elseif n then
      kept[#kept + 1], kept[#kept + 2] = id, n
    end
  end
  multi("HDEL", ahead, gone)
  multi("HSET", ahead, kept)
  return #gone + #kept / 2
end

local function make_ready(id, prio, seq)
  redis.call("ZADD", READY, n2s((255 - prio) * BAND + seq), id)
end

-- The wake list only hints that work arrived; once it holds WAKE_CAP hints nobody is
-- waiting, so a full list costs one LLEN, and one with room an LPUSH of what fills it.
local function wake(count)
  local room = count > 0 and WAKE_CAP - redis.call("LLEN", WAKE) or 0
  if room > 0 then
    local ones = {}
    for i = 1, math.min(count, room) do
      ones[i] = "1"
    end
    redis.call("LPUSH", WAKE, unpack(ones))
  end
end

-- Each queue's epoch as the last plain enqueue found it, and the seq that enqueue took
-- (META -> {epoch, seq}; a library's locals outlive its calls, and a reload, a restart or
-- a failover starts them empty). An enqueue whose HINCRBY takes the next seq finds the meta
-- as the last one left it, epoch and all; any other change of seq (another function,
-- another release's library, the meta deleted or made again) makes it read the epoch: the
-- meta would have to come back to that very seq, without this library, for a stale one.
local plain_epochs = {}

-- The queue's epoch (set to `candidate` if it has none) and a new seq, taken: one call
-- where reading both and writing seq back are two.
local function take_seq(candidate)
  local seq = redis.call("HINCRBY", META, "seq", "1")
  local seen = plain_epochs[META]
  if seen and seen[2] == seq - 1 then
    seen[2] = seq
    return seen[1], seq
  end
  local epoch = redis.call("HGET", META, "epoch")
  if not epoch then
    redis.call("HSET", META, "epoch", candidate)
    epoch = candidate
  end
  plain_epochs[META] = { epoch, seq }
  return epoch, seq
end

-- A seq's digits, from its thousands (the last ones made, kept: they change every 1,000
-- enqueues) and a table of three digits: a number given to redis.call is formatted by
-- "%.17g", a float conversion several times the cost (string.format costs more still).
local DIGITS, DIGITS3 = {}, {}
for i = 0, 999 do
  DIGITS[i] = "" .. i
  DIGITS3[i] = (i < 10 and "00" or i < 100 and "0" or "") .. i
end
local seq_thousands, seq_thousands_text = 0, ""
local function seq_text(seq)
  local low = seq % 1000
  local thousands = (seq - low) / 1000
  if thousands == 0 then
    return DIGITS[low]
  end
  if thousands ~= seq_thousands then
    seq_thousands, seq_thousands_text = thousands, n2s(thousands)
  end
  return seq_thousands_text .. DIGITS3[low]
end

-- A plain enqueue (one job ready now at priority 0, without a unique key or dependencies),
-- stored by HSETNX: it joins the fifo without the general path's bookkeeping. The queue's
-- epoch, or nil, having written nothing, for the general path to take it: bad arguments,
-- an id already stored (Q8), a kept batch's or a pending callback's id (refused there); or
-- the error reply of a key of the wrong type, nothing written.
local function enqueue_plain(now, candidate, id, blob, max_text)
  local max = num(max_text)
  if id == "" or not now or not max or max < 1 or redis.call("EXISTS", BASE .. "b:" .. id) == 1
      or redis.call("HEXISTS", BASE .. "cbof", id) == 1 then
    return nil
  end
  -- Before the record's write: the wake list's length (read here, it needs no check), then
  -- the meta and fifo written after the record.
  local hints = redis.call("LLEN", WAKE)
  local wrong = misplaced({ META, "hash", FIFO, "list" })
  if wrong then
    return wrong
  end
  if redis.call("HSETNX", JOBS, id, ms36(now) .. " 0 " .. max_text .. " 0 " .. blob) == 0 then
    return nil
  end
  local epoch, seq = take_seq(candidate)
  redis.call("RPUSH", FIFO, id, seq_text(seq))
  if hints < WAKE_CAP then
    redis.call("LPUSH", WAKE, "1")
  end
  return epoch
end

-- The fifo (<base>fifo) holds the jobs enqueued ready at priority 0, the common case, as
-- pairs "id, seq" in seq order: a list entry costs a quarter of a sorted set's. Every other
-- ready job (other priorities, jobs back from a lease, a delay, a limit or their
-- dependencies) is in `ready`; a claim merges the two by score (FIFO_BAND + seq for a fifo
-- entry). A job in neither `ready` nor the state hash, but stored, is in the fifo.

-- Remove jobs from the fifo: one LPOS scan each (ids sit at even positions, their seqs,
-- which an id of digits could equal, at odd ones), or for many one pass over the list, which
-- goes round once: popped from the head and the pairs kept pushed back at the tail, 4,000
-- entries at a time (so a long fifo never sits whole in Lua's memory).
local function unlist(ids)
  if #ids > 16 then
    local gone = {}
    for _, id in ipairs(ids) do
      gone[id] = true
    end
    local left = redis.call("LLEN", FIFO)
    while left > 0 do
      local entries = redis.call("LPOP", FIFO, n2s(math.min(left, 4000)))
      local kept = {}
      for i = 1, #entries, 2 do
        if not gone[entries[i]] then
          kept[#kept + 1], kept[#kept + 2] = entries[i], entries[i + 1]
        end
      end
      multi("RPUSH", FIFO, kept)
      left = left - #entries
    end
    return
  end
  for _, id in ipairs(ids) do
    for _, at in ipairs(redis.call("LPOS", FIFO, id, "COUNT", 0)) do
      if at % 2 == 0 then
        redis.call("LSET", FIFO, at, "")
        redis.call("LSET", FIFO, at + 1, "")
        redis.call("LREM", FIFO, 2, "") -- "" is neither an id nor a seq
        break
      end
    end
  end
end

-- The first `want` ready jobs in claim order, `ready` and the fifo merged, left in place:
-- {id, score, id, score...} as ZPOPMIN gives, then how many of them `ready` and the fifo
-- hold (take_ready takes them). A claim reads the jobs' records before its first write.
local function peek_ready(want)
  if redis.call("EXISTS", READY) == 0 then
    local listed = redis.call("LRANGE", FIFO, "0", n2s(want * 2 - 1))
    for i = 2, #listed, 2 do
      listed[i] = FIFO_BAND + tonumber(listed[i])
    end
    return listed, 0, #listed / 2
  end
  local ranked = redis.call("ZRANGE", READY, "0", n2s(want - 1), "WITHSCORES")
  local listed = redis.call("LRANGE", FIFO, "0", n2s(want * 2 - 1))
  local out, z, f = {}, 1, 1
  while #out < want * 2 and (ranked[z] or listed[f]) do
    local zs = ranked[z] and tonumber(ranked[z + 1])
    local fs = listed[f] and FIFO_BAND + tonumber(listed[f + 1])
    if fs and (not zs or fs < zs) then
      out[#out + 1], out[#out + 2], f = listed[f], fs, f + 2
    else
      out[#out + 1], out[#out + 2], z = ranked[z], zs, z + 2
    end
  end
  return out, (z - 1) / 2, (f - 1) / 2
end

-- Take what peek_ready found: the first `ranked` of `ready` and `listed` of the fifo.
local function take_ready(ranked, listed)
  if ranked > 0 then
    redis.call("ZPOPMIN", READY, n2s(ranked))
  end
  if listed > 0 then
    redis.call("LTRIM", FIFO, n2s(listed * 2), "-1")
  end
end

-- Limits per key (memory/limits.py keeps the same rules). Keys, in the queue's slot:
-- <base>lim:run:<key> (its jobs running: the active jobs of the key, each found by its
-- record's limit when its lease ends), lim:rate:<key> (next: its earliest next start, ms;
-- turn: the job delayed until then), lim:line:<key> (ids waiting for the turn, first in line
-- first), lim:park:<key> (ids parked until a slot frees, first parked first). A parked job,
-- or one in line, sits in
-- `delayed` at PARKED, a score no clock reaches, so it counts as delayed and stays there
-- until a slot of its key frees.
local PARKED = 4503599627370496 -- 2^52

-- Parsed limits by the text that follows `"limit":` in the record (the object and the
-- blob's closing brace): the jobs of one key share it, so most reads are a lookup (a
-- library's locals outlive its calls; cleared when it holds LIMITS_MAX). Reaching a
-- global's field costs a good part of a C call here: the string functions are kept as locals
-- (set at the first call: a library's load may not read `string`).
local LIMITS, LIMITS_N, LIMITS_MAX = {}, 0, 4096
local sfind, ssub

-- A limit as the claim uses it: key, concurrency (a number or false), rate (a table or false).
local function limit_from(doc)
  if type(doc) ~= "table" or type(doc.key) ~= "string" then
    return nil
  end
  local conc, rate = doc.concurrency, doc.rate
  return { key = doc.key, conc = type(conc) == "number" and conc or false,
           rate = type(rate) == "table" and rate or false }
end

local function parse_limit(value, at)
  local last = string.match(value, '^"limit":(%b{})}$', at)
    or string.match(value, '"limit":(%b{})}$') -- a payload's "limit" came first
  if not last then
    local ulen, pos = string.match(value, "^%w+ %-?%d+ %d+ (%d+) ()")
    local ok, doc = false, nil
    if ulen then
      ok, doc = pcall(cjson.decode, string.sub(value, pos + tonumber(ulen)))
    end
    return ok and type(doc) == "table" and limit_from(doc.limit) or nil, nil
  end
  -- The common shape, a concurrency alone, without the decoder (its pcall costs more).
  local key, conc = string.match(last, '^{"key":"([^"\\]*)","concurrency":(%d+)}$')
  if key then
    return { key = key, conc = tonumber(conc), rate = false }, last
  end
  local ok, doc = pcall(cjson.decode, last)
  return ok and limit_from(doc) or nil, last
end

-- A stored job's limit, or nil. The codec writes `limit` as the job's last field, so its
-- object is usually the one closing the blob, and only that small object is read (once per
-- distinct object, then found in LIMITS); else (a field written after it) the whole blob is.
-- A payload's own "limit" never closes it. The table is shared: callers never change it.
local function limit_of(value)
  if not sfind then
    sfind, ssub = string.find, string.sub
  end
  local at = sfind(value, '"limit":{', 1, true)
  if not at then
    return nil
  end
  local tail = ssub(value, at + 8)
  local lim = LIMITS[tail]
  if lim then
    return lim
  end
  local last
  lim, last = parse_limit(value, at)
  if lim and last and last .. "}" == tail then
    if LIMITS_N >= LIMITS_MAX then
      LIMITS, LIMITS_N = {}, 0
    end
    LIMITS[tail], LIMITS_N = lim, LIMITS_N + 1
  end
  return lim
end

-- The limit's concurrency (nil without one), its key's running-count and park-list names in
-- this queue kept on the shared table while calls stay on one queue.
local function slots_of(lim)
  local conc = lim.conc
  if conc and lim.base ~= BASE then
    lim.base, lim.run, lim.park = BASE, BASE .. "lim:run:" .. lim.key, BASE .. "lim:park:" .. lim.key
  end
  return conc or nil
end

-- A key's rate state, `lim:rate:<key>`, matters while a job holds its turn or its next start
-- is to come; else it expires, a minute after that start (the slack covers a caller's clock
-- that runs behind the server's: the fields, read against `now`, decide, never the expiry).
local RATE_SLACK = 60000

local function rate_idle(rk, next_ms, now)
  redis.call("PEXPIRE", rk, n2s(math.max(next_ms - now, 0) + RATE_SLACK))
end

-- The first job still in line for `key`'s turn (ids cancelled or deleted meanwhile are
-- skipped) holds it now, delayed until the key's next start `next_ms`; else the state idles.
local function next_in_line(key, rk, next_ms, now)
  local line = BASE .. "lim:line:" .. key
  local next_id = redis.call("LPOP", line)
  while next_id do
    if tonumber(redis.call("ZSCORE", DELAYED, next_id)) == PARKED then
      redis.call("HSET", rk, "turn", next_id)
      redis.call("ZADD", DELAYED, n2s(next_ms), next_id)
      wake(1)
      return
    end
    next_id = redis.call("LPOP", line)
  end
  redis.call("HDEL", rk, "turn")
  rate_idle(rk, next_ms, now)
end

-- The job holding `key`'s turn: `holder`, an interval or more past its turn, unless it is
-- no longer pending (its record was unreadable when its turn came: it went dead, or started
-- without its limit, so it never passed the turn on); then the first in line takes the turn
-- (nil: none). Checked only for a holder that late, so a claim on time pays nothing; a key
-- whose holder went so leaves its line when its next job is met.
local function turn_left_behind(key, rk, holder, next_ms, now)
  local stored = redis.call("HGET", STATE, holder) -- a holder's is stored: it was delayed
  local st = stored and decode_state(stored)
  if st and (st.l == "D" or st.l == "R") then
    return holder
  end
  next_in_line(key, rk, next_ms, now)
  return redis.call("HGET", rk, "turn")
end

-- When a job of `key` at `rate` waits until (its key's next start, whose turn it then holds),
-- "park" (another job holds the turn: it waits in line, `lim:line:<key>`), or nil to start
-- now, the turn going to the first in line (domain/limits.py rate_turn: the same rule).
local function rate_wait(id, key, rate, now)
  local rk = BASE .. "lim:rate:" .. key
  local state = redis.call("HMGET", rk, "next", "turn")
  local next_ms, holder = tonumber(state[1] or "0") or 0, state[2] -- unreadable: no start
  local interval = math.ceil(rate.per / 1000 / rate.count)
  if holder and holder ~= id and next_ms <= now - interval then
    holder = turn_left_behind(key, rk, holder, next_ms, now)
  end
  if holder and holder ~= id then
    redis.call("RPUSH", BASE .. "lim:line:" .. key, id)
    return "park"
  end
  if next_ms > now then
    redis.call("HSET", rk, "turn", id)
    redis.call("PERSIST", rk)
    return next_ms
  end
  -- The job that held the turn keeps the key's schedule: a late claim does not push it back.
  next_ms = (holder and math.max(next_ms, now - interval) or now) + interval
  redis.call("HSET", rk, "next", n2s(next_ms))
  if holder then
    next_in_line(key, rk, next_ms, now)
  else
    rate_idle(rk, next_ms, now)
  end
  return nil
end

-- A pending job (its record `value`) leaves unclaimed (cancelled, deleted): if it holds its
-- key's rate turn, the first job in line takes that turn, so no turn goes unused. A rate
-- state of another type names no holder (a pending job's callers checked it: misplaced), so
-- forgetting an ended job's record never stops at it.
local function pass_turn_on(id, value, now)
  local lim = value and limit_of(value)
  if not (lim and lim.rate) then
    return
  end
  local rk = BASE .. "lim:rate:" .. lim.key
  if redis.pcall("HGET", rk, "turn") == id then
    next_in_line(lim.key, rk, tonumber(redis.call("HGET", rk, "next") or "0") or 0, now)
  end
end

-- The queue's rate state as the release before lim:rate wrote it, met once, at the first
-- claim after the upgrade (META's `rates` marks it done): lim:next (key -> its earliest next
-- start), lim:tail (key -> the end of the turns handed out) and lim:resv (ids delayed to a
-- turn of their own). Each key's next start carries over, so no start comes early; the jobs
-- delayed to a turn of their own wait in line instead, in their turns' order, the first
-- holding the key's next turn, so a cancelled one passes its turn on as any job in line
-- does. The old hashes then decide nothing and go. One pass over them (once per queue).
local function adopt_old_rates(now)
  local old_next, old_tail, old_resv = BASE .. "lim:next", BASE .. "lim:tail", BASE .. "lim:resv"
  if redis.call("EXISTS", old_next, old_tail, old_resv) == 0 then
    return
  end
  local lines, keys = {}, {}
  for _, id in ipairs(redis.call("HKEYS", old_resv)) do
    local at = tonumber(redis.call("ZSCORE", DELAYED, id))
    local value = at and at ~= PARKED and redis.call("HGET", JOBS, id)
    local lim = value and limit_of(value)
    if lim and lim.rate then
      if not lines[lim.key] then
        lines[lim.key], keys[#keys + 1] = {}, lim.key
      end
      local line = lines[lim.key]
      line[#line + 1] = { at, id }
    end
  end
  local nexts = redis.call("HGETALL", old_next)
  for i = 1, #nexts, 2 do
    if not lines[nexts[i]] and (tonumber(nexts[i + 1]) or 0) > now then
      lines[nexts[i]], keys[#keys + 1] = {}, nexts[i]
    end
  end
  for _, key in ipairs(keys) do
    local rk = BASE .. "lim:rate:" .. key
    local state = redis.call("HMGET", rk, "next", "turn")
    local next_ms = math.max(tonumber(state[1] or "0") or 0,
      tonumber(redis.call("HGET", old_next, key) or "0") or 0)
    redis.call("HSET", rk, "next", n2s(next_ms))
    local line = lines[key]
    table.sort(line, function(a, b) return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2]) end)
    for _, waiting in ipairs(line) do
      redis.call("ZADD", DELAYED, n2s(PARKED), waiting[2])
      redis.call("RPUSH", BASE .. "lim:line:" .. key, waiting[2])
    end
    if not state[2] then
      next_in_line(key, rk, next_ms, now)
    end
  end
  redis.call("DEL", old_next, old_tail, old_resv)
end

-- Whether job `id` with limit `lim` may start at `now`: true (it takes a slot, counted in
-- `book.held` for META's `held`, which the caller adds once per batch), "park" (its key runs
-- `concurrency` jobs: parked), or the ms it waits until (its turn at its rate). A job holds a
-- slot exactly while it is active (state A) with a concurrency limit: free_slots finds its
-- key in its record, so nothing per job is written for it.
local function admit(id, lim, now, book)
  local conc = slots_of(lim)
  -- The slot is taken first (one INCR in the common case) and given back if the job waits.
  if conc and redis.call("INCR", lim.run) > conc then
    redis.call("DECR", lim.run)
    redis.call("RPUSH", lim.park, id)
    return "park"
  end
  local wait = lim.rate and rate_wait(id, lim.key, lim.rate, now)
  if wait then
    if conc and redis.call("DECR", lim.run) <= 0 then
      redis.call("DEL", lim.run)
    end
    return wait
  end
  if conc then
    book.held = book.held + 1
  end
  return true
end

-- A ready job's state time (R2) when a freed slot made it ready: if it leaves unclaimed, the
-- slot passes on (pass_slot_on); a claim rewrites the state, so the mark goes with it.
local SLOT_FREED = 1

-- The first job still parked for `key` is ready again (ids deleted meanwhile are skipped).
local function unpark_one(key)
  local park = BASE .. "lim:park:" .. key
  local next_id = redis.call("LPOP", park)
  while next_id do
    if tonumber(redis.call("ZSCORE", DELAYED, next_id)) == PARKED then
      local value = redis.call("HGET", JOBS, next_id)
      local h = value and header(value)
      local st = get_state(next_id)
      redis.call("ZREM", DELAYED, next_id)
      if st then
        st.l, st.t = "R", SLOT_FREED
        put_state(next_id, st)
      end
      make_ready(next_id, h and h.prio or 0, st and st.s or 0)
      wake(1)
      return
    end
    next_id = redis.call("LPOP", park)
  end
end

-- The slots the active leases of `ids` held, read before their end's first write: nil when
-- none holds one (one HGET of META's count of the jobs holding a slot when none does); else
-- {order (each key's limit), freed (slots per running count), count}, one HMGET of the
-- records per 1,000 jobs. give_slots_back gives them back.
local function slots_held(ids)
  if #ids == 0 or tonumber(redis.call("HGET", META, "held") or "0") <= 0 then
    return nil
  end
  local freed, order, count = {}, {}, 0
  for first = 1, #ids, 1000 do
    local values = redis.call("HMGET", JOBS, unpack(ids, first, math.min(first + 999, #ids)))
    for k = 1, #values do
      local lim = values[k] and limit_of(values[k])
      if lim and slots_of(lim) then
        local run = lim.run
        if not freed[run] then
          freed[run] = 0
          order[#order + 1] = lim
        end
        freed[run], count = freed[run] + 1, count + 1
      end
    end
  end
  return count > 0 and { order = order, freed = freed, count = count } or nil
end

-- How many of the park lists of `held`'s keys exist (one EXISTS per 4,000 keys), kept on it.
local function parks_held(held)
  if not held.parked then
    local parks, parked = {}, 0
    for i, lim in ipairs(held.order) do
      parks[i] = lim.park
    end
    for first = 1, #parks, 4000 do
      parked = parked + redis.call("EXISTS", unpack(parks, first, math.min(first + 3999, #parks)))
    end
    held.parked = parked
  end
  return held.parked
end

-- Give back the slots `held` (slots_held) found: one DECRBY per key, one DEL of the counts at
-- 0, and each freed slot readies its key's first parked job (one LPOP per freed slot when a
-- park list exists).
local function give_slots_back(held)
  local order, freed = held.order, held.freed
  local emptied = {}
  for _, lim in ipairs(order) do
    if redis.call("DECRBY", lim.run, n2s(freed[lim.run])) <= 0 then
      emptied[#emptied + 1] = lim.run
    end
  end
  if #emptied > 0 then
    multi_keys("DEL", emptied)
  end
  redis.call("HINCRBY", META, "held", n2s(-held.count))
  if parks_held(held) > 0 then
    for _, lim in ipairs(order) do
      for _ = 1, freed[lim.run] do
        unpark_one(lim.key)
      end
    end
  end
end

-- The active leases of `ids` ended: give back the slots they held (each job's key from its
-- record), and make each freed key's first parked job ready.
local function free_slots(ids)
  local held = slots_held(ids)
  if held then
    give_slots_back(held)
  end
end

-- A pending job (its record `value`, its state `st` before it left) leaves unclaimed
-- (cancelled, deleted): if a freed slot made it ready and its key still runs fewer jobs than
-- its concurrency, the key's first parked job is ready, so that slot is not left unused with
-- jobs parked for it. Any other job leaving passes nothing: no slot was set aside for it.
local function pass_slot_on(value, st)
  if not (st and st.l == "R" and st.t == SLOT_FREED) then
    return
  end
  local lim = limit_of(value)
  local conc = lim and slots_of(lim)
  if conc and tonumber(redis.call("GET", lim.run) or "0") < conc then
    unpark_one(lim.key)
  end
end

-- Limit keys are checked as the queue's own are (misplaced) before a function's first write.
-- Which of them a call may write follows from its jobs' limits, so it reads their records
-- first; a running count must also read as a number (INCR and DECRBY refuse other text).

-- The number the running count `run` holds (0 for none), or nil and the error reply naming
-- it: another type, or text that is no count.
local function run_count(run)
  local v = redis.pcall("GET", run)
  if type(v) == "table" then
    return nil, misplaced({ run, "string" }) or v
  end
  if v and not (#v < 16 and string.match(v, "^%-?%d+$")) then
    return nil, redis.error_reply("ERR " .. run .. " holds " .. cjson.encode(string.sub(v, 1, 40))
      .. ", not a count of running jobs (the call was refused before writing anything; set it"
      .. " to how many jobs of its limit key run)")
  end
  return tonumber(v or "0"), nil
end

-- Before a claim's first write: the error reply naming the first limit key it may write for
-- the jobs with records `values` that is of the wrong type (or a running count that is no
-- count), else nil. `seen` (one per call) keeps what was checked: for a running count, what
-- it read and the jobs of its key met, so the key's park list is checked once they may
-- exceed its concurrency; a rate's keys once.
local function claim_limits_misplaced(values, seen)
  for _, value in ipairs(values) do
    local lim = value and limit_of(value)
    local conc = lim and slots_of(lim)
    local wrong = nil
    if conc then
      local met = seen[lim.run]
      if not met then
        local count
        count, wrong = run_count(lim.run)
        met = { count or 0, 0 }
        seen[lim.run] = met
      end
      met[2] = met[2] + 1
      if not wrong and met[1] + met[2] > conc and not seen[lim.park] then
        seen[lim.park] = true
        wrong = misplaced({ lim.park, "list" })
      end
    end
    local rk = lim and lim.rate and BASE .. "lim:rate:" .. lim.key
    if rk and not wrong and not seen[rk] then
      seen[rk] = true
      wrong = misplaced({ rk, "hash", BASE .. "lim:line:" .. lim.key, "list", WAKE, "list" })
    end
    if wrong then
      return wrong
    end
  end
  return nil
end

-- Before the first write of a function that may free a slot or pass a turn on for the jobs
-- with records `values` (a lease's end, a cancel, a delete): the error reply naming the
-- first of their limit keys of the wrong type (or a running count that is no count), else
-- nil. The keys readying a parked job or passing a turn writes in the queue's own the
-- caller checks.
local function limits_misplaced(values)
  local seen = {}
  for _, value in ipairs(values) do
    local lim = value and limit_of(value)
    if lim and not seen[lim.key] then
      seen[lim.key] = true
      local checks, wrong = {}, nil
      if slots_of(lim) then
        local _
        _, wrong = run_count(lim.run)
        checks[1], checks[2] = lim.park, "list"
      end
      if lim.rate then
        checks[#checks + 1], checks[#checks + 2] = BASE .. "lim:rate:" .. lim.key, "hash"
        checks[#checks + 1], checks[#checks + 2] = BASE .. "lim:line:" .. lim.key, "list"
      end
      wrong = wrong or misplaced(checks)
      if wrong then
        return wrong
      end
    end
  end
  return nil
end

-- limits_misplaced for the jobs `ids` (their records read 1,000 at a time).
local function limits_misplaced_of(ids)
  for first = 1, #ids, 1000 do
    local wrong = limits_misplaced(redis.call("HMGET", JOBS,
      unpack(ids, first, math.min(first + 999, #ids))))
    if wrong then
      return wrong
    end
  end
  return nil
end

-- Before the first write of the end of leases whose slots `held` (slots_held) gives back: the
-- error reply naming a running count of the wrong type or that is no count, or, when a park
-- list exists, a park list or a key readying a parked job writes of the wrong type; else nil.
local function slots_misplaced(held)
  for _, lim in ipairs(held.order) do
    local _, wrong = run_count(lim.run)
    if wrong then
      return wrong
    end
  end
  if parks_held(held) == 0 then
    return nil
  end
  local checks = { DELAYED, "zset", READY, "zset", WAKE, "list" }
  for _, lim in ipairs(held.order) do
    checks[#checks + 1], checks[#checks + 2] = lim.park, "list"
  end
  return misplaced(checks)
end

-- A unique key's string is "<job id> <expiry ms>": expiry follows the queue's clock (PX, set
-- to the ttl too, only reclaims the memory).
local function unique_holder(key, now)
  local v = redis.call("GET", key)
  if not v then
    return nil
  end
  local id, expires = string.match(v, "^(%S+) (%d+)$")
  if id and (now == nil or tonumber(expires) > now) then
    return id
  end
  return nil
end

-- Release the job's unique key if it still holds it; when = "S", "F" or "*" (any). A key of
-- another type holds no job (an enqueue naming it is refused): nothing to release, and the
-- start or end that called this goes on whole, where a failed read would stop it halfway.
local function release_unique(h, id, when)
  if h == nil or h.unique == "" then
    return
  end
  if when ~= "*" and string.sub(h.unique, 1, 1) ~= when then
    return
  end
  local key = BASE .. "u:" .. string.sub(h.unique, 2)
  local v = redis.pcall("GET", key)
  if type(v) == "string" and string.match(v, "^(%S+) %d+$") == id then
    redis.call("DEL", key)
  end
end

-- Append one ErrorInfo (JSON) to the job's history; "at" is the queue's now when not given.
local function append_error(id, err, now)
  if not string.find(err, '"at":', 1, true) then
    err = string.sub(err, 1, -2) .. ',"at":' .. n2s(now * 1000) .. "}"
  end
  local prev = redis.call("HGET", ERRORS, id)
  if prev and #prev > 2 then
    redis.call("HSET", ERRORS, id, string.sub(prev, 1, -2) .. "," .. err .. "]")
  else
    redis.call("HSET", ERRORS, id, "[" .. err .. "]")
  end
end

-- Wake whoever waits for these jobs to end (watch put them in <base>waiters): each gets a
-- one-item list, <base>n:<id>, that every waiter's BLMOVE takes and puts back.
local function notify_settled(ids)
  local waiters = BASE .. "waiters"
  for i = 1, #ids, 1000 do
    local chunk = { unpack(ids, i, math.min(i + 999, #ids)) }
    local marks = redis.call("HMGET", waiters, unpack(chunk))
    for j, id in ipairs(chunk) do
      if marks[j] then
        local key = BASE .. "n:" .. id
        redis.call("LPUSH", key, "1")
        redis.call("LTRIM", key, 0, 0)
        redis.call("PEXPIRE", key, SETTLED_TTL)
        redis.call("HDEL", waiters, id)
      end
    end
  end
end

-- Jobs waiting for others (Job.after): <base>deps holds a waiting job's "<unfinished count>
-- <D|C|R>" (if one fails, D: dead, C: cancelled, R: runs anyway), <base>dependants a job's waiting jobs,
-- "<id> <id>...". settle_dependants(id, failed, now) is called when a job ends.
local settle_dependants
-- Batches (further below): settle_batches(ids, "c" | "f" | "x", now) counts members' ends.
local settle_batches

-- Whether the queue holds `dep`, a job or batch a new job names in `after`: stored, and not a
-- record kept past its time (a completed or cancelled job's, an ended batch's), which reads
-- already call gone and the next expiry pass forgets.
local function holds_dependency(dep, now)
  local expires
  if redis.call("HEXISTS", JOBS, dep) == 1 then
    expires = redis.call("ZSCORE", DONE, dep)
  elseif redis.call("EXISTS", BASE .. "b:" .. dep) == 1 then
    expires = redis.call("HGET", BASE .. "b:" .. dep, "ex")
  else
    return false
  end
  return not expires or tonumber(expires) > now
end

-- Remove every trace of a job (and its unique key, if it still holds it); the jobs waiting
-- for it fail as of `now` (the calling function's clock).
local function forget(id, now)
  local value = redis.call("HGET", JOBS, id)
  if value then
    release_unique(header(value), id, "*")
  end
  if tonumber(redis.call("HGET", META, "held") or "0") > 0
      and string.sub(redis.call("HGET", STATE, id) or "", 1, 2) == "A," then
    free_slots({ id }) -- an active job holds a slot if it has a concurrency limit
  end
  pass_turn_on(id, value, now)
  redis.call("HDEL", JOBS, id)
  redis.call("HDEL", STATE, id)
  redis.call("HDEL", ERRORS, id)
  redis.call("HDEL", RESULTS, id)
  redis.call("ZREM", READY, id)
  redis.call("ZREM", DELAYED, id)
  redis.call("ZREM", LEASES, id)
  redis.call("ZREM", DEAD, id)
  redis.call("ZREM", DONE, id)
  redis.call("HDEL", BASE .. "stop", id)
  redis.call("HDEL", BASE .. "deps", id)
  redis.call("HDEL", BASE .. "progress", id)
  redis.call("HDEL", BASE .. "ahead", id)
  notify_settled({ id })
  settle_dependants(id, true, now)
  settle_batches({ id }, "x", now)
end

-- Dead letters are ordered by a sequence number (newest first, exact under equal times);
-- the time of death is in the state. Retention trims the oldest, in bounded batches.
local function trim_dead(now, max_count, max_age)
  local trimmed = 0
  if max_age > 0 then
    local oldest = redis.call("ZRANGE", DEAD, 0, 999)
    for _, id in ipairs(oldest) do
      local st = get_state(id)
      if st and st.t >= now - max_age then
        break
      end
      forget(id, now)
      trimmed = trimmed + 1
    end
  end
  if max_count > 0 then
    local extra = redis.call("ZCARD", DEAD) - max_count
    if extra > 0 then
      for _, id in ipairs(redis.call("ZRANGE", DEAD, 0, math.min(extra, 1000) - 1)) do
        forget(id, now)
        trimmed = trimmed + 1
      end
    end
  end
  if trimmed > 0 then
    redis.call("HINCRBY", META, "dead_trimmed", trimmed)
  end
  return trimmed
end

-- Move a job to the dead letters (its lease, if any, already removed by the caller).
local function bury(id, h, st, now, reason, max_count, max_age)
  st.l = "X"
  st.t = now
  st.r = reason
  put_state(id, st)
  redis.call("ZREM", READY, id)
  redis.call("ZREM", DELAYED, id)
  redis.call("ZADD", DEAD, redis.call("HINCRBY", META, "seq", 1), id)
  redis.call("HDEL", BASE .. "stop", id)
  redis.call("HDEL", BASE .. "deps", id)
  redis.call("HDEL", BASE .. "ahead", id)
  release_unique(h, id, "F")
  notify_settled({ id })
  settle_dependants(id, true, now)
  settle_batches({ id }, "f", now)
  return trim_dead(now, max_count, max_age)
end

-- End a pending or running job cancelled with `reason` (its lease, if any, already removed by
-- the caller): kept `ttl` ms in done like a completed record, its unique key freed.
local function cancel_job(id, h, st, now, reason, ttl)
  st.l, st.t, st.r = "N", now, reason
  put_state(id, st)
  redis.call("ZREM", READY, id)
  redis.call("ZREM", DELAYED, id)
  redis.call("ZADD", DONE, n2s(now + ttl), id)
  redis.call("HDEL", BASE .. "stop", id)
  redis.call("HDEL", BASE .. "deps", id)
  redis.call("HDEL", BASE .. "ahead", id)
  release_unique(h, id, "*")
  redis.call("HINCRBY", META, "cancelled", 1)
  notify_settled({ id })
  settle_dependants(id, true, now)
  settle_batches({ id }, "x", now)
end

-- Jobs completed: the jobs waiting for them wait for one fewer (one HMGET per 1,000).
local function settle_completed(ids, now)
  for i = 1, #ids, 1000 do
    local chunk = { unpack(ids, i, math.min(i + 999, #ids)) }
    local marks = redis.call("HMGET", BASE .. "dependants", unpack(chunk))
    for j, id in ipairs(chunk) do
      if marks[j] then
        settle_dependants(id, false, now)
      end
    end
  end
end

-- A waiting job whose last dependency ended: ready, or delayed until its own run time (the
-- state's time while it waits).
local function stop_waiting(id, now)
  local st = get_state(id)
  local value = redis.call("HGET", JOBS, id)
  if not (st and st.l == "W" and value) then
    return
  end
  if st.t > now then
    st.l = "D"
    redis.call("ZADD", DELAYED, n2s(st.t), id)
  else
    st.l, st.t = "R", 0
    make_ready(id, header(value).prio, st.s)
    wake(1)
  end
  put_state(id, st)
end

settle_dependants = function(id, failed, now)
  local waiting = redis.call("HGET", BASE .. "dependants", id)
  if not waiting then
    return
  end
  redis.call("HDEL", BASE .. "dependants", id)
  now = now or server_ms()
  for dependant in string.gmatch(waiting, "%S+") do
    local spec = redis.call("HGET", BASE .. "deps", dependant)
    local count, rule = string.match(spec or "", "^(%d+) (%u)$")
    if count and failed and rule == "C" then
      local value = redis.call("HGET", JOBS, dependant)
      cancel_job(dependant, value and header(value), get_state(dependant), now,
        "dependency failed", COMPLETED_TTL or 3600000)
    elseif count and failed and rule == "D" then
      local value = redis.call("HGET", JOBS, dependant)
      local st = get_state(dependant)
      append_error(dependant, '{"type":"DependencyFailed","message":' .. cjson.encode("job "
        .. id .. " it waits for did not complete (dead, cancelled or deleted)") .. '}', now)
      release_unique(value and header(value), dependant, "*")
      bury(dependant, value and header(value), st, now, "dependency failed", 0, 0)
    elseif count and tonumber(count) <= 1 then
      redis.call("HDEL", BASE .. "deps", dependant)
      stop_waiting(dependant, now)
    elseif count then
      redis.call("HSET", BASE .. "deps", dependant, n2s(tonumber(count) - 1) .. " " .. rule)
    end
  end
end

-- Why a cancel asked this running job to stop, or nil.
local function stop_reason(id)
  return redis.call("HGET", BASE .. "stop", id) or nil
end

-- Forget completed records older than their ttl, a bounded batch at a time.
local function expire_done(now)
  local old = redis.call("ZRANGEBYSCORE", DONE, "-inf", n2s(now), "LIMIT", "0", "100")
  for _, id in ipairs(old) do
    forget(id, now)
  end
end

-- A counting admin call carries a request id: its first reply is kept for 60 s (r:<id>), so
-- a re-send after a lost reply gets that reply back instead of a count of what was left.
local function replayed(request)
  if request == nil or request == "" then
    return nil
  end
  return redis.call("GET", BASE .. "r:" .. request)
end

local function remember(request, reply)
  if request ~= nil and request ~= "" then
    redis.call("SET", BASE .. "r:" .. request, reply, "PX", 60000)
  end
  return reply
end

-- count(): the reply of a counting admin call, run once per request id.
local function counted(request, count)
  local again = replayed(request)
  if again then
    return tonumber(again)
  end
  return remember(request, count())
end

-- Due delayed jobs (read by the caller: ZRANGEBYSCORE of DELAYED up to now) become ready,
-- keeping the seq they got at enqueue or retry.
local function promote(due)
  for _, id in ipairs(due) do
    local value = redis.call("HGET", JOBS, id)
    local h = value and header(value)
    local st = get_state(id) or { l = "R", a = 0, s = 0, tk = "", t = 0, o = "", lt = "", w = "",
                                  r = "" }
    st.l = "R"
    st.t = 0
    put_state(id, st)
    redis.call("ZREM", DELAYED, id)
    make_ready(id, h and h.prio or 0, st.s)
  end
  return #due
end

-- Batches (domain/batch.py BatchProgress.ended keeps the same rules). Keys, in the queue's slot:
-- <base>batchof (member id -> its batch id, until the member's end is counted), <base>b:<id>
-- (hash: t total, c completed, f failed, x cancelled, af "1" allow failures, cx "1" cancel
-- asked, r its reason, k "1" catch fired, e "1" ended, ca created ms, fa ended ms, ex ms the
-- ended record is kept until, fd the callbacks fired (letters c, t, f); <which>:id, :blob, :p,
-- :m, :at, :af the enqueue arguments of each callback, which = then, catch, finally),
-- <base>cbof (callback id -> "<which> <batch id>" until it fired or its batch ended: ids
-- batch refuses), <base>bm:<id> (list: the member ids), <base>batches (zset: batch id by
-- created ms) and <base>batches:end (zset: ended batch id by ex). An ended batch has a STATE
-- entry, "C" when it succeeded (then fired), else "N", read by the jobs that wait for it
-- (Job.after naming it).
local CALLBACK_LETTER = { catch = "c", ["then"] = "t", finally = "f" }

-- Batch `bid`'s callback `which` (its id `id`) is no longer pending: it fired, or the batch
-- ended without it (<base>cbof; an entry a later batch made for the same id stays).
local function callback_settled(bid, which, id)
  local cbof = BASE .. "cbof"
  if id and redis.call("HGET", cbof, id) == which .. " " .. bid then
    redis.call("HDEL", cbof, id)
  end
end

-- The first of `ids` that a batch names as its pending callback (<base>cbof): the refusal
-- {"!c", id, "<which> <batch id>"}, else nil. One HMGET per 1,000 ids; callers ask only
-- while cbof is not empty (one HLEN).
local function pending_callback_among(ids)
  for first = 1, #ids, 1000 do
    local last = math.min(first + 999, #ids)
    local held = redis.call("HMGET", BASE .. "cbof", unpack(ids, first, last))
    for j = 1, last - first + 1 do
      if held[j] then
        return { "!c", ids[first + j - 1], held[j] }
      end
    end
  end
  return nil
end

-- Enqueue one callback job (enqueue's own body: a stored id is left as it is).
local function fire_callback(bid, bkey, which, now)
  local cb = redis.call("HMGET", bkey, which .. ":id", which .. ":blob", which .. ":p",
    which .. ":m", which .. ":at", which .. ":af")
  redis.call("HSET", bkey, "fd", (redis.call("HGET", bkey, "fd") or "") .. CALLBACK_LETTER[which])
  if not cb[1] then
    return
  end
  callback_settled(bid, which, cb[1])
  local keys = { JOBS, STATE, ERRORS, RESULTS, READY, DELAYED, LEASES, DEAD, DONE, META, WAKE }
  local saved = COMPLETED_TTL
  local reply = FN.enqueue(keys, { n2s(now), redis.call("HGET", META, "epoch") or "0", cb[1],
    cb[2], cb[3], cb[4], cb[5], cb[6], "", "" })
  COMPLETED_TTL = saved
  if reply.err then
    error(reply) -- never met: whoever ends a batch checked every key first (misplaced)
  end
end

-- `k` members of batch `bid` ended as `field` (c, f or x): count them, and fire what fires.
local function batch_members_ended(bid, field, k, now)
  local bkey = BASE .. "b:" .. bid
  local v = redis.call("HMGET", bkey, "t", "c", "f", "x", "af", "cx", "k", "e")
  if not v[1] or v[8] then
    return
  end
  local count = { c = tonumber(v[2]), f = tonumber(v[3]), x = tonumber(v[4]) }
  count[field] = count[field] + k
  redis.call("HSET", bkey, field, n2s(count[field]))
  local fired = {}
  if field == "f" and not v[7] then
    redis.call("HSET", bkey, "k", "1")
    fired[#fired + 1] = "catch"
  end
  local total = tonumber(v[1])
  local ended = count.c + count.f + count.x >= total
  local ok = ended and not v[6] and (v[5] == "1" or count.c == total)
  if ok then
    fired[#fired + 1] = "then"
  end
  if ended then
    fired[#fired + 1] = "finally"
    local expires = now + (COMPLETED_TTL or 3600000)
    redis.call("HSET", bkey, "e", "1", "fa", n2s(now), "ex", n2s(expires))
    redis.call("ZADD", BASE .. "batches:end", n2s(expires), bid)
    put_state(bid, { l = ok and "C" or "N", a = 0, s = 0, tk = "", t = now, o = "", lt = "",
                     w = "", r = "" })
  end
  for _, which in ipairs(fired) do
    fire_callback(bid, bkey, which, now)
  end
  if ended then
    for _, which in ipairs({ "then", "catch", "finally" }) do
      callback_settled(bid, which, redis.call("HGET", bkey, which .. ":id"))
    end
    settle_dependants(bid, not ok, now)
  end
end

-- Batches stored by the release before cbof existed name their pending callbacks nowhere, so
-- a job could take such a callback's id (the callback then lost at its batch's end). Their
-- pending callbacks (of batches running, not fired yet) are entered in cbof once per queue,
-- by the first reap since the upgrade (META's `cbofs` marks it done; reap reads it beside
-- the epoch): HSETNX, so an entry kept stays. A batch record of another type is left out
-- (its end fails as any call meeting it does). Returns the error reply of a cbof of another
-- type, nothing written.
local function adopt_old_callbacks()
  local cbof = BASE .. "cbof"
  local wrong = misplaced({ cbof, "hash" })
  if wrong then
    return wrong
  end
  for _, bid in ipairs(redis.call("ZRANGE", BASE .. "batches", 0, -1)) do
    local v = redis.pcall("HMGET", BASE .. "b:" .. bid, "e", "fd", "then:id", "catch:id",
      "finally:id")
    if not v.err and not v[1] then
      for k, which in ipairs({ "then", "catch", "finally" }) do
        local id = v[k + 2]
        if id and not string.find(v[2] or "", CALLBACK_LETTER[which], 1, true) then
          redis.call("HSETNX", cbof, id, which .. " " .. bid)
        end
      end
    end
  end
  redis.call("HSET", META, "cbofs", "1")
  return nil
end

-- Forget an ended batch's record (its id is free again).
local function forget_batch(bid)
  redis.call("DEL", BASE .. "b:" .. bid, BASE .. "bm:" .. bid)
  redis.call("HDEL", STATE, bid)
  redis.call("ZREM", BASE .. "batches", bid)
  redis.call("ZREM", BASE .. "batches:end", bid)
end

-- Whether the queue keeps batch `id`: stored, and not an ended batch's record kept past its
-- time (that one's id is added to `stale`: forget_stale_batches frees it at the caller's
-- first write, so a check or refusal between them finds nothing written).
local function batch_kept(id, now, stale)
  -- A key of another type holds no batch (pcall): a callback's enqueue at its batch's end
  -- must not stop halfway there.
  local v = redis.pcall("HMGET", BASE .. "b:" .. id, "t", "ex")
  if v.err or not v[1] then
    return false
  end
  if v[2] and tonumber(v[2]) <= now then
    stale[#stale + 1] = id
    return false
  end
  return true
end

-- Forget the records of the batches in `stale` (batch_kept), their ids free again, after
-- checking the keys that writes (misplaced): the error reply naming one of the wrong type,
-- nothing written, else nil.
local function forget_stale_batches(stale)
  if #stale == 0 then
    return nil
  end
  local wrong = misplaced({ STATE, "hash", BASE .. "batches", "zset", BASE .. "batches:end",
    "zset" })
  if wrong then
    return wrong
  end
  for _, bid in ipairs(stale) do
    forget_batch(bid)
  end
  return nil
end

-- Forget the records of ended batches kept past their time, a bounded batch at a time.
local function expire_batches(now)
  local old = redis.call("ZRANGEBYSCORE", BASE .. "batches:end", "-inf", n2s(now), "LIMIT", "0",
    "100")
  for _, bid in ipairs(old) do
    forget_batch(bid)
  end
end

-- Jobs ended as `field` (c completed, f dead, x cancelled or deleted): each member among them
-- is counted once in its batch (its batchof entry goes). One HLEN when no batch is pending.
settle_batches = function(ids, field, now)
  local of = BASE .. "batchof"
  if #ids == 0 or redis.call("HLEN", of) == 0 then
    return
  end
  local counts, order, gone, last = {}, {}, {}, {}
  for i = 1, #ids, 1000 do
    local chunk = { unpack(ids, i, math.min(i + 999, #ids)) }
    local marks = redis.call("HMGET", of, unpack(chunk))
    for j, id in ipairs(chunk) do
      local bid = marks[j]
      if bid then
        gone[#gone + 1] = id
        if not counts[bid] then
          counts[bid] = 0
          order[#order + 1] = bid
        end
        counts[bid] = counts[bid] + 1
        last[bid] = #gone
      end
    end
  end
  if #gone == 0 then
    return
  end
  -- Batches in the order of their last member among `ids`: the order their ends come in.
  table.sort(order, function(a, b) return last[a] < last[b] end)
  multi("HDEL", of, gone)
  now = now or server_ms()
  for _, bid in ipairs(order) do
    batch_members_ended(bid, field, counts[bid], now)
  end
  expire_batches(now)
end
