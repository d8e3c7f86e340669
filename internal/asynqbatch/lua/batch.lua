-- batch.lua: write many tasks of one asynq queue: for each, exactly what asynq's enqueueCmd or
-- scheduleCmd (internal/rdb/rdb.go) does, its existence check included. One call instead of one
-- per task saves Redis most of its per-script overhead (about 10 us a call on Redis 7). All keys
-- carry the queue's hash tag, so the call is legal on a Cluster.
--
-- A task whose key exists is left alone, whoever wrote it: so a call that runs twice (go-redis
-- sends a call again when the connection drops before its reply is read) writes nothing the
-- second time and never puts a task id on pending or scheduled twice.
--
-- KEYS[1]    asynq:{<qname>}:pending
-- KEYS[2]    asynq:{<qname>}:scheduled
-- KEYS[3..]  asynq:{<qname>}:t:<task_id>, one per task
-- ARGV[1]    now (unix ns): the pending_since of the tasks made pending
-- ARGV[j], ARGV[j+1], ARGV[j+2] with j = 2 + (i - 3) * 3, for the task of KEYS[i]: its
--            encoded message, its task id, and when to process it (unix s; '0' pending now)
--
-- Returns one flag per task, in KEYS order: 1 created, 0 the id existed.
local out, ids = {}, {}
for i = 3, #KEYS do
  local j = 2 + (i - 3) * 3
  if redis.call("EXISTS", KEYS[i]) == 1 then
    out[#out + 1] = 0
  elseif ARGV[j + 2] == "0" then
    redis.call("HSET", KEYS[i], "msg", ARGV[j], "state", "pending", "pending_since", ARGV[1])
    ids[#ids + 1] = ARGV[j + 1]
    out[#out + 1] = 1
  else
    redis.call("HSET", KEYS[i], "msg", ARGV[j], "state", "scheduled")
    redis.call("ZADD", KEYS[2], ARGV[j + 2], ARGV[j + 1])
    out[#out + 1] = 1
  end
end
-- LPUSH in chunks rather than once a task: the ids land in the list in task order, as one
-- LPUSH each would (chunks keep unpack within Lua's stack limit).
for s = 1, #ids, 1000 do
  redis.call("LPUSH", KEYS[1], unpack(ids, s, math.min(s + 999, #ids)))
end
return out
