-- wrk script: every request is the getSummary call as callsavvy sends it (POST, JSON body "{}", its headers).
wrk.method = "POST"
wrk.path = "/v1/getSummary"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"
wrk.headers["User-Agent"] = "callsavvy-bench/0.1"
wrk.headers["Public-Key"] = "TEST-hdo76HDCGAjfig4jbnyUI4734BNDY"
wrk.headers["Private-Key"] = "TEST-934HDHD84JDVBPSW73BYjegh494WD9084NFUih34-9974r"
wrk.body = "{}"

-- wrk counts answers that are not 2xx or 3xx; a benchmark that measured errors would be worthless.
function done(summary, latency, requests)
  io.write(string.format("non-200 answers: %d\n", summary.errors.status))
end
