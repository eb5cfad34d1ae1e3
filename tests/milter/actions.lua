-- actions.lua - one scenario per action and reply form (DESIGN.md §3),
-- driven against the test rules of run.sh (t-*.rules) and the shipped
-- rules. Log lines are checked by run.sh.
dofile(lib)

-- A plain transaction up to DATA from ip with sender from.
local function upto_data(ip, from, qid)
  local conn = T.open(ip, 25)
  T.helo(conn, "client.example.net")
  T.mail(conn, from, qid, nil, "c")
  T.rcpt(conn, "<rcpt@example.net>", "c")
  T.step(conn, "data", "c", mt.data(conn))
  return conn
end

T.run({
  -- recipients-per-user style limit, rate 3/1m (burst 3): three RCPTs
  -- pass, the 4th and 5th get 450 4.7.1 (reply code), the text says
  -- "retry in 20s" (T = 60 s / 3; checked in the log).
  ratelimit = function()
    local conn = T.open("192.0.2.20", 587)
    T.helo(conn, "client.example.net", "TLSv1.3")
    T.mail(conn, "<ratetest@example.com>", "QRATE", "ratetest", "c")
    for i = 1, 3 do T.rcpt(conn, "<r" .. i .. "@example.net>", "c") end
    T.rcpt(conn, "<r4@example.net>", "y")
    T.rcpt(conn, "<r5@example.net>", "y")
    mt.disconnect(conn)
  end,
  -- a dry-run reject: continue, the log says "dryrun would=reject"
  dryrun = function()
    local conn = T.open("192.0.2.21", 25)
    T.helo(conn, "client.example.net")
    T.mail(conn, "<s@example.com>", "QDRY", nil, "c")
    T.rcpt(conn, "<dry@example.org>", "c")
    T.step(conn, "data", "c", mt.data(conn))
    T.step(conn, "eom", "c", mt.eom(conn))
    mt.disconnect(conn)
  end,
  -- tag at eom: the header is added with its template expanded
  tag = function()
    local conn = upto_data("192.0.2.22", "<tag@example.org>", "QTAG")
    T.step(conn, "eom", "c", mt.eom(conn))
    if not mt.eom_check(conn, MT_HDRADD, "X-Warden", "t-tag QTAG") then
      T.fail("eom: no header \"X-Warden: t-tag QTAG\" (got " ..
        tostring(mt.getheader(conn, "X-Warden", 0)) .. ")")
    end
    if mt.eom_check(conn, MT_QUARANTINE) then T.fail("eom: quarantined") end
    mt.disconnect(conn)
  end,
  -- quarantine at eom, and quarantine flagged at MAIL applied at eom
  quarantine = function()
    local conn = upto_data("192.0.2.23", "<quar@example.org>", "QQUAR")
    T.step(conn, "eom", "c", mt.eom(conn))
    if not mt.eom_check(conn, MT_QUARANTINE, "t-quarantine") then
      T.fail("eom: not quarantined with reason t-quarantine")
    end
    mt.disconnect(conn)
    conn = upto_data("192.0.2.23", "<quar-early@example.org>", "QQUAR2")
    T.step(conn, "eom", "c", mt.eom(conn))
    if not mt.eom_check(conn, MT_QUARANTINE, "t-quarantine-early") then
      T.fail("eom: flagged at MAIL, not quarantined at eom")
    end
    if mt.eom_check(conn, MT_HDRADD) then T.fail("eom: header added") end
    mt.disconnect(conn)
  end,
  -- a quarantine flagged at MAIL belongs to that message only: after
  -- RSET (abort) the next message of the session is not quarantined
  quarantine_rset = function()
    local conn = T.open("192.0.2.27", 25)
    T.helo(conn, "client.example.net")
    T.mail(conn, "<quar-early@example.org>", "QQUAR3", nil, "c")
    T.step(conn, "abort", "c", mt.abort(conn))
    -- libmilter sends no reply to abort; the last reply is still MAIL's
    T.mail(conn, "<plain@example.org>", "QQUAR4", nil, "c")
    T.rcpt(conn, "<rcpt@example.net>", "c")
    T.step(conn, "data", "c", mt.data(conn))
    T.step(conn, "eom", "c", mt.eom(conn))
    if mt.eom_check(conn, MT_QUARANTINE) then
      T.fail("eom: quarantined after RSET")
    end
    mt.disconnect(conn)
  end,
  -- an IPv6 client: same reply, client=[v6]:port in the log
  ipv6 = function()
    local conn = T.open("2001:db8::25", 587)
    T.helo(conn, "v6.example.net")
    T.mail(conn, "<v6@example.com>", "QIPV6", nil, "y")
    mt.disconnect(conn)
  end,
  -- discard at envfrom: SMFIR_DISCARD
  discard = function()
    local conn = T.open("192.0.2.24", 25)
    T.helo(conn, "client.example.net")
    T.mail(conn, "<discard@example.org>", "QDISC", nil, "d")
    mt.disconnect(conn)
  end,
  -- accept at connect: 'a', and nothing later is evaluated (a MAIL on
  -- port 587 without AUTH would otherwise get 530)
  accept_connect = function()
    local conn = T.open("10.88.1.1", 587, "a")
    T.helo(conn, "client.example.net")
    T.mail(conn, "<x@example.com>", "QACCEPT", nil, "c")
    T.rcpt(conn, "<nobody@example.net>", "c", true)
    T.step(conn, "data", "c", mt.data(conn))
    T.step(conn, "eom", "c", mt.eom(conn))
    mt.disconnect(conn)
  end,
  -- multi-line reply: at MAIL (reply code; text in log and on the wire)
  -- and at eom, where miltertest shows the exact text
  multiline = function()
    local conn = T.open("192.0.2.25", 25)
    T.helo(conn, "client.example.net")
    T.mail(conn, "<multi@example.org>", "QMULTI", nil, "y")
    mt.disconnect(conn)
    conn = upto_data("192.0.2.25", "<mleom@example.org>", "QMLEOM")
    T.step(conn, "eom", "y", mt.eom(conn))
    T.eom_reply(conn, "550-5.7.1", "first line\r\n550",
      "5.7.1 second line, rule t-multiline-eom")
    mt.disconnect(conn)
  end,
  -- '%' in the text: doubled on the wire (Sendmail formats it), %{rule}
  -- expanded
  percent = function()
    local conn = upto_data("192.0.2.26", "<pct@example.org>", "QPCT")
    T.step(conn, "eom", "y", mt.eom(conn))
    T.eom_reply(conn, "550", "5.7.1", "100%% sure, t-percent at 50%%")
    mt.disconnect(conn)
  end,
})
