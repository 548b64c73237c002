"""Lua scripts that make each multi-key step of `RedisStore` atomic.

Each script declares every key it touches in KEYS, and all of them share one hash
slot (see `redis_keys.py`), so every script runs on a Redis Cluster too; the one
exception, APPEND with a rate key, is used on a single server only.

A room's history is a stream whose entry ids are `0-<seq>`, so `seq` ranges map
directly onto XRANGE / XREVRANGE. The room's meta hash holds `seq` and `epoch`;
if either the hash or the stream was lost (flush, eviction), the room starts
over under a new epoch, which tells clients their old `seq` numbers are void.
"""

from __future__ import annotations

# Shared prologue: make sure the room has an epoch consistent with its history.
# KEYS[1] meta hash, KEYS[2] history stream; ARGV[1] epoch to use if a new one is needed.
_ENSURE_EPOCH = """
local function ensure_epoch(meta, log, fresh_epoch)
  local epoch = redis.call('HGET', meta, 'epoch')
  local seq = tonumber(redis.call('HGET', meta, 'seq') or '0')
  if (not epoch) or (seq > 0 and redis.call('EXISTS', log) == 0) then
    epoch = fresh_epoch
    seq = 0
    redis.call('DEL', log)
    redis.call('HSET', meta, 'epoch', epoch, 'seq', 0)
  end
  return epoch, seq
end
"""

# Shared: a sliding window in a sorted set, timed by Redis TIME so every instance counts
# alike. Returns 0 and counts `member` when there is room, else the ms until there is.
_RATE_WAIT = """
local function rate_wait(rate, limit, window, member)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('ZREMRANGEBYSCORE', rate, '-inf', now - window)
  if redis.call('ZCARD', rate) >= limit then
    local oldest = redis.call('ZRANGE', rate, 0, 0, 'WITHSCORES')
    return tonumber(oldest[2]) + window - now
  end
  redis.call('ZADD', rate, now, member)
  redis.call('PEXPIRE', rate, window)
  return 0
end
"""

# KEYS: meta, log, sanctions, then the dedupe key if ARGV[12] is '1', then the rate key if ARGV[5] > 0
# (only where one script may touch both slots: a single server; on a Cluster the rate
# window is checked first by RATE, in the user's slot)
# ARGV: fresh epoch, message JSON without seq (starts with '{'), history size,
#       dedupe ttl ms, rate limit (0: none), rate window ms, rate member,
#       announcement channel ('' for none), prefix, suffix (published around the message),
#       announcement command (PUBLISH or SPUBLISH), '1' when a dedupe key is given,
#       the sender's user id to check for a ban or mute ('' for none), now in ms
# Returns {0, seq} stored, {1, first message JSON} duplicate, {2, retry_after_ms} rate limited,
# {3, '0'} the sender is banned or muted.
APPEND = _ENSURE_EPOCH + _RATE_WAIT + """
local meta, log, sanctions = KEYS[1], KEYS[2], KEYS[3]
local dedupe, rate
local next_key = 4
if ARGV[12] == '1' then dedupe = KEYS[next_key]; next_key = next_key + 1 end
if tonumber(ARGV[5]) > 0 then rate = KEYS[next_key] end
if dedupe then
  local first = redis.call('GET', dedupe)
  if first then return {1, first} end
end
if ARGV[13] ~= '' then
  local now = tonumber(ARGV[14])
  for _, ends in ipairs(redis.call('HMGET', sanctions, 'ban:' .. ARGV[13], 'mute:' .. ARGV[13])) do
    if ends and (ends == '0' or tonumber(ends) > now) then return {3, '0'} end
  end
end
if rate then
  local wait = rate_wait(rate, tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7])
  if wait > 0 then return {2, tostring(wait)} end
end
local epoch, seq = ensure_epoch(meta, log, ARGV[1])
seq = seq + 1
local message = '{"seq":' .. seq .. ',' .. string.sub(ARGV[2], 2)
redis.call('XADD', log, 'MAXLEN', tonumber(ARGV[3]), '0-' .. seq, 'm', message)
redis.call('HSET', meta, 'seq', seq)
if dedupe then redis.call('SET', dedupe, message, 'PX', ARGV[4]) end
if ARGV[8] ~= '' then redis.call(ARGV[11], ARGV[8], ARGV[9] .. message .. ARGV[10]) end
return {0, seq}
"""

# KEYS: a user's rate window. ARGV: limit, window ms, member.
# Returns 0 when counted, else the ms to wait.
RATE = _RATE_WAIT + """
return rate_wait(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3])
"""

# KEYS: meta, log. ARGV: fresh epoch, since seq (-1: none), since epoch, latest.
# Returns {epoch, seq, recovered (0/1), entries...} with entries as XRANGE gives them.
RECOVER = _ENSURE_EPOCH + """
local meta, log = KEYS[1], KEYS[2]
local epoch, seq = ensure_epoch(meta, log, ARGV[1])
local since, latest = tonumber(ARGV[2]), tonumber(ARGV[4])
if since >= 0 and ARGV[3] == epoch and since <= seq then
  local first = redis.call('XRANGE', log, '-', '+', 'COUNT', 1)
  local oldest = seq + 1
  if #first > 0 then oldest = tonumber(string.sub(first[1][1], 3)) end
  if since + 1 >= oldest then
    return {epoch, seq, 1, redis.call('XRANGE', log, '(0-' .. since, '+')}
  end
end
local recent = {}
if latest > 0 then recent = redis.call('XREVRANGE', log, '+', '-', 'COUNT', latest) end
return {epoch, seq, 0, recent}
"""

# Presence of one room, all in its slot. KEYS: users hash, conns hash (user to count),
# this instance's entry set in the room, private room hash.
# ARGV: user id, user JSON, entry (`user\nconn`).
# Returns {user's first connection, public room} as 0/1; recording an entry twice is a no-op.
ADD_PRESENCE = """
if redis.call('SADD', KEYS[3], ARGV[3]) == 0 then return {0, 0} end
local public = 1 - redis.call('EXISTS', KEYS[4])
if redis.call('HINCRBY', KEYS[2], ARGV[1], 1) == 1 then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  return {1, public}
end
return {0, public}
"""

# Same KEYS as ADD_PRESENCE. ARGV: user id, entry.
# Returns {entry removed, user's last connection, public room} as 0/1.
REMOVE_PRESENCE = """
if redis.call('SREM', KEYS[3], ARGV[2]) == 0 then return {0, 0, 0} end
local public = 1 - redis.call('EXISTS', KEYS[4])
if redis.call('HINCRBY', KEYS[2], ARGV[1], -1) <= 0 then
  redis.call('HDEL', KEYS[2], ARGV[1])
  return {1, redis.call('HDEL', KEYS[1], ARGV[1]), public}
end
return {1, 0, public}
"""

# Remove every entry a dead instance held in one room, as one step, so that of two
# reapers only one finds them. KEYS as ADD_PRESENCE, with the dead instance's entry set.
# Returns {public room (0/1), user JSON...} for the users thereby left with no connection.
REAP_ROOM = """
local left = {1 - redis.call('EXISTS', KEYS[4])}
for _, entry in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  local user_id = string.match(entry, '^([^\\n]*)\\n')
  if redis.call('HINCRBY', KEYS[2], user_id, -1) <= 0 then
    redis.call('HDEL', KEYS[2], user_id)
    local user = redis.call('HGET', KEYS[1], user_id)
    if user and redis.call('HDEL', KEYS[1], user_id) == 1 then table.insert(left, user) end
  end
end
redis.call('DEL', KEYS[3])
return left
"""

# KEYS: a sorted set of counts. ARGV: member, amount. Lowers the member's count and
# drops it at zero, in one step (a ZINCRBY then ZREM could drop a concurrent increment).
DECREMENT = """
if tonumber(redis.call('ZINCRBY', KEYS[1], -tonumber(ARGV[2]), ARGV[1])) <= 0 then
  redis.call('ZREM', KEYS[1], ARGV[1])
end
"""

# Rosters: KEYS[1] private room hash, KEYS[2] roster hash, KEYS[3] version-1 member set.

# ARGV: user id, member JSON, invite. Returns 0 refused, 1 already a member, 2 admitted now.
ADMIT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 or redis.call('SISMEMBER', KEYS[3], ARGV[1]) == 1 then return 1 end
local invite = redis.call('HGET', KEYS[1], 'invite')
if (not invite) or invite == '' or invite ~= ARGV[3] then return 0 end
local members = redis.call('HLEN', KEYS[2]) + redis.call('SCARD', KEYS[3])
if members >= tonumber(redis.call('HGET', KEYS[1], 'capacity')) then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 2
"""

# KEYS as above, then KEYS[4] the room's history stream. ARGV: '1' with a title (ARGV[2]),
# then user id and member JSON pairs. Returns {-1} for a public room with history, else
# {created (0/1), ids of the members new to the room...}.
PUT_PRIVATE_ROOM = """
local created = 0
if redis.call('EXISTS', KEYS[1]) == 0 then
  if redis.call('XLEN', KEYS[4]) > 0 then return {-1} end
  redis.call('HSET', KEYS[1], 'invite', '', 'capacity', 0)
  created = 1
end
if ARGV[1] == '1' then redis.call('HSET', KEYS[1], 'title', ARGV[2]) end
local result = {created}
for i = 3, #ARGV, 2 do
  local v1 = redis.call('SREM', KEYS[3], ARGV[i])
  if redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) == 1 and v1 == 0 then table.insert(result, ARGV[i]) end
end
return result
"""

# KEYS[1] roster, KEYS[2] version-1 member set. ARGV: user id, name ('' keeps it), role ('' keeps it).
# Returns {new (0/1), member JSON}.
PUT_MEMBER = """
local entry = redis.call('HGET', KEYS[1], ARGV[1])
local name, role, new = ARGV[1], 'member', 1
if entry then
  local member = cjson.decode(entry)
  name, role, new = member.name, member.role, 0
elseif redis.call('SREM', KEYS[2], ARGV[1]) == 1 then
  new = 0
end
if ARGV[2] ~= '' then name = ARGV[2] end
if ARGV[3] ~= '' then role = ARGV[3] end
local member = cjson.encode({id = ARGV[1], name = name, role = role})
redis.call('HSET', KEYS[1], ARGV[1], member)
return {new, member}
"""

# KEYS[1] roster, KEYS[2] version-1 member set. ARGV: user id.
# Returns the member JSON it had, '' for a version-1 member, false for none.
REMOVE_MEMBER = """
local entry = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('SREM', KEYS[2], ARGV[1]) == 1 and not entry then return '' end
return entry
"""

# KEYS[1] a user's revocation line; ARGV[1] Unix ms. The line only moves later.
REVOKE = """
local line = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > line then redis.call('SET', KEYS[1], ARGV[1]) end
return 1
"""
