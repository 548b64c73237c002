"""Lua scripts that make each multi-key step of `RedisStore` atomic.

Each script declares every key it touches in KEYS, and all of them share one hash
slot (see `redis_keys.py`), so every script runs on a Redis Cluster too; the one
exception, APPEND with a rate key, is used on a single server only.

A room's history is a stream whose entry ids are `0-<seq>`, so `seq` ranges map
directly onto XRANGE / XREVRANGE. A stream entry cannot change: a message changed
after it was stored has its current JSON in the room's `changed` hash, which every
read of history lays over the stream. The room's meta hash holds `seq`, `rev` and
`epoch`; if either the hash or the stream was lost (flush, eviction), the room starts
over under a new epoch, which tells clients their old `seq` numbers are void.
"""

from __future__ import annotations

# A room's keys, in every script on a room's history: KEYS[1] meta hash, KEYS[2] history
# stream, KEYS[3] `changed` hash (seq to the current JSON of each message changed since it
# was stored), KEYS[4] `revs` sorted set (seq scored by the `rev` of its latest change).

# Shared prologue: make sure the room has an epoch consistent with its history; returns
# the epoch, the latest `seq` and the latest `rev` (a room stored before `rev` existed had
# only messages: its `rev` is its `seq`).
_ENSURE_EPOCH = """
local function ensure_epoch(fresh_epoch)
  local epoch = redis.call('HGET', KEYS[1], 'epoch')
  local seq = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
  if (not epoch) or (seq > 0 and redis.call('EXISTS', KEYS[2]) == 0) then
    epoch = fresh_epoch
    redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
    redis.call('HSET', KEYS[1], 'epoch', epoch, 'seq', 0, 'rev', 0, 'lost_rev', 0)
    return epoch, 0, 0
  end
  return epoch, seq, tonumber(redis.call('HGET', KEYS[1], 'rev') or seq)
end
"""

# Shared: the current JSON of message `seq` while it is in history, else nil.
_CURRENT = """
local function current(seq)
  local entry = redis.call('XRANGE', KEYS[2], '0-' .. seq, '0-' .. seq)
  if #entry == 0 then return nil end
  return redis.call('HGET', KEYS[3], seq) or entry[1][2][2]
end
"""

# Shared: stream entries as the messages' current JSON.
_OVERLAY = """
local function overlay(entries)
  local messages = {}
  local any_changed = redis.call('HLEN', KEYS[3]) > 0
  for i, entry in ipairs(entries) do
    messages[i] = (any_changed and redis.call('HGET', KEYS[3], string.sub(entry[1], 3))) or entry[2][2]
  end
  return messages
end
"""

# Shared: forget the change of a message that left history; remember that a change up to
# its `rev` can no longer be recovered (`lost_rev`).
_FORGET_CHANGE = """
local function forget_change(seq)
  local rev = redis.call('ZSCORE', KEYS[4], seq)
  if not rev then return end
  redis.call('HDEL', KEYS[3], seq)
  redis.call('ZREM', KEYS[4], seq)
  if tonumber(rev) > tonumber(redis.call('HGET', KEYS[1], 'lost_rev') or '0') then
    redis.call('HSET', KEYS[1], 'lost_rev', rev)
  end
end
"""

# Shared: where a user's reading of the room stands. `reads` is the room's hash of user id
# to read mark, `quoted` the user id as JSON (as the stored messages spell it). Returns the
# mark and the messages after it that others sent and that are not deleted, up to `max`.
_READ_STATE = """
local function read_state(reads, reader, quoted, max)
  if reader == '' then return 0, 0 end
  local last_read = tonumber(redis.call('HGET', reads, reader) or '0')
  local any_changed = redis.call('HLEN', KEYS[3]) > 0
  local unread, from = 0, '(0-' .. last_read
  while unread < max do
    local entries = redis.call('XRANGE', KEYS[2], from, '+', 'COUNT', 200)
    if #entries == 0 then break end
    for _, entry in ipairs(entries) do
      local seq = string.sub(entry[1], 3)
      local changed = any_changed and redis.call('HGET', KEYS[3], seq)
      local others
      if changed then
        local message = cjson.decode(changed)
        others = message.user.id ~= reader and message.deleted ~= true
      else  -- as stored: the first "user" is the author's (a reply's quote comes after)
        local json = entry[2][2]
        local at = string.find(json, '"user":{"id":', 1, true) + 13
        others = string.sub(json, at, at + #quoted) ~= quoted .. ','
      end
      if others then
        unread = unread + 1
        if unread == max then break end
      end
      from = '(' .. entry[1]
    end
  end
  return last_read, unread
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

# Shared: whether a sanction of `kind` holds for a user at `now` ms.
_SANCTIONED = """
local function sanctioned(sanctions, kind, user, now)
  local ends = redis.call('HGET', sanctions, kind .. ':' .. user)
  return ends and (ends == '0' or tonumber(ends) > now)
end
"""

# Shared: the first `n` characters of UTF-8 text (as Python counts them: code points).
_PREFIX = """
local function prefix(text, n)
  local at, count = 1, 0
  while at <= #text and count < n do
    local byte = string.byte(text, at)
    if byte < 0x80 then at = at + 1 elseif byte < 0xE0 then at = at + 2
    elseif byte < 0xF0 then at = at + 3 else at = at + 4 end
    count = count + 1
  end
  return string.sub(text, 1, at - 1)
end
"""

# Shared: publish a room event, framed as the other instances read it ('' channel: none).
_PUBLISH = """
local function publish(command, channel, before, payload, after)
  if channel ~= '' then redis.call(command, channel, before .. payload .. after) end
end
"""

# Shared: record a webhook event about room `room` (see `redis_hooks.py`): its room's stream
# of events (created with the `deliver` consumer group), the index of rooms due a look, the
# index of rooms by their oldest event's place in the order of all events (`serial`), and
# the count of all waiting.
_RECORD_HOOK = """
local function record_hook(stream, due, heads, length, serial, room, id, type, ts, body)
  if redis.call('EXISTS', stream) == 0 then
    redis.call('XGROUP', 'CREATE', stream, 'deliver', '0', 'MKSTREAM')
  end
  local order = redis.call('INCR', serial)
  redis.call('XADD', stream, '*', 'id', id, 'type', type, 'ts', ts, 'order', order, 'body', body)
  redis.call('ZADD', due, 'NX', ts, room)
  redis.call('ZADD', heads, 'NX', order, room)
  redis.call('INCR', length)
end
"""

# Shared: the ids of a room's members with no connection in it, as a JSON list: the
# roster (and a private room's version-1 members) against the room's connection counts.
_OFFLINE = """
local function offline(roster, members, conns)
  local ids = {}
  for _, user in ipairs(redis.call('HKEYS', roster)) do
    if redis.call('HEXISTS', conns, user) == 0 then table.insert(ids, user) end
  end
  for _, user in ipairs(redis.call('SMEMBERS', members)) do
    if redis.call('HEXISTS', conns, user) == 0 then table.insert(ids, user) end
  end
  if #ids == 0 then return '[]' end
  return cjson.encode(ids)
end
"""

# KEYS: the room's four (above), sanctions, reads; then the dedupe key if ARGV[10] is '1',
# then the rate key if ARGV[5] > 0 (only where one script may touch both slots: a single
# server; on a Cluster the rate window is checked first by RATE, in the user's slot)
# ARGV: [1] fresh epoch, [2] message JSON without seq, rev and reply_to (an object),
#       [3] history size, [4] dedupe ttl ms, [5] rate limit (0: none), [6] rate window ms,
#       [7] rate member, [8] the sender's user id, checked for a ban or mute and marked read
#       up to the message ('' for none), [9] now in ms, [10] '1' when a dedupe key is given,
#       [11] the seq it replies to ('' for none), [12] characters a quote keeps,
#       [13..16] publish command, channel, prefix, suffix (see `_PUBLISH`),
#       [17] the id of its `message.created` webhook event ('' for none: then no more keys;
#       else KEYS go on with the room's roster, version-1 members, connection counts, and the
#       five keys of `_RECORD_HOOK`), [18] the room's id,
#       [19..22] how to publish the sender's `read` to the user's connections elsewhere
#       (channel '' for not here)
# Returns {0, seq, rev, quote JSON or ''} stored, {1, first message JSON} duplicate,
# {2, retry_after_ms} rate limited, {3} the sender is banned or muted, {4} no such message to reply to.
APPEND = _ENSURE_EPOCH + _CURRENT + _FORGET_CHANGE + _RATE_WAIT + _SANCTIONED + _PREFIX + _PUBLISH + _RECORD_HOOK \
    + _OFFLINE + """
local sanctions, reads = KEYS[5], KEYS[6]
local dedupe, rate
local next_key = 7
if ARGV[10] == '1' then dedupe = KEYS[next_key]; next_key = next_key + 1 end
if tonumber(ARGV[5]) > 0 then rate = KEYS[next_key]; next_key = next_key + 1 end
if dedupe then
  local first = redis.call('GET', dedupe)
  if first then return {1, first} end
end
local sender, now = ARGV[8], tonumber(ARGV[9])
if sender ~= '' and (sanctioned(sanctions, 'ban', sender, now) or sanctioned(sanctions, 'mute', sender, now)) then
  return {3}
end
local quote = 'null'
if ARGV[11] ~= '' then
  local answered = current(ARGV[11])
  if not answered then return {4} end
  answered = cjson.decode(answered)
  if answered.deleted == true then return {4} end
  quote = cjson.encode({seq = answered.seq, user = answered.user, text = prefix(answered.text, tonumber(ARGV[12]))})
end
if rate then
  local wait = rate_wait(rate, tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7])
  if wait > 0 then return {2, tostring(wait)} end
end
local epoch, seq, rev = ensure_epoch(ARGV[1])
seq, rev = seq + 1, rev + 1
local message = '{"seq":' .. seq .. ',"rev":' .. rev .. ',' .. string.sub(ARGV[2], 2, -2)
  .. ',"reply_to":' .. quote .. '}'
local size = tonumber(ARGV[3])
redis.call('XADD', KEYS[2], 'MAXLEN', size, '0-' .. seq, 'm', message)
redis.call('HSET', KEYS[1], 'seq', seq, 'rev', rev)
if seq > size then forget_change(seq - size) end
if dedupe then redis.call('SET', dedupe, message, 'PX', ARGV[4]) end
publish(ARGV[13], ARGV[14], ARGV[15], message, ARGV[16])
if sender ~= '' then
  redis.call('HSET', reads, sender, seq)
  publish(ARGV[19], ARGV[20], ARGV[21], '{"room":"' .. ARGV[18] .. '","last_read":' .. seq .. '}', ARGV[22])
end
if ARGV[17] ~= '' then
  local k = next_key
  local body = '{"id":"' .. ARGV[17] .. '","type":"message.created","ts":' .. ARGV[9] .. ',"data":{"message":'
    .. message .. ',"offline":' .. offline(KEYS[k], KEYS[k + 1], KEYS[k + 2]) .. '}}'
  record_hook(KEYS[k + 3], KEYS[k + 4], KEYS[k + 5], KEYS[k + 6], KEYS[k + 7], ARGV[18], ARGV[17], 'message.created',
    ARGV[9], body)
end
if quote == 'null' then quote = '' end
return {0, seq, rev, quote}
"""

# KEYS: the room's four, sanctions, roster; then the rate key if ARGV[8] > 0 (as for APPEND).
# ARGV: [1] kind (edit, delete, react), [2] seq, [3] actor's user id ('' the backend),
#       [4] now in ms, [5] the new text (edit) or the emoji (react), [6] '1' to give the
#       emoji, '0' to take it back, [7] most different emoji a message holds,
#       [8] rate limit (0: none), [9] rate window ms, [10] rate member,
#       [11..14] publish command, channel, prefix, suffix, [15] the id of its
#       `message.updated` webhook event ('' for none; else KEYS go on with the five keys of
#       `_RECORD_HOOK`), [16] the room's id
# The rules are `stores/changes.py`'s, in the same order.
# Returns {0, message JSON} changed, {1, message JSON} nothing to change,
# {2, retry_after_ms} rate limited, {3, why} forbidden, {4} not in history.
CHANGE = _CURRENT + _RATE_WAIT + _SANCTIONED + _PUBLISH + _RECORD_HOOK + """
local kind, seq, actor, now = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local json = redis.call('HEXISTS', KEYS[1], 'epoch') == 1 and current(seq)
if not json then return {4} end
local message = cjson.decode(json)
if actor == '' then
  if kind == 'react' then return {3, 'the backend does not react'} end
else
  local own = message.user.id == actor
  if kind == 'edit' and not own then return {3, 'only its author may edit a message'} end
  if kind == 'delete' and not own then
    local entry = redis.call('HGET', KEYS[6], actor)
    local role = entry and cjson.decode(entry).role
    if role ~= 'owner' and role ~= 'moderator' then
      return {3, 'only its author, an owner or a moderator may delete a message'}
    end
  end
  if kind ~= 'delete' and sanctioned(KEYS[5], 'mute', actor, now) then return {3, 'you are muted in this room'} end
end
if message.deleted == true then
  if kind == 'delete' then return {1, json} end
  return {3, 'the message was deleted'}
end
if type(message.reactions) ~= 'table' then message.reactions = {} end  -- stored before reactions existed
if kind == 'edit' then
  message.text, message.edited_at = ARGV[5], now
elseif kind == 'delete' then
  message.text, message.deleted, message.reactions = '', true, {}
else
  local emoji, on = ARGV[5], ARGV[6] == '1'
  local users = message.reactions[emoji]
  local at
  for i, user in ipairs(users or {}) do if user == actor then at = i end end
  if on == (at ~= nil) then return {1, json} end
  if on and not users then
    local count = 0
    for _ in pairs(message.reactions) do count = count + 1 end
    if count >= tonumber(ARGV[7]) then
      return {3, 'a message holds at most ' .. ARGV[7] .. ' different emoji'}
    end
    message.reactions[emoji] = {actor}
  elseif on then
    table.insert(users, actor)
  else
    table.remove(users, at)
    if #users == 0 then message.reactions[emoji] = nil end
  end
end
local next_key = 7
if tonumber(ARGV[8]) > 0 then
  local wait = rate_wait(KEYS[7], tonumber(ARGV[8]), tonumber(ARGV[9]), ARGV[10])
  if wait > 0 then return {2, tostring(wait)} end
  next_key = 8
end
local rev = tonumber(redis.call('HGET', KEYS[1], 'rev') or redis.call('HGET', KEYS[1], 'seq')) + 1
message.rev = rev
if message.edited_at == nil then message.edited_at = cjson.null end
if message.reply_to == nil then message.reply_to = cjson.null end
if message.deleted == nil then message.deleted = false end
json = cjson.encode(message)
redis.call('HSET', KEYS[1], 'rev', rev)
redis.call('HSET', KEYS[3], seq, json)
redis.call('ZADD', KEYS[4], rev, seq)
publish(ARGV[11], ARGV[12], ARGV[13], json, ARGV[14])
if ARGV[15] ~= '' then
  local k = next_key
  local body = '{"id":"' .. ARGV[15] .. '","type":"message.updated","ts":' .. ARGV[4] .. ',"data":{"message":'
    .. json .. '}}'
  record_hook(KEYS[k], KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 4], ARGV[16], ARGV[15], 'message.updated',
    ARGV[4], body)
end
return {0, json}
"""

# KEYS: a user's rate window. ARGV: limit, window ms, member.
# Returns 0 when counted, else the ms to wait.
RATE = _RATE_WAIT + """
return rate_wait(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3])
"""

# KEYS: the room's four, reads. ARGV: [1] fresh epoch, [2] since seq (-1: none), [3] since
# epoch, [4] latest, [5] since rev (-1: none), [6] reader's user id ('' none), [7] the same
# as JSON, [8] most unread messages counted.
# Returns {epoch, seq, rev, recovered (0/1), last_read, unread, {message JSON...}, {updated JSON...}}.
RECOVER = _ENSURE_EPOCH + _OVERLAY + _FORGET_CHANGE + _READ_STATE + """
local epoch, seq, rev = ensure_epoch(ARGV[1])
local last_read, unread = read_state(KEYS[5], ARGV[6], ARGV[7], tonumber(ARGV[8]))
local since, latest, since_rev = tonumber(ARGV[2]), tonumber(ARGV[4]), tonumber(ARGV[5])
if since >= 0 and ARGV[3] == epoch and since <= seq then
  local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
  local oldest = seq + 1
  if #first > 0 then oldest = tonumber(string.sub(first[1][1], 3)) end
  local whole = since + 1 >= oldest
  local updated = {}
  if whole and since_rev >= 0 then
    whole = tonumber(redis.call('HGET', KEYS[1], 'lost_rev') or '0') <= since_rev
    for _, changed in ipairs(redis.call('ZRANGEBYSCORE', KEYS[4], '(' .. since_rev, '+inf')) do
      if tonumber(changed) < oldest then  -- left history when the history size was lowered
        forget_change(changed)
        whole = false
      elseif tonumber(changed) <= since then
        table.insert(updated, redis.call('HGET', KEYS[3], changed))
      end
    end
  end
  if whole then
    return {epoch, seq, rev, 1, last_read, unread, overlay(redis.call('XRANGE', KEYS[2], '(0-' .. since, '+')), updated}
  end
end
local recent = {}
if latest > 0 then recent = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', latest) end
return {epoch, seq, rev, 0, last_read, unread, overlay(recent), {}}
"""

# KEYS: the room's four. ARGV: upper end of XREVRANGE ('+' or '(0-<seq>'), count.
# Returns the messages' current JSON, newest first.
HISTORY = _OVERLAY + """
return overlay(redis.call('XREVRANGE', KEYS[2], ARGV[1], '-', 'COUNT', tonumber(ARGV[2])))
"""

# KEYS: the room's four, reads. ARGV: user id, seq. The mark moves forward only, and no
# further than the room's latest message. Returns {mark, moved (0/1)}.
MARK_READ = """
local latest = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
local mark = math.min(tonumber(ARGV[2]), latest)
local last_read = tonumber(redis.call('HGET', KEYS[5], ARGV[1]) or '0')
if mark <= last_read then return {last_read, 0} end
redis.call('HSET', KEYS[5], ARGV[1], mark)
return {mark, 1}
"""

# KEYS: the room's four, reads. ARGV: user id, the same as JSON, most unread counted.
# Returns {last_read, unread}.
READ_STATE = _READ_STATE + """
local last_read, unread = read_state(KEYS[5], ARGV[1], ARGV[2], tonumber(ARGV[3]))
return {last_read, unread}
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

# Member scripts with webhooks on take the five keys of `_RECORD_HOOK` after their own, and
# record the event of the change in the same step (ARGV: room, event id, ts, body; id '' for none).

# ARGV: user id, member JSON, invite, then the `member.added` event's room, id, ts and body.
# Returns 0 refused, 1 already a member, 2 admitted now.
ADMIT = _RECORD_HOOK + """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 or redis.call('SISMEMBER', KEYS[3], ARGV[1]) == 1 then return 1 end
local invite = redis.call('HGET', KEYS[1], 'invite')
if (not invite) or invite == '' or invite ~= ARGV[3] then return 0 end
local members = redis.call('HLEN', KEYS[2]) + redis.call('SCARD', KEYS[3])
if members >= tonumber(redis.call('HGET', KEYS[1], 'capacity')) then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
if ARGV[5] ~= '' then
  record_hook(KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], ARGV[4], ARGV[5], 'member.added', ARGV[6], ARGV[7])
end
return 2
"""

# KEYS as above, then KEYS[4] the room's history stream (then the hook keys). ARGV: '1' with
# a title (ARGV[2]), the room, ts, then for each member: user id, member JSON, and the id and
# body of its `member.added` event, recorded if it is new to the room ('' for none).
# Returns {-1} for a public room with history, else {created (0/1), ids of the members new to the room...}.
PUT_PRIVATE_ROOM = _RECORD_HOOK + """
local created = 0
if redis.call('EXISTS', KEYS[1]) == 0 then
  if redis.call('XLEN', KEYS[4]) > 0 then return {-1} end
  redis.call('HSET', KEYS[1], 'invite', '', 'capacity', 0)
  created = 1
end
if ARGV[1] == '1' then redis.call('HSET', KEYS[1], 'title', ARGV[2]) end
local result = {created}
for i = 5, #ARGV, 4 do
  local v1 = redis.call('SREM', KEYS[3], ARGV[i])
  if redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) == 1 and v1 == 0 then
    table.insert(result, ARGV[i])
    if ARGV[i + 2] ~= '' then
      record_hook(KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], ARGV[3], ARGV[i + 2], 'member.added', ARGV[4],
        ARGV[i + 3])
    end
  end
end
return result
"""

# KEYS[1] roster, KEYS[2] version-1 member set (then the hook keys). ARGV: user id, name
# ('' keeps it), role ('' keeps it), then the room, id, ts and body of the `member.added`
# event to record if the member is new (the body made for the new member's defaults).
# Returns {new (0/1), member JSON}.
PUT_MEMBER = _RECORD_HOOK + """
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
if new == 1 and ARGV[5] ~= '' then
  record_hook(KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], ARGV[4], ARGV[5], 'member.added', ARGV[6], ARGV[7])
end
return {new, member}
"""

# KEYS[1] roster, KEYS[2] version-1 member set (then the hook keys). ARGV: user id, then the
# room, id and ts of the `member.removed` event, and its body before and after the user
# object, which the entry removed gives. Returns the member JSON it had, '' for a version-1
# member, false for none.
REMOVE_MEMBER = _RECORD_HOOK + """
local entry = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[1])
local found = entry
if redis.call('SREM', KEYS[2], ARGV[1]) == 1 and not entry then found = '' end
if found and ARGV[3] ~= '' then
  local user = {id = ARGV[1], name = ARGV[1]}
  if entry then user.name = cjson.decode(entry).name end
  record_hook(KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], ARGV[2], ARGV[3], 'member.removed', ARGV[4],
    ARGV[5] .. cjson.encode(user) .. ARGV[6])
end
return found
"""

# KEYS[1] a user's revocation line; ARGV[1] Unix ms. The line only moves later.
REVOKE = """
local line = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > line then redis.call('SET', KEYS[1], ARGV[1]) end
return 1
"""

# Webhook events waiting for delivery (see `redis_hooks.py`). KEYS, in each script below: a
# room's stream of events, the index of rooms due a look, the index of rooms' oldest events,
# the count of all waiting, the serial of all events; then, where named, the instance registry.

# ARGV: room, event id, type, ts (ms), body. Records one event.
RECORD_HOOK = _RECORD_HOOK + """
record_hook(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
return 1
"""

# Shared: after the room's head changed, its entry in the index of oldest events.
_HEAD_MOVED = """
local function head_moved(stream, heads, room)
  local first = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)
  if #first == 0 then redis.call('ZREM', heads, room); return end
  local fields = first[1][2]
  for i = 1, #fields, 2 do
    if fields[i] == 'order' then redis.call('ZADD', heads, fields[i + 1], room) end
  end
end
"""

# KEYS: the five, then the instance registry. ARGV: [1] this instance, [2] room, [3] ms a
# claim holds the room before others look again, [4] ms of silence after which an instance
# is dead, [5] the stream entry id of an event delivered or dropped ('' for none).
# The room's events go one at a time, in order, to one instance: the one whose consumer
# holds the room's pending entry, while it is alive; a dead one's is claimed.
# Returns {0} nothing waits (the room leaves the indexes), {1} another instance holds the
# room, {2, entry id, id, type, ts, body} the event for this instance to deliver now.
CLAIM_HOOK = _HEAD_MOVED + """
local stream, due, heads, length, instances = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[6]
local me, room, lease, expiry = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('EXISTS', stream) == 0 then
  redis.call('ZREM', due, room)
  redis.call('ZREM', heads, room)
  return {0}
end
if ARGV[5] ~= '' then
  redis.call('XACK', stream, 'deliver', ARGV[5])
  if redis.call('XDEL', stream, ARGV[5]) == 1 then redis.call('DECR', length) end
  head_moved(stream, heads, room)
end
while true do
  local id
  local pending = redis.call('XPENDING', stream, 'deliver', '-', '+', 1)
  if #pending > 0 then
    id = pending[1][1]
    local owner = pending[1][2]
    if owner ~= me then
      local beat = redis.call('ZSCORE', instances, owner)
      if beat and tonumber(beat) > now - expiry then return {1} end
      redis.call('XCLAIM', stream, 'deliver', me, 0, id, 'JUSTID')
    end
  else
    local read = redis.call('XREADGROUP', 'GROUP', 'deliver', me, 'COUNT', 1, 'STREAMS', stream, '>')
    if (not read) or #read[1][2] == 0 then
      redis.call('DEL', stream)
      redis.call('ZREM', due, room)
      redis.call('ZREM', heads, room)
      return {0}
    end
    id = read[1][2][1][1]
  end
  local entry = redis.call('XRANGE', stream, id, id)
  if #entry > 0 then
    redis.call('ZADD', due, now + lease, room)
    local fields, event = entry[1][2], {}
    for i = 1, #fields, 2 do event[fields[i]] = fields[i + 1] end
    return {2, id, event.id, event.type, event.ts, event.body}
  end
  redis.call('XACK', stream, 'deliver', id)  -- dropped meanwhile, as the oldest: on to the next
end
"""

# KEYS: the five. ARGV: room. Drops the room's oldest event (the bound was passed).
# Returns {id, type, ts} of the event dropped, or {} for none.
DROP_HOOK = _HEAD_MOVED + """
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
if #first == 0 then
  redis.call('ZREM', KEYS[3], ARGV[1])
  return {}
end
local entry_id, fields, event = first[1][1], first[1][2], {}
for i = 1, #fields, 2 do event[fields[i]] = fields[i + 1] end
redis.call('XDEL', KEYS[1], entry_id)
redis.call('DECR', KEYS[4])
head_moved(KEYS[1], KEYS[3], ARGV[1])
return {event.id, event.type, event.ts}
"""
