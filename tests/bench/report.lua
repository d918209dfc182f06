-- wrk script of `make bench`.
--
-- With BENCH_REQUESTS_FILE set, each line of that file is one request,
-- "METHOD<TAB>PATH<TAB>TOKEN<TAB>BODY" (TOKEN and BODY may be empty; a token is sent as
-- `Authorization: Bearer TOKEN`); the threads cycle through them from different starting points.
-- Without it wrk sends its one static request, the cheapest way to load a single URL, with the
-- Authorization header BENCH_AUTHORIZATION when that is set. Either way `done` prints one line
-- of JSON that the harness parses.

local requests_file = os.getenv("BENCH_REQUESTS_FILE")
local authorization = os.getenv("BENCH_AUTHORIZATION")
local requests = {}
local next_index = 1
local threads_set_up = 0

-- At load time, before wrk builds its static request from wrk.headers.
if authorization then
  wrk.headers["Authorization"] = authorization
end

-- Defined only when needed: a script with a request() function makes wrk call Lua per request.
if requests_file then
  function setup(thread)
    threads_set_up = threads_set_up + 1
    thread:set("thread_number", threads_set_up)
  end

  function init(_)
    for line in io.lines(requests_file) do
      local method, path, token, body = line:match("^(%u+)\t([^\t]+)\t([^\t]*)\t(.*)$")
      local headers = {}
      if token ~= "" then
        headers["Authorization"] = "Bearer " .. token
      end
      if body == "" then
        body = nil
      else
        headers["Content-Type"] = "application/json"
      end
      requests[#requests + 1] = wrk.format(method, path, headers, body)
    end
    -- Each thread starts at its own place in the list, so they do not send the same requests.
    next_index = (thread_number * 7919) % #requests + 1
  end

  function request()
    next_index = next_index % #requests + 1
    return requests[next_index]
  end
end

function done(summary, latency, _)
  local errors = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "bytes": %d, '
      .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, '
      .. '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "max": %d, "mean": %.1f}}\n',
    summary.requests, summary.duration, summary.bytes,
    errors.connect, errors.read, errors.write, errors.status, errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean
  ))
end
