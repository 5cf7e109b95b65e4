-- wrk script for bench/peers.py's hello-close workload: every request asks the
-- server to close the connection after its response, so wrk opens a new
-- connection per request (accept, read, respond, close on every request).
wrk.headers["Connection"] = "close"
