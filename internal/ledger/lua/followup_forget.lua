-- followup_forget.lua: take a follow-up run out of the sweep's registry, unless an entry was
-- created in it since the cutoff. The caller has seen the run's outbox empty; a receiver that
-- creates an entry registers the run again first (a newer score), so an entry created after
-- that look either keeps the run here or brings it back.
--
-- KEYS[1] the registry of follow-up runs: run -> last entry creation (unix ms)
-- ARGV[1] follow-up run id
-- ARGV[2] cutoff (unix ms): the run stays when it was registered at or after it
--
-- Returns 1 when the run was taken out, 0 when it stays.
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if s and tonumber(s) < tonumber(ARGV[2]) then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 1
end
return 0
