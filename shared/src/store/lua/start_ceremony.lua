-- Records a passkey registration in progress. A code it was started with
-- must still be live here: a code used or blocked since it was checked
-- voids the start. Starting never changes the code.
--
-- KEYS: 1 ceremony, 2 user, 3 code (only with a code)
-- ARGV: 1 user id, 2 WebAuthn state (JSON), 3 ceremony lifetime (ms),
--       4 now (ms), 5 code id ("" without a code), 6 caller subject
--       ("" with a code)
-- Returns {"OK", sequence, changed, organization} | {"NOUSER"}
--       | {code state} when the code is no longer live

local now = tonumber(ARGV[4])

local org, seq, changed = unpack(redis.call('HMGET', KEYS[2], 'org', 'seq', 'changed'))
if not org then
  return {'NOUSER'}
end

if KEYS[3] then
  local owner, hash, exp, used, blocked = unpack(redis.call('HMGET', KEYS[3],
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

redis.call('HSET', KEYS[1], 'user', ARGV[1], 'state', ARGV[2], 'code', ARGV[5],
  'caller', ARGV[6], 'created', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[3])

return {'OK', tonumber(seq or '0'), tonumber(changed or '0'), org}
