-- harvest.lua - harvest defence (DESIGN.md §4a): unknown commands and
-- recipients the MTA refused, per session (rules/harvest.rules) and per
-- client network across sessions (test rules t-harvest-net-*, 3/1h).
dofile(lib)

-- After a 421 every later callback of the session answers the same 421.
-- Only sequences libmilter accepts are sent: after a refused MAIL or
-- DATA it ignores RCPT or EOM (no reply at all), as a real MTA never
-- sends them. The 421 text is checked in the log and, on the wire, by
-- milter_raw.py (miltertest shows reply text only at EOM, which a
-- closed session never reaches).
local function closed(conn, qid)
  T.rcpt(conn, "<next@example.net>", "y", false, "valid rcpt after 421")
  T.step(conn, "unknown after 421", "y", mt.unknown(conn, "NOOP"))
  T.step(conn, "data after 421", "y", mt.data(conn))
  T.mail(conn, "<again@example.com>", qid, nil, "y")
  T.helo(conn, "again.example", nil, "y")
  T.mail(conn, "<again2@example.com>", qid, nil, "y")
end

T.run({
  -- 3 unknown commands pass, the 4th gets 421 4.7.0, then everything
  unknown = function()
    local conn = T.open("203.0.113.5", 25)
    T.helo(conn, "harvester.example")
    T.mail(conn, "<h@harvester.example>", "QHARVUNK", nil, "c")
    T.rcpt(conn, "<first@example.net>", "c")
    for i = 1, 3 do
      T.step(conn, "unknown " .. i, "c", mt.unknown(conn, "EXPN root"))
    end
    T.step(conn, "unknown 4", "y", mt.unknown(conn, "EXPN root"))
    closed(conn, "QHARVUNK2")
    mt.disconnect(conn)
  end,
  -- 5 refused recipients pass, the 6th gets 421, then everything
  bad_rcpts = function()
    local conn = T.connect()
    T.options(conn, { RCPT_REJ = true })
    mt.macro(conn, SMFIC_CONNECT, "{daemon_port}", "25")
    T.step(conn, "connect", "c",
      mt.conninfo(conn, "harvester.example", "198.51.100.5"))
    T.helo(conn, "harvester.example")
    T.mail(conn, "<h@harvester.example>", "QHARVBAD", nil, "c")
    for i = 1, 5 do
      T.rcpt(conn, "<nobody" .. i .. "@example.net>", "c", true)
    end
    T.rcpt(conn, "<nobody6@example.net>", "y", true)
    closed(conn, "QHARVBAD2")
    mt.disconnect(conn)
  end,
  -- per network: 3 refused recipients spend the /24's budget (3/1h);
  -- a new session from that /24 is refused at connect, one from the next
  -- /24 is not; the 4th refused recipient of the first session gets 421.
  net = function()
    local a = T.open("10.77.1.5", 25)
    T.helo(a, "harvester.example")
    T.mail(a, "<h@harvester.example>", "QHARVNET", nil, "c")
    for i = 1, 3 do
      T.rcpt(a, "<nobody" .. i .. "@example.net>", "c", true)
    end
    local b = T.open("10.77.1.200", 25, "y")
    T.helo(b, "harvester.example", nil, "y")
    mt.disconnect(b)
    local c = T.open("10.77.2.1", 25, "c")
    mt.disconnect(c)
    T.rcpt(a, "<nobody4@example.net>", "y", true)
    mt.disconnect(a)
  end,
})
