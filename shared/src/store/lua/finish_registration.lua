-- Completes a verified passkey registration: stores the passkey, counts the
-- change in the user's sequence, consumes the code the ceremony was started
-- with and ends the ceremony, all at once. A code consumed by another
-- ceremony voids this one; a code that expired while this ceremony ran
-- does not, since it was valid when the person started.
--
-- KEYS: 1 ceremony, 2 user, 3 passkeys, 4 user_codes, 5 code (only when the
--       ceremony was started with a code)
-- ARGV: 1 user id, 2 code id ("" without a code), 3 credential id,
--       4 passkey record (JSON), 5 now (ms), 6 retention of a used code (ms)
-- Returns {"OK", sequence, organization} | {"NOCEREMONY"} | {"NOUSER"}
--       | {"DUPLICATE"} | {code state: "used", "blocked" or "unknown"}

local owner, code_id = unpack(redis.call('HMGET', KEYS[1], 'user', 'code'))
if not owner or owner ~= ARGV[1] or code_id ~= ARGV[2] then
  return {'NOCEREMONY'}
end

local org = redis.call('HGET', KEYS[2], 'org')
if not org then
  redis.call('DEL', KEYS[1])
  return {'NOUSER'}
end

if KEYS[5] then
  local code_owner, hash, used, blocked = unpack(redis.call('HMGET', KEYS[5],
    'user', 'hash', 'used', 'blocked'))
  if not code_owner or code_owner ~= ARGV[1] then
    redis.call('DEL', KEYS[1])
    return {'unknown'}
  end
  if used then
    redis.call('DEL', KEYS[1])
    return {'used'}
  end
  if blocked or not hash then
    redis.call('DEL', KEYS[1])
    return {'blocked'}
  end
end

if redis.call('HEXISTS', KEYS[3], ARGV[3]) == 1 then
  redis.call('DEL', KEYS[1])
  return {'DUPLICATE'}
end

redis.call('HSET', KEYS[3], ARGV[3], ARGV[4])
local seq = redis.call('HINCRBY', KEYS[2], 'seq', 1)
redis.call('HSET', KEYS[2], 'changed', ARGV[5])

if KEYS[5] then
  redis.call('HDEL', KEYS[5], 'hash')
  redis.call('HSET', KEYS[5], 'used', ARGV[5])
  redis.call('PEXPIRE', KEYS[5], ARGV[6])
  redis.call('ZREM', KEYS[4], ARGV[2])
end
redis.call('DEL', KEYS[1])

return {'OK', seq, org}
