"""Lua scripts that make each multi-key step of `RedisStore` atomic.

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

# KEYS: meta, log, dedupe key ('' for none), rate key ('' for none)
# ARGV: fresh epoch, message JSON without seq (starts with '{'), history size,
#       dedupe ttl ms, rate limit, rate window ms, rate member,
#       announcement channel ('' for none), prefix, suffix (published around the message),
#       announcement command (PUBLISH or SPUBLISH)
# Returns {0, seq} stored, {1, first message JSON} duplicate, {2, retry_after_ms} rate limited.
APPEND = _ENSURE_EPOCH + """
local meta, log, dedupe, rate = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
if dedupe ~= '' then
  local first = redis.call('GET', dedupe)
  if first then return {1, first} end
end
if rate ~= '' then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local limit, window = tonumber(ARGV[5]), tonumber(ARGV[6])
  redis.call('ZREMRANGEBYSCORE', rate, '-inf', now - window)
  if redis.call('ZCARD', rate) >= limit then
    local oldest = redis.call('ZRANGE', rate, 0, 0, 'WITHSCORES')
    return {2, tostring(tonumber(oldest[2]) + window - now)}
  end
  redis.call('ZADD', rate, now, ARGV[7])
  redis.call('PEXPIRE', rate, window)
end
local epoch, seq = ensure_epoch(meta, log, ARGV[1])
seq = seq + 1
local message = '{"seq":' .. seq .. ',' .. string.sub(ARGV[2], 2)
redis.call('XADD', log, 'MAXLEN', tonumber(ARGV[3]), '0-' .. seq, 'm', message)
redis.call('HSET', meta, 'seq', seq)
if dedupe ~= '' then redis.call('SET', dedupe, message, 'PX', ARGV[4]) end
if ARGV[8] ~= '' then redis.call(ARGV[11], ARGV[8], ARGV[9] .. message .. ARGV[10]) end
return {0, seq}
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

# KEYS: room users hash, user's connection set, instance's entry set, online zset, private room hash
# ARGV: user id, user JSON, connection id, room, instance entry. Returns 1 when first.
ADD_PRESENCE = """
redis.call('SADD', KEYS[2], ARGV[3])
redis.call('SADD', KEYS[3], ARGV[5])
if redis.call('SCARD', KEYS[2]) == 1 then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  if redis.call('EXISTS', KEYS[5]) == 0 then redis.call('ZINCRBY', KEYS[4], 1, ARGV[4]) end
  return 1
end
return 0
"""

# Same KEYS and ARGV as ADD_PRESENCE. Returns 1 when the user has no connection left.
REMOVE_PRESENCE = """
local removed = redis.call('SREM', KEYS[2], ARGV[3])
redis.call('SREM', KEYS[3], ARGV[5])
if removed == 1 and redis.call('SCARD', KEYS[2]) == 0 and redis.call('HDEL', KEYS[1], ARGV[1]) == 1 then
  if redis.call('EXISTS', KEYS[5]) == 0 then
    if tonumber(redis.call('ZINCRBY', KEYS[4], -1, ARGV[4])) <= 0 then redis.call('ZREM', KEYS[4], ARGV[4]) end
  end
  return 1
end
return 0
"""

# Remove every presence entry of instances that stopped heartbeating.
# KEYS: instances zset, online zset. ARGV: key prefix, deadline (ms; older heartbeats are dead).
# Returns a flat list {room, user JSON, ...} of users who have thereby left.
REAP = """
local prefix = ARGV[1]
local left = {}
for _, instance in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])) do
  local entries_key = prefix .. 'instance:' .. instance .. ':presence'
  for _, entry in ipairs(redis.call('SMEMBERS', entries_key)) do
    local room, user_id, conn = string.match(entry, '^([^\\n]*)\\n([^\\n]*)\\n(.*)$')
    local users = prefix .. 'presence:' .. room .. ':users'
    local conns = prefix .. 'presence:' .. room .. ':conns:' .. user_id
    if redis.call('SREM', conns, conn) == 1 and redis.call('SCARD', conns) == 0 then
      local user = redis.call('HGET', users, user_id)
      if user and redis.call('HDEL', users, user_id) == 1 then
        table.insert(left, room)
        table.insert(left, user)
        if redis.call('EXISTS', prefix .. 'private:' .. room) == 0 then
          if tonumber(redis.call('ZINCRBY', KEYS[2], -1, room)) <= 0 then redis.call('ZREM', KEYS[2], room) end
        end
      end
    end
  end
  redis.call('DEL', entries_key)
  redis.call('ZREM', KEYS[1], instance)
end
return left
"""

# KEYS: private room hash, its member set. ARGV: user id, invite. Returns 1 when a member.
ADMIT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return 1 end
if redis.call('HGET', KEYS[1], 'invite') ~= ARGV[2] then return 0 end
if redis.call('SCARD', KEYS[2]) >= tonumber(redis.call('HGET', KEYS[1], 'capacity')) then return 0 end
redis.call('SADD', KEYS[2], ARGV[1])
return 1
"""
