-- delete: remove one pending (ready or delayed) or dead job. ARGV: now, id.
-- Returns 1 if removed, 0 if there is no such job or it is running or completed.
local id = ARGV[2]
local pending = redis.call("ZSCORE", READY, id) or redis.call("ZSCORE", DELAYED, id)
if not (pending or redis.call("ZSCORE", DEAD, id)) then
  return 0
end
forget(id)
return 1
