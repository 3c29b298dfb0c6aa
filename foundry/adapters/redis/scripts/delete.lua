-- delete: remove one pending (ready or delayed) or dead job. ARGV: now, id, request id.
-- Returns 1 if removed, 0 if there is no such job or it is running or completed.
local id = ARGV[2]
local again = replayed(ARGV[3])
if again then
  return tonumber(again)
end
local pending = redis.call("ZSCORE", READY, id) or redis.call("ZSCORE", DELAYED, id)
if not (pending or redis.call("ZSCORE", DEAD, id)) then
  return remember(ARGV[3], 0)
end
forget(id)
return remember(ARGV[3], 1)
