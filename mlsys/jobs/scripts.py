"""The Lua scripts of the job engine: every change of a job's state happens in one of them, so
it is atomic with the indexes, the TTLs and the completion signal that go with it.

Scripts build their keys from the job id with the helpers below (the same layout as
`mlsys.jobs.keys`), so a single Redis, not a cluster, is assumed (Memorystore STANDARD_HA).
"""

from __future__ import annotations

from mlsys.jobs.keys import PREFIX

# Shared by every script. `touch` renews the TTL of a live job on activity; `set_state` moves a
# job between the per-state listing indexes; `finish` ends a job once and signals waiters.
_LIB = """
local PREFIX = '__PREFIX__'
local function jkey(id) return PREFIX .. 'job:' .. id end
local function related(id)
  return {jkey(id), jkey(id) .. ':units', jkey(id) .. ':progress'}
end
local function expire_all(id, ms)
  for _, key in ipairs(related(id)) do redis.call('PEXPIRE', key, ms) end
  local idem = redis.call('HGET', jkey(id), 'idem')
  if idem and idem ~= '' and redis.call('GET', idem) == id then redis.call('PEXPIRE', idem, ms) end
end
local function touch(id, live_ms)
  if tonumber(live_ms) > 0 then expire_all(id, live_ms) end
end
local function state_indexes(p, k, s)
  local base = PREFIX .. 'jobs'
  local pp = '|p=' .. string.len(p) .. ':' .. p
  local kk = '|k=' .. k
  local ss = '|s=' .. s
  return {base .. ss, base .. kk .. ss, base .. pp .. ss, base .. pp .. kk .. ss}
end
local function set_state(id, new)
  local job = jkey(id)
  local old = redis.call('HGET', job, 'state')
  if old == new then return end
  local p = redis.call('HGET', job, 'principal') or ''
  local k = redis.call('HGET', job, 'kind')
  local score = redis.call('HGET', job, 'score')
  for _, key in ipairs(state_indexes(p, k, old)) do redis.call('ZREM', key, id) end
  for _, key in ipairs(state_indexes(p, k, new)) do redis.call('ZADD', key, score, id) end
  redis.call('HSET', job, 'state', new)
end
-- A job that ends ends every unit not done with it (cancelled or failed), so no shard shows
-- "running" for good; one that had started gets its finish time.
local function end_units(id, state, now)
  local units = jkey(id) .. ':units'
  local all = redis.call('HGETALL', units)
  for i = 1, #all, 2 do
    local unit = cjson.decode(all[i + 1])
    if unit.state ~= 'done' then
      unit.state = state
      if unit.started_at then unit.finished_at = now end
      redis.call('HSET', units, all[i], cjson.encode(unit))
    end
  end
end
local function finish(id, state, fields, now, keep_ms)
  local job = jkey(id)
  set_state(id, state)
  if state ~= 'succeeded' then end_units(id, state, now) end
  redis.call('HSET', job, 'phase', state, 'finished_at', now)
  for k, v in pairs(fields) do redis.call('HSET', job, k, v) end
  redis.call('SREM', PREFIX .. 'active', id)
  expire_all(id, keep_ms)
  local done = job .. ':done'
  redis.call('DEL', done)
  redis.call('RPUSH', done, state)
  redis.call('PEXPIRE', done, keep_ms)
end
""".replace("__PREFIX__", PREFIX)


def script(body: str) -> str:
    return _LIB + body


# Record a new queued job with its first unit, in every listing index. With an idempotency key
# whose job still exists, changes nothing and returns that job's id.
# KEYS: the 8 listing indexes. ARGV: id, fields (JSON), score, first unit, idem key, live ms.
CREATE = script("""
local id = ARGV[1]; local idem = ARGV[5]
if idem ~= '' then
  local existing = redis.call('GET', idem)
  if existing and redis.call('EXISTS', jkey(existing)) == 1 then return existing end
  redis.call('SET', idem, id)
end
local fields = cjson.decode(ARGV[2])
for k, v in pairs(fields) do redis.call('HSET', jkey(id), k, v) end
redis.call('HSET', jkey(id), 'score', ARGV[3], 'idem', idem)
redis.call('HSET', jkey(id) .. ':units', ARGV[4], cjson.encode({state='queued', attempt=1}))
for _, key in ipairs(KEYS) do redis.call('ZADD', key, ARGV[3], id) end
redis.call('SADD', PREFIX .. 'active', id)
touch(id, ARGV[6])
return id
""")

# Forget a job that could not be enqueued. KEYS: the 8 listing indexes. ARGV: id.
DELETE = script("""
local id = ARGV[1]
local idem = redis.call('HGET', jkey(id), 'idem')
if idem and idem ~= '' and redis.call('GET', idem) == id then redis.call('DEL', idem) end
for _, key in ipairs(related(id)) do redis.call('DEL', key) end
for _, key in ipairs(KEYS) do redis.call('ZREM', key, id) end
redis.call('SREM', PREFIX .. 'active', id)
return 1
""")

# Claim a unit for one attempt. Returns "ok", "done" (already finished), "busy" (another live
# attempt holds the lease), "stale" (a newer attempt exists) or "over" (job no longer live).
# ARGV: id, unit, attempt, lease ms, now, worker, phase on first start ('' = none), live ms.
CLAIM = script("""
local id = ARGV[1]; local unit = ARGV[2]; local attempt = tonumber(ARGV[3])
local job = jkey(id); local units = job .. ':units'
local lease = PREFIX .. 'lease:' .. id .. ':' .. unit
local state = redis.call('HGET', job, 'state')
if state ~= 'queued' and state ~= 'running' then return 'over' end
local raw = redis.call('HGET', units, unit)
local current = {state='queued', attempt=0}
if raw then current = cjson.decode(raw) end
if current.state == 'done' then return 'done' end
if attempt < current.attempt then return 'stale' end
if redis.call('EXISTS', lease) == 1 then return 'busy' end
redis.call('SET', lease, tostring(attempt), 'PX', ARGV[4])
redis.call('HSET', units, unit,
  cjson.encode({state='running', attempt=attempt, worker=ARGV[6], given=current.given,
    started_at=ARGV[5]}))
if state == 'queued' then
  set_state(id, 'running')
  redis.call('HSET', job, 'started_at', ARGV[5])
end
if ARGV[7] ~= '' and redis.call('HGET', job, 'phase') == 'queued' then
  redis.call('HSET', job, 'phase', ARGV[7])
end
touch(id, ARGV[8])
return 'ok'
""")

# Renew a lease only while it is still this attempt's; a renewal is activity, so the job's
# records live on. ARGV: id, unit, attempt, lease ms, live ms.
RENEW = script("""
local lease = PREFIX .. 'lease:' .. ARGV[1] .. ':' .. ARGV[2]
if redis.call('GET', lease) == ARGV[3] then
  touch(ARGV[1], ARGV[5])
  return redis.call('PEXPIRE', lease, ARGV[4])
end
return 0
""")

# Drop a lease if it is still this attempt's. ARGV: id, unit, attempt.
RELEASE = script("""
local lease = PREFIX .. 'lease:' .. ARGV[1] .. ':' .. ARGV[2]
if redis.call('GET', lease) == ARGV[3] then return redis.call('DEL', lease) end
return 0
""")

# Mark a unit done (only by the attempt holding it, while the job is live) with its finish time
# and drop its lease; returns the number of shard units done, so the last shard knows it is
# last, or -1 if this attempt was superseded or the job ended. ARGV: id, unit, attempt, now.
DONE = script("""
local id = ARGV[1]; local unit = ARGV[2]; local attempt = tonumber(ARGV[3])
local units = jkey(id) .. ':units'
local lease = PREFIX .. 'lease:' .. id .. ':' .. unit
local raw = redis.call('HGET', units, unit)
if not raw then return -1 end
local current = cjson.decode(raw)
if current.attempt ~= attempt then return -1 end
if current.state == 'cancelled' or current.state == 'failed' then return -1 end
current.state = 'done'
current.finished_at = ARGV[4]
redis.call('HSET', units, unit, cjson.encode(current))
if redis.call('GET', lease) == tostring(attempt) then redis.call('DEL', lease) end
local done = 0
local all = redis.call('HGETALL', units)
for i = 1, #all, 2 do
  if string.sub(all[i], 1, 6) == 'shard:' and cjson.decode(all[i + 1]).state == 'done' then
    done = done + 1
  end
end
return done
""")

# Record the next attempt of a unit (queued, to be sent), keeping the count of attempts given
# back, unless the job already ended. ARGV: id, unit, attempt, live ms.
REQUEUE = script("""
local state = redis.call('HGET', jkey(ARGV[1]), 'state')
if state ~= 'queued' and state ~= 'running' then return 0 end
local units = jkey(ARGV[1]) .. ':units'
local raw = redis.call('HGET', units, ARGV[2])
local given = nil
if raw then given = cjson.decode(raw).given end
redis.call('HSET', units, ARGV[2],
  cjson.encode({state='queued', attempt=tonumber(ARGV[3]), given=given}))
touch(ARGV[1], ARGV[4])
return 1
""")

# Give back a running unit whose worker is stopping, without spending an attempt: drop its
# lease and queue the next attempt (a new fencing number, so the stopping attempt can no longer
# renew or finish it), counted as given back. Only the attempt's own holder (`worker` as it
# claimed; '' = whoever holds it) gives it back. Returns 'given' (send attempt + 1), 'queued'
# (that attempt was never claimed: send it again), 'moved' (someone moved the unit on) or
# 'over' (the job ended). ARGV: id, unit, attempt, holder, live ms.
GIVE_BACK = script("""
local id = ARGV[1]; local unit = ARGV[2]; local attempt = tonumber(ARGV[3])
local units = jkey(id) .. ':units'
local lease = PREFIX .. 'lease:' .. id .. ':' .. unit
local state = redis.call('HGET', jkey(id), 'state')
if state ~= 'queued' and state ~= 'running' then return 'over' end
local raw = redis.call('HGET', units, unit)
if not raw then return 'moved' end
local current = cjson.decode(raw)
if current.attempt ~= attempt then return 'moved' end
if current.state == 'queued' then return 'queued' end
if current.state ~= 'running' then return 'moved' end
if ARGV[4] ~= '' and current.worker ~= ARGV[4] then return 'moved' end
local held = redis.call('GET', lease)
if held and held ~= tostring(attempt) then return 'moved' end
redis.call('DEL', lease)
redis.call('HSET', units, unit,
  cjson.encode({state='queued', attempt=attempt + 1, given=(current.given or 0) + 1}))
touch(id, ARGV[5])
return 'given'
""")

# Freeze a predict job's plan: the first writer wins, so every shard reads one plan. Declares
# the shard units and the commit unit. Returns the stored plan (JSON).
# ARGV: id, plan JSON, prepared JSON, rows_total, shard count, live ms.
PLAN = script("""
local id = ARGV[1]; local job = jkey(id)
if redis.call('HSETNX', job, 'plan', ARGV[2]) == 1 then
  redis.call('HSET', job, 'prepared', ARGV[3], 'rows_total', ARGV[4], 'shards_total', ARGV[5])
  if redis.call('HGET', job, 'phase') == 'planning' then
    redis.call('HSET', job, 'phase', 'predicting')
  end
end
local units = job .. ':units'
local queued = cjson.encode({state='queued', attempt=1})
local plan = redis.call('HGET', job, 'plan')
local n = #cjson.decode(plan)
for i = 0, n - 1 do redis.call('HSETNX', units, 'shard:' .. i, queued) end
redis.call('HSETNX', units, 'commit', queued)
touch(id, ARGV[6])
return plan
""")

# Rows done by a shard: the maximum over its attempts, so a redone shard never makes the job's
# progress go backwards. Once the job ended (a cancel answered) its progress stays as it was
# then, and its record keeps its end-of-life expiry. ARGV: id, shard index, rows done by this
# attempt, live ms.
PROGRESS = script("""
local key = jkey(ARGV[1]) .. ':progress'
local rows = tonumber(ARGV[3])
local current = tonumber(redis.call('HGET', key, ARGV[2]) or '0')
local state = redis.call('HGET', jkey(ARGV[1]), 'state')
if state ~= 'queued' and state ~= 'running' then return current end
if rows > current then redis.call('HSET', key, ARGV[2], rows) end
touch(ARGV[1], ARGV[4])
return math.max(rows, current)
""")

# Move a live job to a final state (first writer wins). Returns 1, 0 (already final) or -1
# (no such job). ARGV: id, state, fields JSON, now, keep ms.
FINISH = script("""
local state = redis.call('HGET', jkey(ARGV[1]), 'state')
if not state then return -1 end
if state ~= 'queued' and state ~= 'running' then return 0 end
finish(ARGV[1], ARGV[2], cjson.decode(ARGV[3]), ARGV[4], ARGV[5])
return 1
""")

# Cancel a live job unless its commit has started: the commit and cancel race on the phase,
# whoever flips it first wins. Returns 'cancelled', 'committing', 'already:{final state}' or
# 'missing'. ARGV: id, now, keep ms.
CANCEL = script("""
local job = jkey(ARGV[1])
local state = redis.call('HGET', job, 'state')
if not state then return 'missing' end
if state ~= 'queued' and state ~= 'running' then return 'already:' .. state end
local phase = redis.call('HGET', job, 'phase')
if phase == 'committing' or phase == 'committed' then return 'committing' end
finish(ARGV[1], 'cancelled', {cancel_requested='1'}, ARGV[2], ARGV[3])
return 'cancelled'
""")

# Enter the commit phase unless the job was cancelled first. Returns 1 if the commit may run.
# ARGV: id, live ms.
BEGIN_COMMIT = script("""
local job = jkey(ARGV[1])
if redis.call('HGET', job, 'state') ~= 'running' then return 0 end
local phase = redis.call('HGET', job, 'phase')
if phase ~= 'committing' and phase ~= 'committed' then
  redis.call('HSET', job, 'phase', 'committing')
end
touch(ARGV[1], ARGV[2])
return 1
""")

# Record that a job's rows landed (how many), before its staging is dropped and it is marked
# succeeded: a commit re-run after a crash in between finishes from here. ARGV: id, rows.
COMMITTED = script("""
local job = jkey(ARGV[1])
local state = redis.call('HGET', job, 'state')
if state ~= 'queued' and state ~= 'running' then return 0 end
redis.call('HSET', job, 'phase', 'committed', 'rows_written', ARGV[2])
return 1
""")
