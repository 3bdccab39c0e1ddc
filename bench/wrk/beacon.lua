-- wrk script for the Beacon benchmarks (bench/lib/wrk.ts runs it).
-- BENCH_MODE=get: the URL as given (a plain GET over keep-alive).
-- BENCH_MODE=put: PUT a fresh key per request (so every request is a new revision) with a JSON
--   body of BENCH_VALUE_BYTES bytes of value, under BENCH_PUT_PREFIX. BENCH_KEY_ORDER picks the
--   keys: sequential = <thread>-<n zero-padded> (one ascending run per wrk thread); spread =
--   <n mod 64>/<thread>-<n> (64 key ranges per thread, like one range per connection); unset =
--   <thread>-<n>; random = one of BENCH_KEY_SPACE keys <prefix>k00000… picked uniformly per request.
--   BENCH_API=etcd sends etcd's JSON gateway write instead: POST /v3/kv/put {"key","value"} in
--   base64, with BENCH_PUT_PREFIX as the key prefix.
-- BENCH_MODE=raw: BENCH_METHOD (default GET) to the URL's path with BENCH_BODY (JSON) when set.
-- done() prints one line "BENCH_RESULT {json}" that the TypeScript side parses.

local mode = os.getenv("BENCH_MODE") or "get"
local threads = 0

function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

-- Standard base64 (etcd's gateway takes keys and values as protobuf bytes in base64).
local b64chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function b64(data)
  local out = {}
  for i = 1, #data, 3 do
    local a, b, c = data:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local c1 = math.floor(n / 262144) % 64
    local c2 = math.floor(n / 4096) % 64
    local c3 = math.floor(n / 64) % 64
    local c4 = n % 64
    out[#out + 1] = b64chars:sub(c1 + 1, c1 + 1) .. b64chars:sub(c2 + 1, c2 + 1) ..
      (b and b64chars:sub(c3 + 1, c3 + 1) or "=") .. (c and b64chars:sub(c4 + 1, c4 + 1) or "=")
  end
  return table.concat(out)
end

if mode == "raw" then
  local method = os.getenv("BENCH_METHOD") or "GET"
  local body = os.getenv("BENCH_BODY") or ""
  local req
  function init(args)
    if body == "" then
      req = wrk.format(method, nil, {})
    else
      req = wrk.format(method, nil, { ["Content-Type"] = "application/json" }, body)
    end
  end
  function request()
    return req
  end
elseif mode == "put" and os.getenv("BENCH_KEY_ORDER") == "random" then
  local prefix = os.getenv("BENCH_PUT_PREFIX") or "/v1/kv/bench/put/"
  local size = tonumber(os.getenv("BENCH_VALUE_BYTES") or "128")
  local space = tonumber(os.getenv("BENCH_KEY_SPACE") or "10000")
  local api = os.getenv("BENCH_API") or "beacon"
  local headers = { ["Content-Type"] = "application/json" }
  local value = string.rep("v", size)
  local reqs = {}
  -- Every request of the key space built once per thread, so wrk's time goes to its sockets.
  function init(args)
    math.randomseed(1000 + tid)
    for i = 0, space - 1 do
      local key = prefix .. "k" .. string.format("%05d", i)
      if api == "etcd" then
        reqs[i + 1] = wrk.format("POST", "/v3/kv/put", headers, '{"key":"' .. b64(key) .. '","value":"' .. b64(value) .. '"}')
      else
        reqs[i + 1] = wrk.format("PUT", key, headers, '{"value":"' .. value .. '"}')
      end
    end
  end
  function request()
    return reqs[math.random(1, space)]
  end
elseif mode == "put" then
  local prefix = os.getenv("BENCH_PUT_PREFIX") or "/v1/kv/bench/put/"
  local size = tonumber(os.getenv("BENCH_VALUE_BYTES") or "128")
  local order = os.getenv("BENCH_KEY_ORDER") or ""
  local body = '{"value":"' .. string.rep("v", size) .. '"}'
  local headers = { ["Content-Type"] = "application/json" }
  local n = 0

  function request()
    n = n + 1
    local key
    if order == "spread" then
      key = tostring(n % 64) .. "/" .. tostring(tid) .. "-" .. tostring(n)
    elseif order == "sequential" then
      key = tostring(tid) .. "-" .. string.format("%012d", n)
    else
      key = tostring(tid) .. "-" .. tostring(n)
    end
    return wrk.format("PUT", prefix .. key, headers, body)
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"durationUs":%d,"bytes":%d,"errConnect":%d,"errRead":%d,"errWrite":%d,' ..
    '"errStatus":%d,"errTimeout":%d,"meanUs":%.1f,"maxUs":%d,"p50Us":%d,"p90Us":%d,"p99Us":%d,"p999Us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.max, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9)))
end
