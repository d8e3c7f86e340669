-- lib.lua: helpers the scripts put before their own text.
local function twice(x) return 2 * x end
