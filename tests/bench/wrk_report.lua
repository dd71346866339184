-- wrk script for the servekit benchmark: POSTs one v2 JSON body and prints a one-line JSON summary.
-- The body is read from the file named by SERVEKIT_BENCH_BODY, so every target gets the same bytes.

local path = os.getenv("SERVEKIT_BENCH_BODY")
if path == nil then
  error("SERVEKIT_BENCH_BODY is not set")
end
local f = assert(io.open(path, "rb"))
local body = f:read("*a")
f:close()

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'SERVEKIT_BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, '
      .. '"p50_us": %d, "p90_us": %d, "p99_us": %d, "mean_us": %.1f, "max_us": %d, '
      .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
