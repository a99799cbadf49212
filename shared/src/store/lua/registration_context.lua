-- Everything the start of a passkey registration needs, in one read: the
-- user, its WebAuthn user handle (made on first use), the credential ids of
-- its passkeys for the exclude list and, when the registration comes with a
-- code, the code's state and keyed hash. The caller compares the hash.
--
-- KEYS: 1 user, 2 passkeys, 3 code (only when a code was given)
-- ARGV: 1 user id, 2 now (ms), 3 a fresh user handle, kept if the user has
--       none yet
-- Returns {"NOUSER"}
--       | {"OK", org, email, name, handle, sequence, changed, code state,
--          code hash, failed attempts, credential id, ...}
-- The code state is "none" without a code, else "live", "used", "blocked",
-- "expired" or "unknown"; the hash is "" unless the code is live.

local function code_state(key, user, now)
  local owner, hash, exp, used, blocked = unpack(redis.call('HMGET', key,
    'user', 'hash', 'exp', 'used', 'blocked'))
  if not owner or owner ~= user or not exp then
    return 'unknown'
  end
  if used then
    return 'used'
  end
  if blocked or not hash then
    return 'blocked'
  end
  if now >= tonumber(exp) then
    return 'expired'
  end
  return 'live', hash
end

local org, email, name, handle, seq, changed = unpack(redis.call('HMGET', KEYS[1],
  'org', 'email', 'name', 'handle', 'seq', 'changed'))
if not org then
  return {'NOUSER'}
end
if not handle then
  redis.call('HSET', KEYS[1], 'handle', ARGV[3])
  handle = ARGV[3]
end

local state, hash, fails = 'none', '', 0
if KEYS[3] then
  state, hash = code_state(KEYS[3], ARGV[1], tonumber(ARGV[2]))
  hash = hash or ''
  fails = tonumber(redis.call('HGET', KEYS[3], 'fails') or '0')
end

local reply = {'OK', org, email or '', name or '', handle, tonumber(seq or '0'),
  tonumber(changed or '0'), state, hash, fails}
for _, id in ipairs(redis.call('HKEYS', KEYS[2])) do
  reply[#reply + 1] = id
end
return reply
