"""The Lua scripts of :class:`~router.state.redis.RedisStore`: every update to shared state is one
of these, run atomically by Redis (see that module's docstring for the keys).

Times are wall-clock epoch seconds passed by the caller, so the scripts stay deterministic.
"""

from __future__ import annotations

# The token bucket, as router.ratelimit.RateLimiter and router.state.memory: shared by scripts.
# KEYS[1] bucket; ARGV[1] now, ARGV[2] rpm (0: none), ARGV[3] tpm (0: none), ARGV[4] tokens.
BUCKET = """
local EPS = 1e-9
local function fmt(x) return string.format('%.6f', x) end
local function load_bucket(key, now, rpm, tpm)
  local v = redis.call('HMGET', key, 'r', 't', 'l', 'b')
  local r, t, l, b = tonumber(v[1]), tonumber(v[2]), tonumber(v[3]), tonumber(v[4]) or 0
  if r == nil then r, t, l = rpm, tpm, now end
  local dt = now - l
  if dt > 0 then
    l = now
    if rpm > 0 then r = math.min(rpm, r + dt * rpm / 60) end
    if tpm > 0 then t = math.min(tpm, t + dt * tpm / 60) end
  end
  return r, t, l, b
end
local function save_bucket(key, now, r, t, l, b)
  redis.call('HSET', key, 'r', fmt(r), 't', fmt(t), 'l', fmt(l), 'b', fmt(b))
  redis.call('PEXPIRE', key, math.ceil(math.max(120, b - now + 1) * 1000))
end
local function acquire(key, now, rpm, tpm, tokens)
  if rpm <= 0 and tpm <= 0 and redis.call('HEXISTS', key, 'b') == 0 then return 0 end
  local r, t, l, b = load_bucket(key, now, rpm, tpm)
  local wait = 0
  if b > 0 then
    wait = b - now
    if wait <= EPS then b, wait = 0, 0 end
  end
  if rpm > 0 then
    local short = 1 - r
    if short > EPS then wait = math.max(wait, short / (rpm / 60)) end
  end
  if tpm > 0 and tokens > 0 then
    local short = math.min(tokens, tpm) - t
    if short > EPS then wait = math.max(wait, short / (tpm / 60)) end
  end
  if wait <= 0 then
    if rpm > 0 then r = r - 1 end
    if tpm > 0 then t = t - tokens end
  end
  if rpm > 0 or tpm > 0 or b > 0 then save_bucket(key, now, r, t, l, b) end
  return wait
end
"""

# One admission: the breaker (open? half-open: the probe lease), then the buckets.
# kb, kbr, kp: bucket, breaker, probe keys; ttl in ms. Returns the reply of one admission.
ADMIT_ONE = (
    BUCKET
    + """
local function admit(kb, kbr, kp, now, rpm, tpm, tokens, ttl, owner)
  local u = tonumber(redis.call('HGET', kbr, 'u'))
  local probe = 0
  if u then
    if now < u then return {'open', fmt(u)} end
    if not redis.call('SET', kp, owner, 'NX', 'PX', ttl) then
      return {'probing', fmt(now + math.max(redis.call('PTTL', kp), 0) / 1000)}
    end
    probe = 1
  end
  local wait = acquire(kb, now, rpm, tpm, tokens)
  if wait > 0 then
    if probe == 1 then redis.call('DEL', kp) end
    return {'wait', fmt(wait)}
  end
  return {'ok', '0', probe}
end
"""
)

# KEYS: bucket, breaker, probe. ARGV: now, rpm, tpm, tokens, probe ttl (ms), owner.
ADMIT = (
    ADMIT_ONE
    + """
return admit(KEYS[1], KEYS[2], KEYS[3], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]),
             tonumber(ARGV[4]), ARGV[5], ARGV[6])
"""
)

# Several admissions of one deployment, in arrival order, as one script: each is decided exactly
# as ADMIT would one at a time (the same function), so the limits stay exact.
# KEYS: bucket, breaker, probe. ARGV: n, rpm, tpm, probe ttl, owner (the same for the batch),
# then n times: now, tokens.
ADMIT_MANY = (
    ADMIT_ONE
    + """
local rpm, tpm, ttl, owner = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], ARGV[5]
local out = {}
for i = 0, tonumber(ARGV[1]) - 1 do
  local a = 6 + i * 2
  local now, tokens = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  out[i + 1] = admit(KEYS[1], KEYS[2], KEYS[3], now, rpm, tpm, tokens, ttl, owner)
end
return out
"""
)

# KEYS: bucket. ARGV: now, rpm, tpm, tokens.
ACQUIRE = (
    BUCKET
    + """
return fmt(acquire(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])))
"""
)

# KEYS: bucket. ARGV: now, rpm, tpm, tokens, requests.
REFUND = (
    BUCKET
    + """
local now, rpm, tpm = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tokens, requests = tonumber(ARGV[4]), tonumber(ARGV[5])
if rpm <= 0 and tpm <= 0 then return 0 end
local r, t, l, b = load_bucket(KEYS[1], now, rpm, tpm)
if tpm > 0 and tokens ~= 0 then t = math.min(tpm, t + tokens) end
if rpm > 0 and requests ~= 0 then r = math.min(rpm, r + requests) end
save_bucket(KEYS[1], now, r, t, l, b)
return 1
"""
)

# KEYS: bucket. ARGV: now, rpm, tpm, remaining requests, remaining tokens, reset requests s,
# reset tokens s ('' for unknown).
OBSERVE = (
    BUCKET
    + """
local now, rpm, tpm = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local rr, rt = tonumber(ARGV[4]), tonumber(ARGV[5])
local sr, st = tonumber(ARGV[6]), tonumber(ARGV[7])
local r, t, l, b = load_bucket(KEYS[1], now, rpm, tpm)
if rr then
  if rpm > 0 and rr < r then r = rr end
  if rr <= 0 and sr and sr > 0 then b = math.max(b, now + sr) end
end
if rt then
  if tpm > 0 and rt < t then t = rt end
  if rt <= 0 and st and st > 0 then b = math.max(b, now + st) end
end
save_bucket(KEYS[1], now, r, t, l, b)
return 1
"""
)

BREAKER = """
local function fmt(x) return string.format('%.6f', x) end
local function open(now, till, cooldown, max_cd)
  local u = tonumber(redis.call('HGET', KEYS[1], 'u'))
  if u == nil or till > u then u = till end
  redis.call('HSET', KEYS[1], 'u', fmt(u), 'c', fmt(cooldown))
  redis.call('PEXPIRE', KEYS[1], math.ceil((u - now + max_cd + 1) * 1000))
  redis.call('DEL', KEYS[2], KEYS[3])
  return fmt(u)
end
"""

# KEYS: breaker, fails, probe. ARGV: now, threshold, window, cooldown, backoff, max cooldown.
FAILURE = (
    BREAKER
    + """
local now, n, window = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local base, backoff, max_cd = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local u = tonumber(redis.call('HGET', KEYS[1], 'u'))
if u then
  if now < u then return false end
  local c = tonumber(redis.call('HGET', KEYS[1], 'c')) or base
  c = math.min(c * backoff, max_cd)
  return open(now, now + c, c, max_cd)
end
redis.call('LPUSH', KEYS[2], fmt(now))
redis.call('LTRIM', KEYS[2], 0, n - 1)
redis.call('PEXPIRE', KEYS[2], math.ceil(window * 1000))
if redis.call('LLEN', KEYS[2]) >= n and tonumber(redis.call('LINDEX', KEYS[2], -1)) > now - window then
  return open(now, now + base, base, max_cd)
end
return false
"""
)

# KEYS: breaker, fails, probe. ARGV: now, until, cooldown, max cooldown.
TRIP = (
    BREAKER
    + """
local now, till = tonumber(ARGV[1]), tonumber(ARGV[2])
local u = tonumber(redis.call('HGET', KEYS[1], 'u'))
if till <= now or (u and u >= till) then return fmt(u or till) end
if u and now < u then
  redis.call('HSET', KEYS[1], 'u', fmt(till))
  redis.call('PEXPIRE', KEYS[1], math.ceil((till - now + tonumber(ARGV[4]) + 1) * 1000))
  return fmt(till)
end
local c = tonumber(redis.call('HGET', KEYS[1], 'c')) or tonumber(ARGV[3])
return open(now, till, c, tonumber(ARGV[4]))
"""
)

# KEYS: breaker, fails, probe. ARGV: now.
SUCCESS = """
local u = tonumber(redis.call('HGET', KEYS[1], 'u'))
if u and tonumber(ARGV[1]) >= u then redis.call('DEL', KEYS[1], KEYS[2], KEYS[3]) return 1 end
return 0
"""

# KEYS: probe. ARGV: owner.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: replicas. ARGV: owner, ttl ms. The server's clock, so replicas on other hosts agree.
HEARTBEAT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - ttl)
redis.call('PEXPIRE', KEYS[1], ttl * 2)
return redis.call('ZCARD', KEYS[1])
"""

# KEYS: spend. ARGV: amount, ttl s.
SPEND = """
local total = redis.call('INCRBYFLOAT', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return total
"""

# A lease: a slice of the buckets taken now, to be spent by one replica at memory speed (see
# router.state.shared). Granted only while the breaker is closed and no hold is in force; it
# takes what the buckets have, up to what was asked, so the buckets stay exact.
# KEYS: bucket, breaker. ARGV: now, rpm, tpm, requests wanted, tokens wanted.
# Returns {'ok', requests, tokens} (requests 0: the buckets are empty), {'open', until} or
# {'half'} (the breaker is half-open: admissions go one by one, for the probe lease), or
# {'hold', until} (the provider's headers hold the deployment).
LEASE = (
    BUCKET
    + """
local now, rpm, tpm = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local want_r, want_t = tonumber(ARGV[4]), tonumber(ARGV[5])
local u = tonumber(redis.call('HGET', KEYS[2], 'u'))
if u then
  if now < u then return {'open', fmt(u)} end
  return {'half'}
end
if rpm <= 0 and tpm <= 0 then
  local b = tonumber(redis.call('HGET', KEYS[1], 'b')) or 0
  if b > now then return {'hold', fmt(b)} end
  return {'ok', want_r, want_t}
end
local r, t, l, b = load_bucket(KEYS[1], now, rpm, tpm)
if b > now then return {'hold', fmt(b)} end
local gr, gt = want_r, want_t
if rpm > 0 then gr = math.max(0, math.min(want_r, math.floor(r + EPS))) end
if tpm > 0 then gt = math.max(0, math.min(want_t, math.floor(t + EPS))) end
if gr <= 0 or (tpm > 0 and want_t > 0 and gt <= 0) then return {'ok', 0, 0} end
if rpm > 0 then r = r - gr end
if tpm > 0 then t = t - gt end
save_bucket(KEYS[1], now, r, t, l, b)
return {'ok', gr, gt}
"""
)
