-- submission.lua - AUTH and TLS sequencing of rules/submission.rules
-- (DESIGN.md §4a). Reply texts are checked by run.sh in the decision log
-- and, on the wire, by milter_raw.py (miltertest shows reply text only
-- at EOM).
dofile(lib)

T.run({
  -- port 587 without AUTH: MAIL FROM gets 530 5.7.0 (SMFIR_REPLYCODE)
  no_auth_587 = function()
    local conn = T.open("192.0.2.10", 587)
    T.helo(conn, "client.example.net")
    T.mail(conn, "<alice@example.com>", "QSUBNOAUTH", nil, "y")
    mt.disconnect(conn)
  end,
  -- AUTH without TLS on 587: 538 5.7.11
  auth_no_tls = function()
    local conn = T.open("192.0.2.11", 587)
    T.helo(conn, "client.example.net")
    T.mail(conn, "<alice@example.com>", "QSUBNOTLS", "alice", "y")
    mt.disconnect(conn)
  end,
  -- AUTH after STARTTLS on 587: the whole transaction continues
  auth_tls = function()
    local conn = T.open("192.0.2.12", 587)
    T.helo(conn, "client.example.net", "TLSv1.3")
    T.mail(conn, "<alice@example.com>", "QSUBTLS", "alice", "c")
    T.rcpt(conn, "<bob@example.net>", "c")
    T.step(conn, "data", "c", mt.data(conn))
    T.step(conn, "eom", "c", mt.eom(conn))
    mt.disconnect(conn)
  end,
  -- port 25 without AUTH: nothing to enforce
  port25 = function()
    local conn = T.open("192.0.2.13", 25)
    T.helo(conn, "mx.sender.example")
    T.mail(conn, "<someone@sender.example>", "QSUBPORT25", nil, "c")
    T.rcpt(conn, "<bob@example.net>", "c")
    T.step(conn, "data", "c", mt.data(conn))
    T.step(conn, "eom", "c", mt.eom(conn))
    mt.disconnect(conn)
  end,
})
