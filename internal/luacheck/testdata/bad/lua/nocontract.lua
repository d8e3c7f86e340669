-- nocontract.lua: says nothing of its keys.
return redis.call('GET', 'x')
