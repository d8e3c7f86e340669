-- skip.lua: mark one planned or queued entry skipped with a reason (its task was deleted by an
-- operator, say); entries already being sent or done are left alone.
--
-- KEYS[1] run hash
-- KEYS[2] counts
-- KEYS[3] codes
-- KEYS[4] the recipient's ledger bucket
-- ARGV[1] recipient field
-- ARGV[2] reason
-- ARGV[3] now (unix ms)
--
-- Returns {prior state letter, 1 if it changed else 0}.
local v = redis.call('HGET', KEYS[4], ARGV[1])
if not v then return {'', 0} end
local st, row, att = parse(v)
if st ~= 'p' and st ~= 'q' then return {st, 0} end
redis.call('HSET', KEYS[4], ARGV[1], 'k|' .. row .. '|' .. att .. '|' .. ARGV[2] .. '|')
move(KEYS[2], st, 'k')
redis.call('HINCRBY', KEYS[3], 'skipped:' .. ARGV[2], 1)
maybe_complete(KEYS[1], KEYS[2], ARGV[3])
return {st, 1}
