-- wrk script for the soak test: cycles through v2 JSON (lean route), v1 JSON (KServe's app) and v2
-- with the binary tensor extension, each with a bearer token; prints a one-line JSON summary.
-- The bodies and the token are files in $SERVEKIT_SOAK_DIR (wrk's LuaJIT cannot pack floats).

local dir = os.getenv("SERVEKIT_SOAK_DIR")
if dir == nil then
  error("SERVEKIT_SOAK_DIR is not set")
end

local function read(name)
  local f = assert(io.open(dir .. "/" .. name, "rb"))
  local data = f:read("*a")
  f:close()
  return data
end

local prepared = {}
local counter = 0

function init(args)
  local auth = "Bearer " .. read("token")
  local json = { ["Content-Type"] = "application/json", ["Authorization"] = auth }
  local binary = {
    ["Content-Type"] = "application/octet-stream",
    ["Inference-Header-Content-Length"] = read("binary.len"),
    ["Authorization"] = auth,
  }
  prepared[1] = wrk.format("POST", "/v2/models/iris/infer", json, read("v2.json"))
  prepared[2] = wrk.format("POST", "/v1/models/iris:predict", json, read("v1.json"))
  prepared[3] = wrk.format("POST", "/v2/models/iris/infer", binary, read("binary.bin"))
end

function request()
  counter = counter + 1
  return prepared[(counter % #prepared) + 1]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'SERVEKIT_SOAK_JSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "max_us": %d, '
      .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
