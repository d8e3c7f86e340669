-- submit.lua: store a new version of a campaign unless its content is unchanged.
--
-- KEYS[1] the campaign's hash (version, sha, path, submitted, removed)
-- KEYS[2] the new version's hash (version ARGV[1])
-- ARGV[1] the version to create (current + 1)
-- ARGV[2] content hash
-- ARGV[3] YAML text
-- ARGV[4] path
-- ARGV[5] now (unix ms)
--
-- Returns {version, created, restored}: {current version, 0, restored} when its content hash
-- equals ARGV[2]; {ARGV[1], 1, restored} when the new version was stored; restored is 1 when
-- the campaign was marked removed (campaign rm), which the submit clears: it is scheduled
-- again. {-1, 0, 0} when the current version is no longer ARGV[1] - 1 (a concurrent submit).
local cur = redis.call('HMGET', KEYS[1], 'version', 'sha', 'removed')
local v = tonumber(cur[1]) or 0
local restored = 0
if cur[3] then restored = 1 end
if cur[2] == ARGV[2] then
  redis.call('HDEL', KEYS[1], 'removed')
  return {v, 0, restored}
end
if v ~= tonumber(ARGV[1]) - 1 then return {-1, 0, 0} end
redis.call('HSET', KEYS[2], 'yaml', ARGV[3], 'path', ARGV[4], 'sha', ARGV[2], 'submitted', ARGV[5])
redis.call('HSET', KEYS[1], 'version', ARGV[1], 'sha', ARGV[2], 'path', ARGV[4], 'submitted', ARGV[5])
redis.call('HDEL', KEYS[1], 'removed')
return {tonumber(ARGV[1]), 1, restored}
