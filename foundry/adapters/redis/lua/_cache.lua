-- The cache's helpers. Every cache function starts with begin(ARGV) (runner.py adds it): NOW is
-- the caller's clock (ARGV[1]) or else the server's, and the server's clock is read at most once
-- per call. A value's header (R3) decides its expiry against NOW; PXAT only frees memory, never
-- earlier than the header says nor than the ttl measured on the server's clock.
local NOW, SERVER_NOW

local function server_now()
  if not SERVER_NOW then
    SERVER_NOW = server_ms()
  end
  return SERVER_NOW
end

local function begin(argv)
  SERVER_NOW = nil
  NOW = tonumber(argv[1]) or server_now()
end

-- The stored string at key, or nil when absent or expired (an expired one is deleted).
local function live(key)
  local raw = redis.call('GET', key)
  if not raw then return nil end
  local at = tonumber(string.match(raw, '^(%d+):'))
  if at and at > 0 and at <= NOW then
    redis.call('DEL', key)
    return nil
  end
  return raw
end

-- Store payload for ttl ms (< 0: forever; 0: delete).
local function store(key, payload, ttl)
  if ttl < 0 then
    redis.call('SET', key, '0:' .. payload)
  elseif ttl == 0 then
    redis.call('DEL', key)
  else
    local at = n2s(NOW + ttl)
    local pxat = at  -- NOW is the server's clock unless the caller gave its own
    if NOW ~= SERVER_NOW then pxat = n2s(math.max(NOW, server_now()) + ttl) end
    redis.call('SET', key, at .. ':' .. payload, 'PXAT', pxat)
  end
end

-- Count n in the stats hash. A stats key another program broke (another type, a field that is
-- no integer) refuses HINCRBY: the count is dropped (pcall), never the call, whose writes are
-- done by then and would stay; stats() names the key and the fix.
local function count(stats, field, n)
  if n > 0 then redis.pcall('HINCRBY', stats, field, n) end
end
