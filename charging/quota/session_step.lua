-- One step of an online session in the quota store, atomically: a repeat gets the first
-- answer; otherwise the request is checked against the session, what it used is settled
-- (the rest of the last grant goes back to the free slices), a new grant is taken out of
-- every limit and the allowances (all of it, or nothing changes); the answer is kept for
-- repeats and the settlement appended to the log for the database.
--
-- KEYS: session, answer, log, expiry, then the grant's limit counters, then its bucket
--       counters in draw order; or, for a start that reads the line's profile here, the
--       profile and the epoch (see below).
-- ARGV: op (start|update|terminate|expire|handover), request number, used, requested,
--       number of limits, number of buckets, final (1: grant what there is), now (epoch s),
--       validity (s), session meta (JSON, at start), answered at (ISO),
--       seconds to keep an ended session and an answer, and 'profile' for a start whose
--       counters come from the line's profile in the store.
--
-- A start reads the profile here to save the caller a round trip to read it first. The
-- counters it names are keys this script is not given: fine on one Redis, which this store
-- is (a company's pools and limits all live on it). When the store has no profile of the
-- current epoch, or one that says the line is charged elsewhere, the answer is 'profile':
-- the caller reads it (building it from the database) and runs the step with its counters.
-- Units are whole numbers below 2^53, written back with %d (never in exponent form).

local session, answer_key, log, expiry = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local op = ARGV[1]
local number = tonumber(ARGV[2])
local used = tonumber(ARGV[3])
local requested = tonumber(ARGV[4])
local n_limits, n_buckets = tonumber(ARGV[5]), tonumber(ARGV[6])
local final = ARGV[7] == '1'
local now = tonumber(ARGV[8])
local validity = tonumber(ARGV[9])
local at = ARGV[11]
local keep = tonumber(ARGV[12])
local meta_given = ARGV[10]
local counters = {}  -- the limits' counters, then the allowances'
for j = 1, n_limits + n_buckets do counters[j] = KEYS[4 + j] end

local function int(n) return string.format('%d', n) end

if op ~= 'expire' then
  local first = redis.call('GET', answer_key)
  if first then return {'answer', first} end
end

local state = redis.call('HMGET', session, 'status', 'rn', 'granted', 'holds', 'limits', 'used', 'exp', 'meta', 'gat')
local status = state[1]
local last_number, granted, used_before = 0, 0, 0
local holds, limits = {}, {}
if op == 'start' then
  if status == 'db' then return {'database'} end
  if status then return {'error', 'exists'} end
else
  if not status then return {'unknown'} end
  if status == 'db' then return {'database'} end
  last_number, granted, used_before = tonumber(state[2]), tonumber(state[3]), tonumber(state[6])
  holds, limits = cjson.decode(state[4]), cjson.decode(state[5])
  if op == 'expire' then
    if status ~= 'open' or tonumber(state[7]) > now then return {'skip'} end
    used = 0
  else
    if status == 'terminated' then return {'error', 'closed', status} end
    if number ~= last_number + 1 then return {'error', 'out_of_order', int(last_number + 1)} end
    if status == 'expired' then return {'late'} end
    if used > granted then return {'error', 'exceeds', int(granted)} end
  end
end

if ARGV[13] == 'profile' then
  local text = redis.call('GET', KEYS[5])
  if not text then return {'profile'} end
  local profile = cjson.decode(text)
  local current = tostring(profile.epoch) == (redis.call('GET', KEYS[6]) or '0')
  local complete = type(profile.limit_keys) == 'table' and type(profile.bucket_keys) == 'table'
  if profile.mode ~= 'quota' or not current or not complete then
    return {'profile'}
  end
  n_limits, n_buckets, counters = #profile.limit_keys, #profile.bucket_keys, {}
  for _, key in ipairs(profile.limit_keys) do counters[#counters + 1] = key end
  for _, key in ipairs(profile.bucket_keys) do counters[#counters + 1] = key end
  local meta = cjson.decode(meta_given)
  meta.line, meta.nodes = profile.line_id, profile.node_ids
  meta_given = cjson.encode(meta)
end

-- Settle: what was used comes out of the holds in their order; the rest goes back.
local back, takes, left = {}, {}, used
for _, hold in ipairs(holds) do
  local units = tonumber(hold[2])
  local take = math.min(units, left)
  left = left - take
  back[hold[1]] = (back[hold[1]] or 0) + units - take
  if take > 0 then takes[#takes + 1] = {hold[1], int(take)} end
end
local limits_used = {}
for _, key in ipairs(limits) do
  back[key] = (back[key] or 0) + granted - used
  if used > 0 then limits_used[#limits_used + 1] = {key, int(used)} end
end
local function free(key) return tonumber(redis.call('GET', key) or '0') + (back[key] or 0) end

-- Grant: every limit on the path allows it, and the allowances cover it.
local grant, action, new_holds, new_limits = 0, '', {}, {}
if requested > 0 and (op == 'start' or op == 'update') then
  local allowed, short = requested, {}
  for j = 1, n_limits do
    local key = counters[j]
    local f = free(key)
    if f < requested then short[#short + 1] = key end
    if f < allowed then allowed = math.max(f, 0) end
  end
  local got = 0
  for j = 1, n_buckets do
    local key = counters[n_limits + j]
    local take = math.min(free(key), allowed - got)
    if take > 0 then
      new_holds[#new_holds + 1] = {key, int(take)}
      got = got + take
    end
  end
  if not final then
    if got < requested then
      for j = 1, n_buckets do
        local key = counters[n_limits + j]
        if free(key) < requested then short[#short + 1] = key end
      end
    end
    if #short > 0 then
      table.insert(short, 1, 'short')
      return short
    end
  end
  if got < allowed then return {'money'} end
  grant = allowed
  if grant < requested then action = 'terminate' end
  if grant > 0 then
    for j = 1, n_limits do new_limits[#new_limits + 1] = counters[j] end
  else
    new_holds = {}
  end
end

for key, units in pairs(back) do
  if units ~= 0 then redis.call('INCRBY', key, int(units)) end
end
for _, hold in ipairs(new_holds) do redis.call('DECRBY', hold[1], hold[2]) end
for _, key in ipairs(new_limits) do redis.call('DECRBY', key, int(grant)) end

local new_status = 'open'
if op == 'terminate' then new_status = 'terminated'
elseif op == 'expire' then new_status = 'expired'
elseif op == 'handover' then new_status = 'db' end
local meta = state[8] or meta_given
local total = used_before + used
if op == 'expire' then number = last_number end
local granted_at = state[9] or at
if grant > 0 then granted_at = at end
local fields = {
  'status', new_status, 'rn', int(number), 'used', int(total), 'granted', int(grant),
  'holds', cjson.encode(new_holds), 'limits', cjson.encode(new_limits),
  'exp', string.format('%.3f', now + validity), 'meta', meta, 'gat', granted_at,
}
redis.call('HSET', session, unpack(fields))
if new_status == 'open' then
  redis.call('ZADD', expiry, string.format('%.3f', now + validity), session)
else
  redis.call('ZREM', expiry, session)
  redis.call('EXPIRE', session, keep)
end

-- The answer: status|granted|final unit action|used|used from allowances|answered at|number
local answer = ''
if op ~= 'expire' and op ~= 'handover' then
  answer = table.concat({new_status, int(grant), action, int(used), int(used), at, int(number)}, '|')
  redis.call('SET', answer_key, answer, 'EX', keep)
end
local entry = {
  op = op, meta = meta, at = at, status = new_status,
  number = int(number), total = int(total), takes = takes, limits = limits_used,
  granted = int(granted), granted_at = state[9] or '',
}
if op ~= 'start' then  -- a start moves no counter: the database learns of it when it settles
  redis.call('XADD', log, '*', 'e', cjson.encode(entry))
end
if op == 'handover' then return {'handover', int(total), int(used), meta} end
if op == 'expire' then return {'expired'} end
return {'answer', answer}
