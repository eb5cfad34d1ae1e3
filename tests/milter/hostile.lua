-- hostile.lua - client text with CR, LF, 0x01, 0x7f, quotes and
-- backslashes in HELO and MAIL FROM, as long as miltertest allows
-- (about 1,000 bytes an argument: Debian 12's miltertest overflows a
-- buffer beyond; milter_raw.py sends 10 KB). warden must answer; run.sh
-- checks that the log line has no raw control bytes and is bounded.
dofile(lib)

T.run({
  long = function()
    local unit = "a\r\nb\1c\127\"d\\e\t"
    local junk = string.rep(unit, math.floor(1000 / #unit))
    local conn = T.open("192.0.2.68", 587)
    T.helo(conn, junk)
    T.mail(conn, "<" .. junk .. "@example.com>", "QHOSTILE1", nil, "y")
    mt.disconnect(conn)
    -- port 25: the transaction goes on; RCPT without {rcpt_addr} (the
    -- macro buffer of miltertest is smaller still)
    conn = T.open("192.0.2.69", 25)
    T.helo(conn, junk)
    T.mail(conn, "<" .. junk .. "@example.com>", "QHOSTILE1B", nil, "c")
    T.step(conn, "rcpt", "c", mt.rcptto(conn, "<" .. junk .. "@example.net>"))
    T.step(conn, "unknown", "c", mt.unknown(conn, junk))
    mt.disconnect(conn)
  end,
})
