-- wrk script for the Strongbox benchmark. The scenario comes from BENCH_SCENARIO:
--   status      GET /v1/status                       (ceiling: no store, no crypto)
--   probe       GET /bench/lookup/{token}            (ceiling: point read, no crypto, no audit)
--   get_token   GET /v1/user/token/{token}
--   get_email   GET /v1/user/email/{email}
--   post        POST /v1/user with a unique body
--   put         PUT /v1/user/token/{token}
--   mixed       the four vault operations in turn (GET by token, GET by email, PUT, POST)
--   v2_get_token, v2_get_email, v2_post, v2_put
--               the same four through Databunker Pro's v2 API (POST /v2/UserGet,
--               /v2/UserCreate, /v2/UserUpdate), in the main tenant
--   v2_bulk     POST /v2/UserCreateBulk with 1,000 new people per call
--   t_get_token POST /v2/UserGet by token in a tenant (X-Bunker-Tenant: BENCH_TENANT,
--               its admin token in BENCH_TENANT_TOKEN, its users in BENCH_TOKENS)
--   v2_token_create  POST /v2/TokenCreate of a card number
--   v2_token_get     POST /v2/TokenGet of a card token (BENCH_TOKENS: token uuids)
--   r_get_token POST /v2/UserGet by token with a role's token (BENCH_ROLE_TOKEN), its
--               policies deciding field by field
--   x_get_token POST /v2/UserGet by token with that person's own access token
--               (BENCH_TOKENS: `<record token> <access token>` lines)
--   v2_search   POST /v2/UserSearch of a person's email with a typo (`exmple`),
--               BENCH_UNLOCK the unlock uuid
-- BENCH_TOKENS names a file with one user token per line (user i on line i+1);
-- users were created as bench{i}@bench.example. BENCH_RUN makes new logins unique.

local scenario = os.getenv("BENCH_SCENARIO")
local root = os.getenv("BENCH_ROOT_TOKEN")
local run = os.getenv("BENCH_RUN") or "0"
local unlock = os.getenv("BENCH_UNLOCK") or ""
local tokens = {}
local own = {}
local n = 0
local counter = 0
local thread_id = 0

local threads = {}
local next_id = 0
function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  thread_id = tid or 0
  local path = os.getenv("BENCH_TOKENS")
  if path then
    for line in io.lines(path) do
      n = n + 1
      -- `<record token> <access token>` lines (x_get_token) or one token per line.
      local t, x = line:match("^(%S+) (%S+)$")
      tokens[n] = t or line
      own[n] = x
    end
  end
  math.randomseed(os.time() + thread_id * 7919)
  counter = math.random(math.max(n, 1))
  wrk.headers["X-Bunker-Token"] = root
  if scenario == "post" or scenario == "put" or scenario == "mixed" or scenario:sub(1, 3) == "v2_"
      or scenario == "x_get_token" then
    wrk.headers["Content-Type"] = "application/json"
  end
  if scenario == "r_get_token" then
    wrk.headers["Content-Type"] = "application/json"
    wrk.headers["X-Bunker-Token"] = os.getenv("BENCH_ROLE_TOKEN")
  end
  if scenario == "t_get_token" then
    wrk.headers["Content-Type"] = "application/json"
    wrk.headers["X-Bunker-Tenant"] = os.getenv("BENCH_TENANT")
    wrk.headers["X-Bunker-Token"] = os.getenv("BENCH_TENANT_TOKEN")
  end
end

local function pick()
  counter = counter % n + 1
  return counter
end

local function mixed()
  counter = counter + 1
  local k = counter % 4
  if k == 0 then
    return wrk.format("GET", "/v1/user/token/" .. tokens[pick()])
  elseif k == 1 then
    return wrk.format("GET", "/v1/user/email/bench" .. (pick() - 1) .. "@bench.example")
  elseif k == 2 then
    return wrk.format("PUT", "/v1/user/token/" .. tokens[pick()], nil, '{"visits":' .. counter .. '}')
  end
  local id = run .. "-m" .. thread_id .. "-" .. counter
  return wrk.format("POST", "/v1/user", nil, '{"login":"mix-' .. id .. '","email":"mix-' .. id .. '@bench.example"}')
end

request = function()
  if scenario == "mixed" then
    return mixed()
  elseif scenario == "status" then
    return wrk.format("GET", "/v1/status")
  elseif scenario == "probe" then
    return wrk.format("GET", "/bench/lookup/" .. tokens[pick()])
  elseif scenario == "get_token" then
    return wrk.format("GET", "/v1/user/token/" .. tokens[pick()])
  elseif scenario == "get_email" then
    return wrk.format("GET", "/v1/user/email/bench" .. (pick() - 1) .. "@bench.example")
  elseif scenario == "post" then
    counter = counter + 1
    local id = run .. "-" .. thread_id .. "-" .. counter
    local body = '{"login":"new-' .. id .. '","email":"new-' .. id .. '@bench.example",' ..
      '"name":"New User ' .. id .. '","address":{"city":"Leeds","zip":"LS1 4AP"}}'
    return wrk.format("POST", "/v1/user", nil, body)
  elseif scenario == "put" then
    local i = pick()
    return wrk.format("PUT", "/v1/user/token/" .. tokens[i], nil, '{"visits":' .. counter .. '}')
  elseif scenario == "v2_token_create" then
    return wrk.format("POST", "/v2/TokenCreate", nil, '{"tokentype":"creditcard","record":"4532015112830366"}')
  elseif scenario == "x_get_token" then
    local i = pick()
    -- Headers given here replace wrk.headers: the content type goes along.
    return wrk.format("POST", "/v2/UserGet", {["X-Bunker-Token"] = own[i], ["Content-Type"] = "application/json"},
      '{"mode":"token","identity":"' .. tokens[i] .. '"}')
  elseif scenario == "v2_token_get" then
    return wrk.format("POST", "/v2/TokenGet", nil, '{"token":"' .. tokens[pick()] .. '"}')
  elseif scenario == "v2_get_token" or scenario == "t_get_token" or scenario == "r_get_token" then
    return wrk.format("POST", "/v2/UserGet", nil, '{"mode":"token","identity":"' .. tokens[pick()] .. '"}')
  elseif scenario == "v2_get_email" then
    return wrk.format("POST", "/v2/UserGet", nil,
      '{"mode":"email","identity":"bench' .. (pick() - 1) .. '@bench.example"}')
  elseif scenario == "v2_post" then
    counter = counter + 1
    local id = run .. "-" .. thread_id .. "-" .. counter
    local body = '{"profile":{"login":"v2-' .. id .. '","email":"v2-' .. id .. '@bench.example",' ..
      '"name":"New User ' .. id .. '","address":{"city":"Leeds","zip":"LS1 4AP"}}}'
    return wrk.format("POST", "/v2/UserCreate", nil, body)
  elseif scenario == "v2_bulk" then
    counter = counter + 1
    local parts = {}
    for i = 1, 1000 do
      local id = run .. "-" .. thread_id .. "-" .. counter .. "-" .. i
      parts[i] = '{"profile":{"login":"bulk-' .. id .. '","email":"bulk-' .. id .. '@bench.example",' ..
        '"name":"Bulk User ' .. id .. '"}}'
    end
    return wrk.format("POST", "/v2/UserCreateBulk", nil, '{"records":[' .. table.concat(parts, ",") .. ']}')
  elseif scenario == "v2_search" then
    return wrk.format("POST", "/v2/UserSearch", nil,
      '{"identity":"bench' .. (pick() - 1) .. '@bench.exmple","unlockuuid":"' .. unlock ..
      '","limit":10}')
  elseif scenario == "v2_put" then
    counter = counter + 1
    return wrk.format("POST", "/v2/UserUpdate", nil,
      '{"mode":"token","identity":"' .. tokens[pick()] .. '","profile":{"visits":' .. counter .. '}}')
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"non2xx":%d,"socket_errors":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
