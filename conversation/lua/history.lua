-- history.lua: record one joined reply in a recipient's conversation (conversation/history.go,
-- History.Record), once per inbound message, keeping the last ones received.
--
-- KEYS[1] -> the recipient's replies in the run (rkeys.Conversation; a follow-up's reply is
--            kept under the run it follows): a string of JSON objects, one a line ("\n"
--            between them; JSON escapes every newline of a text), in the order received
-- ARGV[1] -> the reply: a JSON object whose first field names the inbound message
-- ARGV[2] -> the reply's prefix up to and including that first field ({"m":"<id>",), the
--            same for every copy of the message
-- ARGV[3] -> the most replies kept (MaxConversation): past it the first received go first
-- ARGV[4] -> how long the key lives after this reply, ms (the retention)
--
-- Returns 1 when the reply was recorded (the key then expires ARGV[4] ms on), 0 when a copy
-- of the message was already there (nothing changed, the expiry included).
local cur = redis.call('GET', KEYS[1])
local v = ARGV[1]
if cur then
  if string.find('\n' .. cur, '\n' .. ARGV[2], 1, true) then
    return 0
  end
  v = cur .. '\n' .. v
  local lines = 1
  for _ in string.gmatch(v, '\n') do
    lines = lines + 1
  end
  local keep = tonumber(ARGV[3])
  while lines > keep do
    v = string.sub(v, string.find(v, '\n', 1, true) + 1)
    lines = lines - 1
  end
end
redis.call('SET', KEYS[1], v, 'PX', ARGV[4])
return 1
