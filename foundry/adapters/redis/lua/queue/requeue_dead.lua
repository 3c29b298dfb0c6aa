-- requeue_dead: dead letters back to ready with a fresh attempt budget, errors kept, new seq.
-- KEYS  the queue's keys
-- ARGV  now, mode ("all": up to `batch` of the oldest; "ids": the ids that follow), batch,
--       request id, ids...
-- Reply how many were requeued (unknown ids are ignored)
-- Keeps Q10, Q8 (a re-send gets the first reply)
local now = now_ms(ARGV[1])
local mode, batch = ARGV[2], tonumber(ARGV[3])
if not now or not batch or (mode ~= "all" and mode ~= "ids") then
  return fail_arg("requeue_dead needs now, mode, batch")
end
-- Checked before the first write (misplaced).
local wrong = misplaced(EVERY_KEY)
if wrong then
  return wrong
end
return counted(ARGV[4], function()
  local ids = {}
  if mode == "all" then
    ids = redis.call("ZRANGE", DEAD, 0, batch - 1)
  else
    for i = 5, #ARGV do
      ids[#ids + 1] = ARGV[i]
    end
  end
  local count = 0
  for _, id in ipairs(ids) do
    local value = redis.call("HGET", JOBS, id)
    if redis.call("ZREM", DEAD, id) == 1 and value then
      local h = header(value)
      local st = get_state(id) or { tk = "", o = "" }
      st.l, st.a, st.t, st.r = "R", 0, 0, ""
      st.s = redis.call("HINCRBY", META, "seq", 1)
      put_state(id, st)
      make_ready(id, h and h.prio or 0, st.s)
      count = count + 1
    end
  end
  wake(count)
  return count
end)
