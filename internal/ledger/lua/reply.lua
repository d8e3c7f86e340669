-- reply.lua: count one inbound reply to a run's message in the run's delivery statistics,
-- once per inbound message: the message's id is remembered in the same step, so the same
-- message delivered twice (a webhook retried, or received by two receiver replicas) counts
-- once.
--
-- KEYS[1] the run's delivery statistics
-- KEYS[2] the inbound message's key, remembering that it was counted
-- ARGV[1] button label ('' when the reply is no button tap)
-- ARGV[2] '1' when the reply is an opt-out
-- ARGV[3] how long the message's key lives (ms); '0' counts without remembering (the
--         message has no id)
--
-- Returns 1 when the reply was counted, 0 when the message was counted before.
if ARGV[3] ~= '0' then
  if not redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[3]) then return 0 end
end
redis.call('HINCRBY', KEYS[1], 'replies', 1)
if ARGV[1] ~= '' then redis.call('HINCRBY', KEYS[1], 'button:' .. ARGV[1], 1) end
if ARGV[2] == '1' then redis.call('HINCRBY', KEYS[1], 'optouts', 1) end
return 1
