-- wrk hook used by proxy_bench.sh: prints one machine-readable line with the
-- exact counts and latency percentiles (microseconds), so the script does not
-- have to parse wrk's human-oriented units (us/ms/s, k/M).
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK_RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d "
      .. "err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d\n",
    summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
