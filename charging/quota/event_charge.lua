-- A single event (an SMS) charged in the quota store, whole or not at all: a repeat gets the
-- first answer; otherwise the units come out of every limit on the path and the allowances
-- in draw order, the answer is kept for repeats and the charge appended to the log.
--
-- KEYS: answer, log, then the limit counters, then the bucket counters in draw order.
-- ARGV: units, number of limits, number of buckets, final (1: the database had no more),
--       the answer (JSON), the log entry's meta (JSON), charged at (ISO), seconds to keep
--       the answer.
-- Returns {'answer', answer}, {'short', counters...} (refill them and run again), {'money'}
-- (the allowances cannot cover it: the database charges it) or {'database'} (it did).

local answer_key, log = KEYS[1], KEYS[2]
local units = tonumber(ARGV[1])
local n_limits, n_buckets = tonumber(ARGV[2]), tonumber(ARGV[3])
local final = ARGV[4] == '1'
local answer, meta, at, keep = ARGV[5], ARGV[6], ARGV[7], tonumber(ARGV[8])

local function int(n) return string.format('%d', n) end

local first = redis.call('GET', answer_key)
if first == 'database' then return {'database'} end
if first then return {'answer', first} end

local short, takes, got = {}, {}, 0
for j = 1, n_limits do
  local key = KEYS[2 + j]
  if tonumber(redis.call('GET', key) or '0') < units then short[#short + 1] = key end
end
for j = 1, n_buckets do
  local key = KEYS[2 + n_limits + j]
  local take = math.min(tonumber(redis.call('GET', key) or '0'), units - got)
  if take > 0 then
    takes[#takes + 1] = {key, int(take)}
    got = got + take
  end
end
if #short > 0 or got < units then
  if final then return {'money'} end
  if got < units then
    for j = 1, n_buckets do short[#short + 1] = KEYS[2 + n_limits + j] end
  end
  table.insert(short, 1, 'short')
  return short
end

local limits = {}
for j = 1, n_limits do
  redis.call('DECRBY', KEYS[2 + j], int(units))
  limits[#limits + 1] = {KEYS[2 + j], int(units)}
end
for _, take in ipairs(takes) do redis.call('DECRBY', take[1], take[2]) end
redis.call('SET', answer_key, answer, 'EX', keep)
redis.call('XADD', log, '*', 'e', cjson.encode({
  op = 'event', meta = meta, at = at, status = 'charged', takes = takes, limits = limits, answer = answer,
}))
return {'answer', answer}
