-- Claims a send-link job for one worker before it talks to SMTP.
--
-- KEYS: 1 code, 2 delivery, 3 user
-- ARGV: 1 job id, 2 now (ms), 3 lease (ms), 4 attempt, 5 the job's expiry (ms),
--       6 status retention after expiry (ms), 7 user id (the status names
--       its user, so that it is shown only under that user)
-- Returns
--   {"CLAIMED", organization, email, display name, language}
--   {"DUPLICATE"}          the email was already sent, or the job already
--                          failed for good (a replay sets it back to queued)
--   {"BUSY", lease end}    another worker holds a live claim
--   {"GONE", reason}       "expired" or "revoked"; nothing to send

local now = tonumber(ARGV[2])
local job_expiry = tonumber(ARGV[5])
local retention = tonumber(ARGV[6])

local function record(state)
  redis.call('HSET', KEYS[2], 'state', state, 'job', ARGV[1], 'updated', now, 'user', ARGV[7])
  redis.call('HDEL', KEYS[2], 'lease', 'next_at')
  local ttl = job_expiry - now + retention
  if ttl < retention then
    ttl = retention
  end
  redis.call('PEXPIRE', KEYS[2], ttl)
end

local state, lease = unpack(redis.call('HMGET', KEYS[2], 'state', 'lease'))
if state == 'sent' or state == 'failed' then
  return {'DUPLICATE'}
end
if state == 'sending' and lease and tonumber(lease) > now then
  return {'BUSY', tonumber(lease)}
end

local expires, org, used, blocked =
  unpack(redis.call('HMGET', KEYS[1], 'exp', 'org', 'used', 'blocked'))
if not expires then
  if now >= job_expiry then
    record('expired')
    return {'GONE', 'expired'}
  end
  record('revoked')
  return {'GONE', 'revoked'}
end
if now >= tonumber(expires) then
  record('expired')
  return {'GONE', 'expired'}
end
-- Redeemed already (by a copy of this link) or blocked after wrong tries:
-- an email would only carry a dead link.
if used or blocked then
  record('revoked')
  return {'GONE', 'revoked'}
end

local email, name, lang = unpack(redis.call('HMGET', KEYS[3], 'email', 'name', 'lang'))
if not email then
  record('revoked')
  return {'GONE', 'revoked'}
end

redis.call('HSET', KEYS[2], 'state', 'sending', 'job', ARGV[1], 'attempt', ARGV[4],
  'lease', now + tonumber(ARGV[3]), 'updated', now, 'user', ARGV[7])
redis.call('HDEL', KEYS[2], 'next_at', 'reason')
redis.call('PEXPIRE', KEYS[2], tonumber(expires) - now + retention)

return {'CLAIMED', org, email, name or '', lang or 'en'}
