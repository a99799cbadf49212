-- Creates a registration code, and for sendLink its outbox job, in one step.
--
-- KEYS: 1 user, 2 code, 3 delivery, 4 outbox, 5 user_codes, 6 user_links
-- ARGV: 1 user id, 2 caller subject, 3 organizations the caller may act in
--       ("*" for all, else separated by newlines), 4 code id, 5 code hash,
--       6 now (ms), 7 validity (ms), 8 job payload ("" for returnCode),
--       9 status retention after expiry (ms; also how long the code record
--       is kept after it expired), 10 job id,
--       11 links allowed per user and window (0: no limit), 12 window (ms)
-- Returns {"OK", sequence, organization} | {"NOTFOUND"} | {"DENIED"}
--       | {"LIMITED", ms until the next link is allowed}

local org = redis.call('HGET', KEYS[1], 'org')
if not org then
  return {'NOTFOUND'}
end

if ARGV[2] ~= ARGV[1] and ARGV[3] ~= '*' then
  local allowed = false
  for candidate in string.gmatch(ARGV[3], '[^\n]+') do
    if candidate == org then
      allowed = true
      break
    end
  end
  if not allowed then
    return {'DENIED'}
  end
end

local now = tonumber(ARGV[6])
local ttl = tonumber(ARGV[7])
local expires = now + ttl

-- A sliding window over the user's recent links: a resend flood stops
-- here, whichever API process it reaches.
local limit = tonumber(ARGV[11])
local window = tonumber(ARGV[12])
if limit > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', now - window)
  if redis.call('ZCARD', KEYS[6]) >= limit then
    local oldest = redis.call('ZRANGE', KEYS[6], 0, 0, 'WITHSCORES')
    return {'LIMITED', tonumber(oldest[2]) + window - now}
  end
  redis.call('ZADD', KEYS[6], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[6], window)
end

local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('HSET', KEYS[1], 'changed', ARGV[6])

-- The record outlives the code by the status retention: redeeming tells an
-- expired code from an unknown one by its 'exp', and scripts that read it
-- compare 'exp' with the clock instead of relying on the key's TTL.
-- For sendLink the record also names its job: until a worker claims it (and
-- writes the delivery status, KEYS[3]), the status reads "queued" from here.
-- That spares the request path a key of its own.
if ARGV[8] ~= '' then
  redis.call('HSET', KEYS[2], 'user', ARGV[1], 'org', org, 'hash', ARGV[5],
    'exp', expires, 'fails', 0, 'job', ARGV[10], 'created', ARGV[6])
else
  redis.call('HSET', KEYS[2], 'user', ARGV[1], 'org', org, 'hash', ARGV[5],
    'exp', expires, 'fails', 0)
end
redis.call('PEXPIRE', KEYS[2], ttl + tonumber(ARGV[9]))

-- The newest code expires last, so its expiry is the index's.
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now)
redis.call('ZADD', KEYS[5], expires, ARGV[4])
redis.call('PEXPIRE', KEYS[5], ttl)

if ARGV[8] ~= '' then
  redis.call('XADD', KEYS[4], '*', 'job', ARGV[8])
end

return {'OK', seq, org}
