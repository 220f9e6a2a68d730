-- wrk script for the soak test (bench/soak.py): a paced mix of the vault's work.
-- Out of every 10 requests: 4 reads (by token, by email), 2 updates, 2 creates,
-- 1 erasure of a user this connection created, 1 page of the admin audit log.
-- Each connection waits SOAK_DELAY_MS between requests, so the load is steady
-- rather than as fast as the server goes. BENCH_TOKENS and BENCH_RUN as in wrk.lua.

local root = os.getenv("BENCH_ROOT_TOKEN")
local run = os.getenv("BENCH_RUN") or "0"
local pause = tonumber(os.getenv("SOAK_DELAY_MS") or "10")
local tokens = {}
local n = 0
local counter = 0
local thread_id = 0
-- Tokens this thread created and has not erased yet (a FIFO).
local created = {}
local first, last = 1, 0
local pending_create = false

local next_id = 0
function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
end

function init(args)
  thread_id = tid or 0
  for line in io.lines(os.getenv("BENCH_TOKENS")) do
    n = n + 1
    tokens[n] = line
  end
  math.randomseed(os.time() + thread_id * 7919)
  counter = math.random(n)
  wrk.headers["X-Bunker-Token"] = root
  wrk.headers["Content-Type"] = "application/json"
end

function delay()
  return pause
end

local function pick()
  return math.random(n)
end

request = function()
  counter = counter + 1
  local k = counter % 10
  pending_create = false
  if k <= 1 then
    return wrk.format("GET", "/v1/user/token/" .. tokens[pick()])
  elseif k <= 3 then
    return wrk.format("GET", "/v1/user/email/bench" .. (pick() - 1) .. "@bench.example")
  elseif k <= 5 then
    return wrk.format("PUT", "/v1/user/token/" .. tokens[pick()], nil, '{"visits":' .. counter .. '}')
  elseif k <= 7 then
    pending_create = true
    local id = run .. "-" .. thread_id .. "-" .. counter
    return wrk.format("POST", "/v1/user", nil,
      '{"login":"soak-' .. id .. '","email":"soak-' .. id .. '@bench.example","name":"Soak ' .. id .. '"}')
  elseif k == 8 and first <= last then
    local t = created[first]
    created[first] = nil
    first = first + 1
    return wrk.format("DELETE", "/v1/user/token/" .. t)
  end
  return wrk.format("GET", "/v1/audit/admin?offset=0&limit=20")
end

function response(status, headers, body)
  if pending_create and status == 200 then
    local t = body:match('"token":"([%x%-]+)"')
    if t then
      last = last + 1
      created[last] = t
    end
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"non2xx":%d,"socket_errors":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
