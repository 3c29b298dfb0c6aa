-- purge: remove up to `batch` pending jobs ("pending": ready, in `ready` then the fifo, and
-- delayed) or dead letters ("dead").
-- KEYS  the queue's keys
-- ARGV  now, what, batch, request id
-- Reply how many were removed
-- Keeps Q8 (a re-send gets the first reply)
local now, what, batch = now_ms(ARGV[1]), ARGV[2], tonumber(ARGV[3])
if not batch or (what ~= "pending" and what ~= "dead") then
  return fail_arg("purge needs now, what, batch")
end
-- Checked before the first write (misplaced): forgetting a job writes any key, and a
-- pending one's keys (notify_settled, its batch, its limit's when it passes its key's turn
-- on): those of every pending job it may take.
local wrong = misplaced(EVERY_KEY)
if not wrong and what == "pending" then
  local ids = redis.call("ZRANGE", READY, 0, batch - 1)
  local listed = redis.call("LRANGE", FIFO, 0, n2s(batch * 2 - 1))
  for i = 1, #listed, 2 do
    ids[#ids + 1] = listed[i]
  end
  for _, id in ipairs(redis.call("ZRANGE", DELAYED, 0, batch - 1)) do
    ids[#ids + 1] = id
  end
  wrong = misplaced(ending_checks({}, ids, true)) or limits_misplaced_of(ids)
end
if wrong then
  return wrong
end
return counted(ARGV[4], function()
  local ids
  if what == "dead" then
    ids = redis.call("ZRANGE", DEAD, 0, batch - 1)
  else
    ids = redis.call("ZRANGE", READY, 0, batch - 1)
    if #ids < batch then
      -- Popped here, so forget need not look for them in the fifo.
      local popped = redis.call("LPOP", FIFO, n2s((batch - #ids) * 2)) or {}
      for i = 1, #popped, 2 do
        ids[#ids + 1] = popped[i]
      end
    end
    if #ids < batch then
      for _, id in ipairs(redis.call("ZRANGE", DELAYED, 0, batch - #ids - 1)) do
        ids[#ids + 1] = id
      end
    end
  end
  for _, id in ipairs(ids) do
    forget(id, now)
  end
  return #ids
end)
