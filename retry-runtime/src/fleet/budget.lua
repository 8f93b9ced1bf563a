-- One process's sync of one shared retry budget (stormguard, feature `redis`): the fleet's
-- ledger, ten slots of milli-tokens over the window, mirrors a process's own; the tokens lent
-- out count against its capacity, so the fleet's burst is one `capacity`.
-- KEYS[1]: the budget's hash; KEYS[2]: the last batch of successes applied for this process;
-- KEYS[3]: the leases, one field per process: "round:milli-tokens:time (ms)" of its last grant.
-- ARGV: capacity (milli), milli-tokens per success, min_per_sec, window (ms), start grant
-- (milli), unspent lease given back (milli), lease wanted (milli), this round's number, the
-- last round whose answer the process received, the lease it held when it went local (milli;
-- -1: it did not, this round follows an answered one), this process's name, the time after
-- which a process that did not sync is gone (ms), then pairs (batch number, successes) of
-- every batch this process has not seen acknowledged (a batch is numbered by its round).
-- Returns the lease granted (milli-tokens, whole tokens only) and the fleet's tokens left.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cap, ratio, per_sec = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local window, start = tonumber(ARGV[4]), tonumber(ARGV[5])
local given_back, want = tonumber(ARGV[6]), tonumber(ARGV[7])
local SLOTS = 10
local slot_ms = math.max(1, math.floor(window / SLOTS))
local f = redis.call('HMGET', KEYS[1], 'newest', 'last_success', 'floor', 'floor_ms',
  's0', 's1', 's2', 's3', 's4', 's5', 's6', 's7', 's8', 's9')
local cur = math.floor(now / slot_ms)
local slots = {}
for i = 0, SLOTS - 1 do slots[i] = tonumber(f[5 + i] or '0') end
local newest = tonumber(f[1] or '-1')
if not f[1] then
  -- A new fleet ledger: the start grant, once for the whole fleet.
  newest = cur
  slots[cur % SLOTS] = math.min(start, cap)
end
if cur > newest then
  for k = newest + 1, math.min(cur, newest + SLOTS) do slots[k % SLOTS] = 0 end
  newest = cur
end
local function total()
  local s = 0
  for i = 0, SLOTS - 1 do s = s + slots[i] end
  return s
end
-- Takes up to `want` from the oldest slots first; returns what it took.
local function take(amount)
  local took = 0
  for k = newest - SLOTS + 1, newest do
    local i = k % SLOTS
    local cut = math.min(slots[i], amount - took)
    slots[i] = slots[i] - cut
    took = took + cut
    if took >= amount then break end
  end
  return took
end
-- What comes back of the lease the fleet last lent this process. After answered rounds, what
-- it did not spend. Back from local decisions (a round cut by a fault), the fleet's record
-- says which: if no round after the last answered one was applied, the lease the process
-- dropped when it went local; if one was (its answer lost), that round's grant, which the
-- process never received. Each is returned once: the record moves on with this round.
local round, seen, dropped = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
local me, gone_after = ARGV[11], tonumber(ARGV[12])
-- The leases: this process's last, and the sum of the others'. A process silent for longer
-- than `gone_after` holds none as far as the capacity goes (it died, or went local and will
-- return what it held, below); its record is forgotten when its tokens would have expired.
local keep = math.max(60000, window * 20)
local lent_round, lent_grant, others = -1, 0, 0
local leases = redis.call('HGETALL', KEYS[3])
for i = 1, #leases, 2 do
  local r, g, at = string.match(leases[i + 1], '^(%-?%d+):(%d+):(%d+)$')
  local age = at and now - tonumber(at) or keep + 1
  if age > keep then
    redis.call('HDEL', KEYS[3], leases[i])
  elseif leases[i] == me then
    lent_round, lent_grant = tonumber(r), tonumber(g)
  elseif age <= gone_after then
    others = others + tonumber(g)
  end
end
local returned = given_back
if dropped >= 0 then
  if lent_round == seen then
    returned = dropped
  elseif lent_round > seen then
    returned = lent_grant
  else
    -- No record (a new ledger, Redis restarted empty): nothing of it was lent by this one.
    returned = 0
  end
end
local acked = tonumber(redis.call('GET', KEYS[2]) or '0')
local successes, top = 0, acked
for j = 13, #ARGV - 1, 2 do
  local batch, n = tonumber(ARGV[j]), tonumber(ARGV[j + 1])
  if batch > acked then
    successes = successes + n
    if batch > top then top = batch end
  end
end
local last_success = tonumber(f[2] or '0')
if successes > 0 then last_success = now end
slots[newest % SLOTS] = slots[newest % SLOTS] + successes * ratio + returned
-- What the other processes hold counts against the capacity: the fleet's tokens, ledger and
-- leases together, never exceed one `capacity`.
local over = total() + others - cap
if over > 0 then take(over) end
-- Whole tokens only: a retry costs one (two after a timeout), and fractions scattered over
-- many leases would pay for none.
local function whole(milli) return milli - milli % 1000 end
local granted = take(whole(math.min(want, total())))
-- Beyond the tokens: the fleet's `min_per_sec` floor, while a success is recent.
local floor = tonumber(f[3] or tostring(per_sec * 1000))
local floor_ms = tonumber(f[4] or tostring(now))
floor = math.min(per_sec * 1000, floor + (now - floor_ms) * per_sec)
if granted < want and per_sec > 0 and now - last_success <= window then
  local extra = whole(math.min(want - granted, math.floor(floor)))
  floor = floor - extra
  granted = granted + extra
end
redis.call('HSET', KEYS[1], 'newest', newest, 'last_success', last_success, 'floor', floor,
  'floor_ms', now, 's0', slots[0], 's1', slots[1], 's2', slots[2], 's3', slots[3], 's4', slots[4],
  's5', slots[5], 's6', slots[6], 's7', slots[7], 's8', slots[8], 's9', slots[9])
redis.call('PEXPIRE', KEYS[1], math.max(60000, window * 20))
redis.call('SET', KEYS[2], top, 'PX', math.max(60000, window * 20))
redis.call('HSET', KEYS[3], me, round .. ':' .. math.floor(granted) .. ':' .. now)
redis.call('PEXPIRE', KEYS[3], keep)
return {math.floor(granted), math.floor(total())}
