-- wrk script for the Beacon benchmarks (bench/lib/wrk.ts runs it).
-- BENCH_MODE=get: the URL as given (a plain GET over keep-alive).
-- BENCH_MODE=put: PUT a fresh key per request (so every request is a new revision) with a JSON
--   body of BENCH_VALUE_BYTES bytes of value, under BENCH_PUT_PREFIX. BENCH_KEY_ORDER picks the
--   keys: sequential = <thread>-<n zero-padded> (one ascending run per wrk thread); spread =
--   <n mod 64>/<thread>-<n> (64 key ranges per thread, like one range per connection); unset =
--   <thread>-<n>.
-- done() prints one line "BENCH_RESULT {json}" that the TypeScript side parses.

local mode = os.getenv("BENCH_MODE") or "get"
local threads = 0

function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

if mode == "put" then
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
