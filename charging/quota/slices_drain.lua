-- Takes the free part of each counter's slice out of the store (to hand it back to the
-- database): sets each to zero and returns what it held, so no grant can take it meanwhile.
-- KEYS: counters. Returns their free units, in order.
local out = {}
for i, key in ipairs(KEYS) do
  local free = redis.call('GET', key)
  out[i] = 0
  if free and tonumber(free) > 0 then
    out[i] = tonumber(free)
    redis.call('SET', key, '0')
  end
end
return out
