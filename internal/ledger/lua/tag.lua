-- tag.lua: add one tag to a recipient's tags in a run (on_reply rules' tag:). A recipient keeps
-- every tag a rule gave them, once each, sorted and joined by commas (a tag holds no comma:
-- campaigns allows lower-case letters, digits, '_' and '-'). Adding a tag already there, as a
-- retried webhook does, changes nothing.
--
-- KEYS[1] the run's tags hash: recipient -> tags
-- ARGV[1] recipient
-- ARGV[2] tag
--
-- Returns 1 when the tag was added, 0 when the recipient had it already.
local v = redis.call('HGET', KEYS[1], ARGV[1])
local tags = {}
if v and v ~= '' then
  for t in string.gmatch(v, '[^,]+') do
    if t == ARGV[2] then return 0 end
    tags[#tags + 1] = t
  end
end
tags[#tags + 1] = ARGV[2]
table.sort(tags)
redis.call('HSET', KEYS[1], ARGV[1], table.concat(tags, ','))
return 1
