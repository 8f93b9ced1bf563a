-- One process's sync of one shared breaker (stormguard, feature `redis`).
-- KEYS[1]: the breaker's hash. ARGV: me, event ("none" | "open" | "reopen" | "close"),
-- local state ("closed" | "open" | "half"), local open time left (ms), probe lease (ms),
-- force to publish ("" | "auto" | "open" | "closed"), key TTL (ms).
-- Returns {state, epoch, open time left (ms), 1 if `me` holds the probes, force, force_epoch}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local h = redis.call('HMGET', KEYS[1], 'state', 'epoch', 'until', 'prober', 'probe_until', 'force', 'force_epoch')
local me, event, local_state = ARGV[1], ARGV[2], ARGV[3]
local left, lease, new_force, ttl = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6], tonumber(ARGV[7])
local state = h[1] or 'closed'
local epoch = tonumber(h[2] or '0')
local open_until = tonumber(h[3] or '0')
local prober = h[4] or ''
local probe_until = tonumber(h[5] or '0')
local force = h[6] or 'auto'
local force_epoch = tonumber(h[7] or '0')
-- The probes are free to decide when `me` holds them or nobody does (or the holder's lease ran out).
local decides = prober == '' or prober == me or probe_until < now
if not h[1] and local_state ~= 'closed' then
  -- The key is gone (Redis restarted empty, or it expired): an open breaker seeds it again.
  event = 'open'
end
if new_force ~= '' then
  force = new_force
  force_epoch = force_epoch + 1
end
if event == 'open' and state == 'closed' then
  state, epoch, open_until, prober = 'open', epoch + 1, now + left, ''
elseif event == 'reopen' and state == 'open' and decides then
  epoch, open_until, prober = epoch + 1, now + left, ''
elseif event == 'close' and state == 'open' and decides then
  state, epoch, prober = 'closed', epoch + 1, ''
end
if state == 'open' and now >= open_until and (prober == '' or probe_until < now) then
  -- The open time is over: one process (the first to ask) holds the half-open probes.
  prober, probe_until = me, now + lease
end
redis.call('HSET', KEYS[1], 'state', state, 'epoch', epoch, 'until', open_until, 'prober', prober,
  'probe_until', probe_until, 'force', force, 'force_epoch', force_epoch)
redis.call('PEXPIRE', KEYS[1], ttl)
local remaining = 0
if state == 'open' and open_until > now then remaining = open_until - now end
local probing = 0
if state == 'open' and prober == me then probing = 1 end
return {state, epoch, remaining, probing, force, force_epoch}
