-- suppress.lua: put a recipient on the suppression list. An entry only widens: a recipient
-- already on the list for every message keeps that entry whatever is written after it, so a
-- later marketing-only opt-out (Meta 131050) cannot narrow an earlier STOP, however the
-- writers interleave. The hash has no hash tag: the script touches its one key.
--
-- KEYS[1] the suppression list: recipient -> "reason|unix ms|scope"; an entry written before
--         scopes is "reason|unix ms"
-- ARGV[1] the recipient
-- ARGV[2] the new entry, "reason|unix ms|scope"
-- ARGV[3] its scope: 'all' or 'marketing'
--
-- Returns 1 when the entry was written, 0 when the recipient's entry blocks as much already
-- (it is kept, with its reason and time). Any entry blocks marketing messages, so a
-- marketing-only entry is written only for a recipient not on the list; an entry for every
-- message replaces any entry but one for every message (an entry written before scopes is
-- replaced: what it blocks, its reason says, and the new one blocks at least that).
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur then
  if ARGV[3] ~= 'all' or string.sub(cur, -4) == '|all' then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
