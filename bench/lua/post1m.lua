-- wrk script for bench/output.py's /echo workload: every request is a POST
-- with a 1 MiB body (wrk adds Content-Length). The server echoes it back.
wrk.method = "POST"
wrk.body = string.rep("0123456789abcdef", 65536)   -- 16 B x 65536 = 1 MiB
wrk.headers["Content-Type"] = "application/octet-stream"
