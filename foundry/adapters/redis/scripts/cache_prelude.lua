-- Prelude of every cache script. A stored string is '<expires_at_ms>:<payload>' (0 = forever).
-- ARGV[1] is "now" in ms from the cache's clock, or empty for the server's clock (TIME).
-- The header is what makes expiry exact against a test clock; Redis' own expiry (PXAT) is
-- only there to free memory, never earlier than the header says and never earlier than the
-- ttl measured on the server's clock.
local SERVER_MS
local function server_ms()
  if not SERVER_MS then
    local t = redis.call('TIME')
    SERVER_MS = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  return SERVER_MS
end
local NOW = tonumber(ARGV[1]) or server_ms()
local function ms(n) return string.format('%.0f', n) end
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
local function store(key, payload, ttl)
  if ttl < 0 then
    redis.call('SET', key, '0:' .. payload)
  elseif ttl == 0 then
    redis.call('DEL', key)
  else
    local at = NOW + ttl
    redis.call('SET', key, ms(at) .. ':' .. payload, 'PXAT', ms(math.max(at, server_ms() + ttl)))
  end
end
local function count(stats, field, n)
  if n > 0 then redis.call('HINCRBY', stats, field, n) end
end
