-- wrk script of `make bench`: replay a request mix and print the result as one JSON line.
--
--   wrk -t2 -c32 -d20s --latency -s loadtest/mix.lua http://nginx -- /tmp/mix.tsv
--
-- The mix file has one request per line, `METHOD<TAB>PATH[<TAB>Header: value]...[<TAB>body=TEXT]`,
-- already expanded in proportion to the mix's weights (tools/bench/load.py writes it); a field
-- `body=TEXT` is the request's body (no header name holds `=`). Each thread cycles through it
-- from its own starting point, so every thread sends the same mix.
-- The last line of output is `WRK_JSON {...}`: counts, errors and latency percentiles (us).
-- With WRK_COUNT_STATUSES=1 in the environment it also counts the responses by status
-- ("statuses": {"200": n, "503": m}), so an error can be told apart; that costs the client
-- a little per response (wrk hands each response to Lua), so the baselines go without it.

local requests_list = {}
local position = 1
local thread_count = 0
local threads = {}
statuses = {}  -- global: done() reads each thread's copy with thread:get

if os.getenv("WRK_COUNT_STATUSES") == "1" then
  function response(status, headers, body)
    statuses[status] = (statuses[status] or 0) + 1
  end
end

local function split(line, sep)
  local fields = {}
  for field in string.gmatch(line, "([^" .. sep .. "]+)") do
    table.insert(fields, field)
  end
  return fields
end

local function load_mix(path)
  local file = assert(io.open(path, "r"), "cannot open the mix file " .. tostring(path))
  local loaded = {}
  for line in file:lines() do
    if line ~= "" and string.sub(line, 1, 1) ~= "#" then
      local fields = split(line, "\t")
      local headers = {}
      local body = nil
      for i = 3, #fields do
        if string.sub(fields[i], 1, 5) == "body=" then
          body = string.sub(fields[i], 6)
        else
          local name, value = string.match(fields[i], "^([^:]+):%s*(.*)$")
          if name then
            headers[name] = value
          end
        end
      end
      table.insert(loaded, wrk.format(fields[1], fields[2], headers, body))
    end
  end
  file:close()
  assert(#loaded > 0, "the mix file has no requests")
  return loaded
end

function setup(thread)
  thread_count = thread_count + 1
  thread:set("thread_number", thread_count)
  table.insert(threads, thread)
end

local function statuses_json()
  local totals = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses") or {}) do
      totals[status] = (totals[status] or 0) + count
    end
  end
  local parts = {}
  for status, count in pairs(totals) do
    table.insert(parts, string.format('"%d":%d', status, count))
  end
  table.sort(parts)
  return "{" .. table.concat(parts, ",") .. "}"
end

function init(args)
  requests_list = load_mix(args[1])
  -- Spread the threads' starting points over the mix.
  position = ((thread_number or 1) - 1) * math.floor(#requests_list / 7 + 1) % #requests_list + 1
end

function request()
  local req = requests_list[position]
  position = position % #requests_list + 1
  return req
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d,"mean":%.1f},"statuses":%s}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean, statuses_json()))
end
