-- workers.lua: what one asynq server says of itself, read at one instant: whether it is
-- beating, and if so the task ids it lists as in progress. asynq's heartbeat writes both keys
-- in one script with the same expiry (twice its 5 s interval), and writes the workers hash only
-- while the server has tasks, so an idle live server has no hash: only the servers key tells a
-- live server from one that stopped beating. Both keys carry the server's hash tag.
--
-- KEYS[1] asynq:workers:{<host:pid:server id>}
-- KEYS[2] asynq:servers:{<host:pid:server id>}
--
-- Returns 0 when the server is not beating (its servers key is gone: dead, or cut off from
-- Redis for 10 s or more), else the array of the task ids it lists (empty when idle).
if redis.call("EXISTS", KEYS[2]) == 0 then
  return 0
end
return redis.call("HKEYS", KEYS[1])
