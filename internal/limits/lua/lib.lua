-- lib.lua: the functions the limits scripts share; prepended to reserve.lua, hold.lua and
-- throttled.lua (it is not a script of its own, and defines no KEYS or ARGV).
--
--   factor_at(f, at, nowms, every, step)  the adaptive factor at nowms (unix ms) of a sender
--                                         whose stored factor is f and whose recovery starts
--                                         at at (ms): f plus step for every whole every ms
--                                         since at (none before it), at most 1; 1 when f is
--                                         not a positive number
--   tolerance(tol, factor)                a limit's burst tolerance (µs) at factor: the factor
--                                         divides it, as it divides the emission interval
local function factor_at(f, at, nowms, every, step)
  f = tonumber(f)
  if not f or f <= 0 then return 1 end
  local elapsed = math.max(0, nowms - (tonumber(at) or nowms))
  f = f + math.floor(elapsed / every) * step
  if f > 1 then f = 1 end
  return f
end
local function tolerance(tol, factor)
  if factor < 1 then return tol / factor end
  return tol
end
