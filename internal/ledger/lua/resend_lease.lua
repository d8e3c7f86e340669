-- resend_lease.lua: lease the due members of a run's resend set to one sweeper.
--
-- A member is leased by moving its score to the end of the lease, in the same step that reads
-- it, so two sweepers never take the same member; a sweeper that dies before it has enqueued
-- the resend leaves the member to come due again when the lease ends.
--
-- KEYS[1] run hash
-- KEYS[2] the run's resend set
-- KEYS[3] the run's counts
-- ARGV[1] now (unix ms)
-- ARGV[2] end of the lease (unix ms)
-- ARGV[3] most members to take
-- ARGV[4] '1' for a follow-up run (RUN~RULE), which never finishes; else '0'
--
-- Returns {gone, member...}: gone is 1 when the run needs no more sweeping (it no longer
-- exists, or it has finished and nothing waits; a follow-up run, once nothing waits and none
-- of its entries is queued or being sent, so none can become unknown until a new entry comes),
-- else 0; then the members leased: those due by now, or every member of a cancelled run (they
-- are dropped, not sent).
local m = redis.call('HMGET', KEYS[1], 'status', 'finished')
local waiting = redis.call('ZCARD', KEYS[2])
if not m[1] or (m[2] and waiting == 0) then return {1} end
if ARGV[4] == '1' and waiting == 0 then
  local c = redis.call('HMGET', KEYS[3], 'queued', 'submitting')
  if (tonumber(c[1]) or 0) <= 0 and (tonumber(c[2]) or 0) <= 0 then return {1} end
end
if waiting == 0 then return {0} end
local upto = ARGV[1]
if m[1] == 'cancelled' then upto = '+inf' end
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', upto, 'LIMIT', 0, tonumber(ARGV[3]))
local out = {0}
for _, member in ipairs(due) do
  redis.call('ZADD', KEYS[2], 'XX', ARGV[2], member)
  out[#out + 1] = member
end
return out
