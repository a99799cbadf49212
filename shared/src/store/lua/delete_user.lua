-- Removes a directory user, every live code and every passkey of it. The
-- sequence stays, so that a user created again with the same id keeps
-- counting upwards. An email still waiting to go out is marked revoked at
-- once, so its status says so before a worker picks the job up (and drops
-- it, since the code is gone).
--
-- KEYS: 1 user, 2 user_codes, 3 passkeys, 4 ceremonies in progress
-- ARGV: 1 organizations the caller may write ("*" or newline separated),
--       2 now (ms), 3 the shard's key base ("prefix:{shard}:"),
--       4 user id, 5 status retention after the code's expiry (ms)
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

local now = tonumber(ARGV[2])
for _, code_id in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  local code_key = ARGV[3] .. 'code:' .. code_id
  local delivery_key = ARGV[3] .. 'delivery:' .. code_id
  local job, expires = unpack(redis.call('HMGET', code_key, 'job', 'exp'))
  local state = redis.call('HGET', delivery_key, 'state')
  if job and (not state or state == 'queued' or state == 'retrying') then
    redis.call('HSET', delivery_key, 'state', 'revoked', 'job', job, 'updated', now,
      'user', ARGV[4])
    redis.call('HDEL', delivery_key, 'lease', 'next_at')
    local ttl = tonumber(ARGV[5])
    if expires and tonumber(expires) > now then
      ttl = ttl + tonumber(expires) - now
    end
    redis.call('PEXPIRE', delivery_key, ttl)
  end
  redis.call('DEL', code_key)
end
for _, webauthn_id in ipairs(redis.call('ZRANGE', KEYS[4], 0, -1)) do
  redis.call('DEL', ARGV[3] .. 'ceremony:' .. webauthn_id)
end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])

local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('HDEL', KEYS[1], 'org', 'email', 'name', 'lang', 'handle')
redis.call('HSET', KEYS[1], 'changed', ARGV[2])

return {'OK', seq, org}
