-- Removes a directory user, every live code and every passkey of it. The
-- sequence stays, so that a user created again with the same id keeps
-- counting upwards.
--
-- KEYS: 1 user, 2 user_codes, 3 passkeys, 4 ceremonies in progress
-- ARGV: 1 organizations the caller may write ("*" or newline separated),
--       2 now (ms), 3 the shard's key base ("prefix:{shard}:")
-- Returns {"OK", sequence, organization} | {"NOTFOUND"} | {"DENIED"}
--
-- The code keys are built here rather than passed in, because their ids are
-- only known inside the script. They share the user's hash tag, so on a
-- cluster they live in the same slot as the declared keys.

local org = redis.call('HGET', KEYS[1], 'org')
if not org then
  return {'NOTFOUND'}
end

if ARGV[1] ~= '*' then
  local allowed = false
  for candidate in string.gmatch(ARGV[1], '[^\n]+') do
    if candidate == org then
      allowed = true
      break
    end
  end
  if not allowed then
    return {'DENIED'}
  end
end

for _, code_id in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  redis.call('DEL', ARGV[3] .. 'code:' .. code_id)
end
for _, webauthn_id in ipairs(redis.call('ZRANGE', KEYS[4], 0, -1)) do
  redis.call('DEL', ARGV[3] .. 'ceremony:' .. webauthn_id)
end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])

local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('HDEL', KEYS[1], 'org', 'email', 'name', 'lang', 'handle')
redis.call('HSET', KEYS[1], 'changed', ARGV[2])

return {'OK', seq, org}
