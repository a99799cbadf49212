-- Creates or replaces a directory user and counts the change in its sequence.
--
-- KEYS: 1 user
-- ARGV: 1 organization, 2 email, 3 display name, 4 language, 5 now (ms),
--       6 organizations the caller may write ("*" or newline separated)
-- Returns {"CREATED"|"UPDATED", sequence} | {"DENIED"}

local function may_write(org)
  if ARGV[6] == '*' then
    return true
  end
  for candidate in string.gmatch(ARGV[6], '[^\n]+') do
    if candidate == org then
      return true
    end
  end
  return false
end

local old = redis.call('HGET', KEYS[1], 'org')
if not may_write(ARGV[1]) or (old and not may_write(old)) then
  return {'DENIED'}
end

local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('HSET', KEYS[1], 'org', ARGV[1], 'email', ARGV[2], 'name', ARGV[3],
  'lang', ARGV[4], 'changed', ARGV[5])

if old then
  return {'UPDATED', seq}
end
return {'CREATED', seq}
