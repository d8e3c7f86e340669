-- requeue.lua: asynq's requeue (internal/rdb requeueCmd: out of active and lease, onto the head
-- of pending, state pending) guarded by the lease's score: it applies only while the lease is
-- still the stale one that was judged, so a task whose lease a live server extended in the
-- meantime stays where it is. pending_since is set as asynq's enqueue sets it, for the queue's
-- latency.
--
-- KEYS[1] asynq:{q}:active
-- KEYS[2] asynq:{q}:lease
-- KEYS[3] asynq:{q}:pending
-- KEYS[4] asynq:{q}:t:<id>
-- ARGV[1] task id
-- ARGV[2] the stale lease score (unix s)
-- ARGV[3] now (unix ns)
--
-- Returns 1 when moved, 0 when not (the lease moved on or is gone, the task hash is gone, or
-- the task is not in active).
local score = redis.call("ZSCORE", KEYS[2], ARGV[1])
if not score or tonumber(score) > tonumber(ARGV[2]) then
  return 0
end
if redis.call("EXISTS", KEYS[4]) == 0 then
  return 0
end
if redis.call("LREM", KEYS[1], 0, ARGV[1]) == 0 then
  return 0
end
redis.call("ZREM", KEYS[2], ARGV[1])
redis.call("RPUSH", KEYS[3], ARGV[1])
redis.call("HSET", KEYS[4], "state", "pending", "pending_since", ARGV[3])
return 1
