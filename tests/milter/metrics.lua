-- metrics.lua - known traffic for instance C of run.sh (metrics_file and
-- log_privacy; rules in C/t-metrics.rules). metrics.sh counts what this
-- sends and checks the metrics file and the log against it:
--   4 connections, 4 MAIL FROM, 5 RCPT TO (none refused by the MTA),
--   reject 2 (m-reject, m-helo), tempfail 1 (m-rate), dry-run 1 (m-dry),
--   3 store calls (m-rate: each RCPT of the authenticated session).
dofile(lib)

T.run({
  traffic = function()
    -- m-reject: 550 at MAIL, the reply names sender and client IP
    local conn = T.open("192.0.2.50", 25)
    T.helo(conn, "client.example.net")
    T.mail(conn, "<bad@example.org>", "QMREJ", nil, "y")
    mt.disconnect(conn)

    -- m-rate 2/1h per login: two RCPTs pass, the third is 450
    conn = T.open("192.0.2.51", 587)
    T.helo(conn, "client.example.net", "TLSv1.3")
    T.mail(conn, "<metricuser@example.com>", "QMRATE", "metricuser", "c")
    T.rcpt(conn, "<r1@example.net>", "c")
    T.rcpt(conn, "<r2@example.net>", "c")
    T.rcpt(conn, "<r3@example.net>", "y")
    mt.disconnect(conn)

    -- m-dry: a dry-run reject continues; a whole message goes through
    conn = T.open("192.0.2.52", 25)
    T.helo(conn, "client.example.net")
    T.mail(conn, "<s@example.com>", "QMDRY", nil, "c")
    T.rcpt(conn, "<dry@example.org>", "c")
    T.rcpt(conn, "<ok@example.org>", "c")
    T.step(conn, "data", "c", mt.data(conn))
    T.step(conn, "eom", "c", mt.eom(conn))
    mt.disconnect(conn)

    -- m-helo: the HELO is the client's address literal, echoed back
    conn = T.open("192.0.2.53", 25)
    T.helo(conn, "[192.0.2.53]")
    T.mail(conn, "<helo@example.org>", "QMHELO", nil, "y")
    mt.disconnect(conn)
  end,
  -- one more connection, no rule fires: warden still answers
  ping = function()
    local conn = T.open("192.0.2.54", 25)
    T.helo(conn, "client.example.net")
    T.mail(conn, "<s@example.com>", "QMPING", nil, "c")
    mt.disconnect(conn)
  end,
})
