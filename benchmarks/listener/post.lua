-- wrk script: every request POSTs one callSummary event as Callsavvy sends it (values as strings).
wrk.method = "POST"
wrk.path = "/"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"event":"callSummary","call_direction":"Incoming","call_department":"Support",' ..
           '"caller_number":"+2348012345678","recording_url":"https://recordings.example/CALL1.mp3",' ..
           '"call_duration":"65","call_status":"finished"}'

-- wrk counts answers that are not 2xx or 3xx; a benchmark that measured errors would be worthless.
function done(summary, latency, requests)
  io.write(string.format("non-200 answers: %d\n", summary.errors.status))
end
