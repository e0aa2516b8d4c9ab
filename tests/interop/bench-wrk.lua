-- wrk script for scripts/bench-facilitator: POSTs facilitator request bodies read from a
-- file (one JSON body per line).
--   wrk ... -s bench-wrk.lua URL -- BODIES MODE THREADS
-- MODE "cycle": every thread sends every body, round and round (verify: one valid body is
-- enough, verify reserves nothing). MODE "once": thread i sends lines i, i+T, i+2T, ... once
-- each (settle: every request a distinct authorization); a thread that runs out stops
-- and the run is reported as exhausted.
-- A response counts as "ok" when it is a 200 with isValid:true or success:true.
-- done() prints one line: RESULT {json}.

local threads = {}
local created = 0

function setup(thread)
  thread:set("index", created)
  created = created + 1
  table.insert(threads, thread)
end

function init(args)
  local path, mode, nthreads = args[1], args[2], tonumber(args[3])
  cycle = (mode == "cycle")
  bodies = {}
  local i = 0
  for line in io.lines(path) do
    if cycle or i % nthreads == index then
      bodies[#bodies + 1] = line
    end
    i = i + 1
  end
  nextBody = 1
  ok, bad, exhausted = 0, 0, 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  local body = bodies[nextBody]
  if nextBody >= #bodies then
    if cycle then
      nextBody = 1
    else
      exhausted = 1
    end
  else
    nextBody = nextBody + 1
  end
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  if status == 200 and (body:find('"isValid":true', 1, true) or body:find('"success":true', 1, true)) then
    ok = ok + 1
  else
    bad = bad + 1
    if sample == nil then
      sample = string.format("%d %s", status, string.sub(body or "", 1, 300))
    end
  end
  if exhausted == 1 then
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local okAll, badAll, ex = 0, 0, 0
  for _, t in ipairs(threads) do
    local s = t:get("sample")
    if s ~= nil then
      io.write("FAILED " .. s .. "\n")
    end
    okAll = okAll + t:get("ok")
    badAll = badAll + t:get("bad")
    ex = ex + t:get("exhausted")
  end
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests":%d,"duration_us":%d,"p50_us":%.0f,"p90_us":%.0f,"p99_us":%.0f,"max_us":%.0f,"ok":%d,"bad":%d,"exhausted":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, okAll, badAll, ex,
    e.connect, e.read, e.write, e.status, e.timeout))
end
