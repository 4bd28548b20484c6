-- wrk script for bench/serve_bench.py: sends one request (method, headers, body from the
-- environment) and checks every response: status 200 and a body containing SERVE_BENCH_EXPECT.
-- Prints "CHECKED good=N bad=M" at the end so the bench can report failed calls.

local body = os.getenv("SERVE_BENCH_BODY")
local expect = os.getenv("SERVE_BENCH_EXPECT")
wrk.method = os.getenv("SERVE_BENCH_METHOD") or "GET"
if body and body ~= "" then
  wrk.body = body
end
for line in (os.getenv("SERVE_BENCH_HEADERS") or ""):gmatch("[^\n]+") do
  local name, value = line:match("^([^:]+):%s*(.*)$")
  if name then
    wrk.headers[name] = value
  end
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  good = 0
  bad = 0
end

function response(status, headers, response_body)
  if status == 200 and (expect == nil or response_body:find(expect, 1, true)) then
    good = good + 1
  else
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local g, b = 0, 0
  for _, thread in ipairs(threads) do
    g = g + thread:get("good")
    b = b + thread:get("bad")
  end
  io.write(string.format("CHECKED good=%d bad=%d\n", g, b))
end
