"""The Lua scripts of the Redis limiters (shared by the sync and asyncio twins).

Each decision is one script: time comes from ``redis.call('TIME')`` (microseconds, the
server's clock, never the client's), every key written gets a PEXPIRE, and each script
touches one key, named with a ``{hash tag}`` by the caller so Redis Cluster routes it.
Numbers travel as strings (``%.17g``), since Redis truncates Lua numbers to integers.
Mode ``allow`` (the hot path) answers a bare integer 1/0, the cheapest reply to parse.
"""

_PRELUDE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local function f(x) return string.format('%.17g', x) end
"""

# GCRA token bucket.  KEYS[1]: hash {t: theoretical arrival time (us, on the bucket's timeline;
# rate 0: tokens used), p: "rate burst" it was written under, g: how many times it was
# converted to new parameters, l: the server time of the last change, s: skew (us: the
# backward steps of the server's clock so far), e: the latest time to act when it was last
# converted}.  The timeline is the server's time plus the skew: a call at a time before the
# last change's is time standing still (nothing minted or charged), and when it changes the
# state the skew absorbs the step, so refill goes on from the new reading (Go's rule, for a
# failover to a replica with another clock or an NTP step).  ARGV: mode, rate (per s; never
# inf: the unlimited rate is the client's), burst, n, max_wait (us, -1: none), lease (max
# tokens, mode 'lease') | my tat, act, tat before, generation, my rate ('cancel').  Returns
# {ok, due (us from now), new tat, n taken, act (us), tat before, generation}.  State written
# under other parameters (set_rate/set_burst) is converted first, keeping the token count
# (clamped to the new burst), as Go's SetLimit does, and the conversion is stored even when
# the call is refused: an empty bucket must start refilling at the new rate from the first
# call that uses it.  Rate 0 keeps its state without expiry (nothing ever refills it).
TOKEN_BUCKET = _PRELUDE + """
local mode = ARGV[1]
local sig = ARGV[2] .. ' ' .. ARGV[3]
local rate = tonumber(ARGV[2])
local zero = rate == 0
local per = 0
if not zero then per = 1000000 / rate end
local burst = tonumber(ARGV[3])
local h = redis.call('HMGET', KEYS[1], 't', 'p', 'g', 'l', 's', 'e')
local tat = tonumber(h[1] or '0')
local gen = tonumber(h[3] or '0')
local clock = now
local last = tonumber(h[4] or '0')
local skew = tonumber(h[5] or '0')
local event = tonumber(h[6] or '-1e300')
local stepped = h[4] and clock < last
if stepped then now = last end
now = now + skew
local function store(v)
  local s = skew
  if stepped then s = skew + (last - clock) end
  if (zero and v <= 0) or ((not zero) and v <= now) then
    redis.call('DEL', KEYS[1])  -- full: nothing to remember
    return
  end
  redis.call('HSET', KEYS[1], 't', f(v), 'p', sig, 'g', gen, 'l', f(clock), 's', f(s), 'e', f(event))
  if zero then
    redis.call('PERSIST', KEYS[1])
  else
    redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil((v - now) / 1000)))
  end
end
if h[1] and h[2] ~= sig then
  local orate, oburst = string.match(h[2], '(%S+) (%S+)')
  local ob = tonumber(oburst)
  local tokens
  if tonumber(orate) == 0 then
    tokens = ob - tat
    if tat > ob + 1e-9 then event = 1e300 end  -- on credit at rate 0: acts never
  else
    local oper = 1000000 / tonumber(orate)
    tokens = ob
    if tat > now then tokens = ob - (tat - now) / oper end
    if tat - ob * oper > event then event = tat - ob * oper end
  end
  if tokens > burst then tokens = burst end
  if zero then tat = burst - tokens else tat = now + (burst - tokens) * per end
  gen = gen + 1
  store(tat)  -- converted now, whatever this call decides: tokens refill at the new rate from here
end
local base = tat
if (not zero) and base < now then base = now end
if mode == 'peek' then
  if zero then return {1, '0', f(burst - tat), 0, f(now)} end
  return {1, '0', f(burst - (base - now) / per), 0, f(now)}
end
local n = tonumber(ARGV[4])
if mode == 'cancel' then
  local mine, act, prev = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
  if act + 1 < now then return {0, '0', f(tat), 0, f(now)} end
  local restore
  if tonumber(ARGV[8]) == gen then
    if tat == mine then
      store(prev)  -- nothing reserved since: the state from before, exactly
      return {1, '0', f(prev), 0, f(now)}
    end
    if zero then restore = n - (tat - mine) else restore = n - (tat - mine) / per end
  else
    -- parameters changed since: Go's rule, at the reservation's own rate, from the latest
    -- time to act to this one's
    local myrate = tonumber(ARGV[9])
    local ev = event
    if zero then
      if tat > burst + 1e-9 then ev = 1e300 end
    elseif tat - burst * per > ev then
      ev = tat - burst * per
    end
    if myrate == 0 then restore = n else restore = n - (ev - act) * myrate / 1000000 end
  end
  if restore ~= restore or restore <= 0 then return {0, '0', f(tat), 0, f(now)} end
  if restore > n then restore = n end
  local new
  if zero then
    new = tat - restore
    if new < 0 then new = 0 end
  else
    new = tat - restore * per
  end
  store(new)
  return {1, '0', f(new), 0, f(now)}
end
local max_wait = tonumber(ARGV[5])
if mode == 'lease' then
  local avail
  if zero then avail = math.floor(burst - tat + 1e-9) else avail = math.floor(burst - (base - now) / per + 1e-9) end
  local k = tonumber(ARGV[6])
  if avail < k then k = avail end
  if k < n then
    if zero then return {0, f(math.huge), f(tat), 0, f(now)} end
    return {0, f(base + n * per - burst * per - now), f(tat), 0, f(now)}
  end
  n = k
  max_wait = 0
end
if n > burst then
  if mode == 'allow' then return 0 end
  return {0, '-1', f(tat), 0, f(now)}
end
local new, act, due
if zero then
  new = tat + n
  act = now
  due = 0
  if new > burst + 1e-9 then
    -- on credit at rate 0: only an unbounded reservation, and it never acts (current Go)
    if max_wait >= 0 then
      if mode == 'allow' then return 0 end
      return {0, f(math.huge), f(tat), 0, f(now)}
    end
    act = 1e300  -- never (sent back by cancel: a plain number)
    due = math.huge
  end
else
  new = base + n * per
  act = new - burst * per
  due = act - now
  if due > 0 and max_wait >= 0 and due > max_wait and (due - max_wait) / per > 1e-9 * (burst + 1) then
    if mode == 'allow' then return 0 end
    return {0, f(due), f(tat), 0, f(now)}
  end
end
store(new)
if mode == 'allow' then return 1 end
if due < 0 then due = 0; act = now end
return {1, f(due), f(new), n, f(act), f(base), gen}
"""

_TIME = """local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
"""


def with_test_clock(script: str) -> str:
    """Test hook: ``script`` reading its time (us) from the string key ``KEYS[1] .. ':now'``
    instead of the server's TIME, so a test can step the script's clock (back, too)."""
    assert _TIME in script
    return script.replace(_TIME, "local now = tonumber(redis.call('GET', KEYS[1] .. ':now'))\n", 1)


# Fixed window.  KEYS[1]: hash {i: window index, c: count}.  ARGV: mode, limit, window (us), n.
# Returns {ok, delay (us until n fit; for 'peek' 0 if they fit now), used, reset (us)}.
FIXED_WINDOW = _PRELUDE + """
local mode, limit, win, n = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local idx = math.floor(now / win)
local h = redis.call('HMGET', KEYS[1], 'i', 'c')
local count = 0
if h[1] and tonumber(h[1]) >= idx then
  idx = tonumber(h[1])
  count = tonumber(h[2])
end
local reset = (idx + 1) * win - now
if reset < 0 then reset = 0 end
local fits = count + n <= limit
if mode == 'allow' and not fits then return 0 end
if mode == 'peek' or not fits then
  local used_reset = reset
  if count == 0 then used_reset = 0 end
  local delay = 0
  if not fits then delay = reset end
  return {fits and mode ~= 'peek' and 1 or 0, f(delay), f(count), f(used_reset)}
end
count = count + n
redis.call('HSET', KEYS[1], 'i', string.format('%.0f', idx), 'c', count)
redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil(reset / 1000)))
if mode == 'allow' then return 1 end
return {1, '0', f(count), f(reset)}
"""

# Sliding window counter.  KEYS[1]: hash {i, c: current count, p: previous count}.
# ARGV and reply as FIXED_WINDOW ('used' is the weighted estimate).
SLIDING_WINDOW_COUNTER = _PRELUDE + """
local mode, limit, win, n = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local idx = math.floor(now / win)
local h = redis.call('HMGET', KEYS[1], 'i', 'c', 'p')
local cur, prev = 0, 0
if h[1] then
  local si = tonumber(h[1])
  if si >= idx then
    idx = si
    if now < idx * win then now = idx * win end
    cur, prev = tonumber(h[2]), tonumber(h[3])
  elseif si == idx - 1 then
    prev = tonumber(h[2])
  end
end
local start = idx * win
local elapsed = (now - start) / win
if elapsed > 1 then elapsed = 1 end
local est = prev * (1 - elapsed) + cur
local fits = est + n <= limit + 1e-9
local reset = 0
if mode == 'allow' and not fits then return 0 end
if cur > 0 then reset = start + 2 * win - now elseif prev > 0 then reset = start + win - now end
if mode == 'peek' or not fits then
  local delay = 0
  if not fits then
    local room, p, s = limit - cur - n, prev, start
    if room < 0 then s = start + win; room = limit - n; p = cur end
    local frac = 0
    if p > 0 then frac = 1 - room / p end
    delay = s + frac * win - now
    if delay < 1 then delay = 1 end
  end
  return {0, f(delay), f(est), f(reset)}
end
cur = cur + n
redis.call('HSET', KEYS[1], 'i', string.format('%.0f', idx), 'c', cur, 'p', prev)
redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil((start + 2 * win - now) / 1000)))
if mode == 'allow' then return 1 end
return {1, '0', f(est + n), f(start + 2 * win - now)}
"""

# Sliding window log.  KEYS[1]: list of admission times (us), newest first, at most limit long.
# ARGV and reply as FIXED_WINDOW.
SLIDING_WINDOW_LOG = _PRELUDE + """
local mode, limit, win, n = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local newest = redis.call('LINDEX', KEYS[1], 0)
if newest and tonumber(newest) > now then now = tonumber(newest) end
local len = redis.call('LLEN', KEYS[1])
local edge = now - win
local blocker = nil
if n > limit - len then
  blocker = tonumber(redis.call('LINDEX', KEYS[1], (limit - n) - len))
  if blocker <= edge then blocker = nil end
end
if mode == 'allow' and blocker then return 0 end
if mode == 'peek' or blocker then
  local used = 0
  local reset = 0
  if mode == 'peek' then
    for _, v in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
      if tonumber(v) > edge then used = used + 1 end
    end
    if newest and tonumber(newest) > edge then reset = tonumber(newest) + win - now end
  end
  local delay = 0
  if blocker then delay = blocker + win - now end
  return {0, f(delay), f(used), f(reset)}
end
local stamp = string.format('%.0f', now)
for i = 1, n do redis.call('LPUSH', KEYS[1], stamp) end
redis.call('LTRIM', KEYS[1], 0, limit - 1)
redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil(win / 1000)))
if mode == 'allow' then return 1 end
return {1, '0', '0', '0'}
"""
