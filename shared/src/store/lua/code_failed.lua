-- Counts a wrong code against its record. The last allowed failure blocks
-- the code for good: its hash is dropped, so nothing can match it again,
-- and a marker stays for the status retention to tell why.
--
-- KEYS: 1 code, 2 user_codes
-- ARGV: 1 user id, 2 code id, 3 failures allowed, 4 now (ms),
--       5 retention (ms)
-- Returns {state, failed attempts}: "counted" or "blocked", or the state
-- that made counting moot ("used", "blocked", "expired", "unknown").

local owner, hash, exp, used, blocked = unpack(redis.call('HMGET', KEYS[1],
  'user', 'hash', 'exp', 'used', 'blocked'))
if not owner or owner ~= ARGV[1] or not exp then
  return {'unknown', 0}
end
if used then
  return {'used', 0}
end
if blocked or not hash then
  return {'blocked', 0}
end
if tonumber(ARGV[4]) >= tonumber(exp) then
  return {'expired', 0}
end

local fails = redis.call('HINCRBY', KEYS[1], 'fails', 1)
if fails < tonumber(ARGV[3]) then
  return {'counted', fails}
end

redis.call('HDEL', KEYS[1], 'hash')
redis.call('HSET', KEYS[1], 'blocked', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('ZREM', KEYS[2], ARGV[2])
return {'blocked', fails}
