-- delete: remove one pending (ready, delayed or waiting) or dead job, or with `pending` or
-- `dead` only one in that state; the jobs waiting for it go dead (or run, as each asked).
-- KEYS  the queue's keys
-- ARGV  now, id, request id, `any`, `pending` or `dead`
-- Reply 1 if removed, 0 if there is no such job or it is running or completed (or not in the
--       state named)
-- Keeps Q1 (only an admin delete removes a pending job, and `dead` never does: a dead letter
-- requeued since the admin saw it stays; nor does `pending` remove a dead letter the admin
-- has not seen), Q8 (a re-send gets the first reply)
local now, id, only = now_ms(ARGV[1]), ARGV[2], ARGV[4]
-- Checked before the first write (misplaced): forgetting a job writes any key.
local wrong = misplaced(ending_checks({ unpack(EVERY_KEY) }, { id }, true))
  or limits_misplaced({ redis.call("HGET", JOBS, id) })
if wrong then
  return wrong
end
return counted(ARGV[3], function()
  if only == "dead" then
    if not redis.call("ZSCORE", DEAD, id) then
      return 0
    end
    forget(id, now)
    return 1
  end
  local ranked = redis.call("ZSCORE", READY, id)
  -- stored, without a state and not in `ready`: in the fifo
  local listed = not ranked and redis.call("HEXISTS", STATE, id) == 0
    and redis.call("HEXISTS", JOBS, id) == 1
  local pending = ranked or listed or redis.call("ZSCORE", DELAYED, id)
    or redis.call("HEXISTS", BASE .. "deps", id) == 1
  if not (pending or (only ~= "pending" and redis.call("ZSCORE", DEAD, id))) then
    return 0
  end
  if listed then
    unlist({ id })
  end
  local value = ranked and redis.call("HGET", JOBS, id)
  local before = ranked and get_state(id)
  forget(id, now)
  if value then
    pass_slot_on(value, before)
  end
  return 1
end)
