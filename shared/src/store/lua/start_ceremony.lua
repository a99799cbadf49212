-- Records a passkey registration in progress. A code it was started with
-- must still be live here: a code used or blocked since it was checked
-- voids the start. Starting never changes the code.
--
-- KEYS: 1 ceremony, 2 user, 3 the user's live ceremonies (sorted set by
--       expiry), 4 code (only with a code)
-- ARGV: 1 user id, 2 WebAuthn state (JSON), 3 ceremony lifetime (ms),
--       4 now (ms), 5 code id ("" without a code), 6 caller subject
--       ("" with a code), 7 ceremony id, 8 live ceremonies kept per user,
--       9 the shard's key base ("prefix:{shard}:")
--
-- A user keeps at most ARGV[8] ceremonies: a new start past that ends the
-- oldest, so one link (or a flood of starts) cannot fill Redis. The
-- ceremony keys are built here from the shard's base; they share the
-- user's hash tag, so on a cluster they sit in the declared keys' slot.
-- Returns {"OK", sequence, changed, organization} | {"NOUSER"}
--       | {code state} when the code is no longer live

local now = tonumber(ARGV[4])

local org, seq, changed = unpack(redis.call('HMGET', KEYS[2], 'org', 'seq', 'changed'))
if not org then
  return {'NOUSER'}
end

if KEYS[4] then
  local owner, hash, exp, used, blocked = unpack(redis.call('HMGET', KEYS[4],
    'user', 'hash', 'exp', 'used', 'blocked'))
  if not owner or owner ~= ARGV[1] or not exp then
    return {'unknown'}
  end
  if used then
    return {'used'}
  end
  if blocked or not hash then
    return {'blocked'}
  end
  if now >= tonumber(exp) then
    return {'expired'}
  end
end

local lifetime = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
local excess = redis.call('ZCARD', KEYS[3]) - tonumber(ARGV[8]) + 1
if excess > 0 then
  for _, old in ipairs(redis.call('ZPOPMIN', KEYS[3], excess)) do
    redis.call('DEL', ARGV[9] .. 'ceremony:' .. old)
  end
end

redis.call('HSET', KEYS[1], 'user', ARGV[1], 'state', ARGV[2], 'code', ARGV[5],
  'caller', ARGV[6], 'created', ARGV[4])
redis.call('PEXPIRE', KEYS[1], lifetime)
redis.call('ZADD', KEYS[3], now + lifetime, ARGV[7])
redis.call('PEXPIRE', KEYS[3], lifetime)

return {'OK', tonumber(seq or '0'), tonumber(changed or '0'), org}
