-- serve_post.lua - wrk script for scripts/bench-serve: every request POSTs
-- the picture named by DN_BENCH_PNG as image/png, on keep-alive
-- connections, to the URL given on wrk's command line.
local f = assert(io.open(os.getenv("DN_BENCH_PNG"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
wrk.headers["Content-Type"] = "image/png"
f:close()
