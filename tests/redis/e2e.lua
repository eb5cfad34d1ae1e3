-- e2e.lua - warden with store.backend = "redis", one transaction per run,
-- driven by tests/redis/run.sh. Globals from miltertest -D: lib
-- (tests/milter/common.lua), sock, case, user (the AUTH login; the
-- rules of run.sh pick on_error by it), qid, ip, and want: one reply
-- letter per RCPT (c continue, y reply code).
dofile(lib)

T.run({
  rcpts = function()
    local conn = T.open(ip, 25)
    T.helo(conn, "client.example.net")
    T.mail(conn, "<" .. user .. "@example.com>", qid, user, "c")
    for i = 1, #want do
      T.rcpt(conn, "<r" .. i .. "@example.net>", string.sub(want, i, i))
    end
    mt.disconnect(conn)
  end,
})
