-- retry_mark.lua: record on a run that a retry run of it is being started, unless a retry
-- the caller has not checked was recorded since it read the run.
--
-- The run's retried_by field lists its retry runs as "child@unix-ms" words, oldest first. The
-- caller reads them, checks each against what it is about to pick, and names the ones it
-- checked; a word naming any other child means another retry started meanwhile: nothing
-- changes, and the caller reads and checks again.
--
-- KEYS[1] run hash (the parent)
-- A word naming the new child itself is this call's own mark, written by a first run of the
-- script whose reply was lost (go-redis sends it again): the call is answered as recorded.
--
-- ARGV[1] the child ids the caller checked, separated by spaces
-- ARGV[2] the new child's id
-- ARGV[3] now (unix ms)
--
-- Returns 1 when recorded, 0 when an unchecked retry was found, -1 when the run does not exist.
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local checked = {}
for id in string.gmatch(ARGV[1], '%S+') do checked[id] = true end
local cur = redis.call('HGET', KEYS[1], 'retried_by') or ''
for word in string.gmatch(cur, '%S+') do
  local id = string.match(word, '^([^@]+)')
  if id == ARGV[2] then return 1 end
  if not checked[id] then return 0 end
end
local mark = ARGV[2] .. '@' .. ARGV[3]
if cur ~= '' then mark = cur .. ' ' .. mark end
redis.call('HSET', KEYS[1], 'retried_by', mark)
return 1
