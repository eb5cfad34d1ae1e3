-- negotiate.lua - what warden asks for in option negotiation
-- (DESIGN.md §4): only the steps its rules need, never SMFIP_NODATA nor
-- a no-reply DATA; DATA answered continue.
dofile(lib)

local function through_data(conn, ip)
  T.step(conn, "connect", "c", mt.conninfo(conn, "client.example.net", ip))
  T.helo(conn, "client.example.net")
  T.mail(conn, "<n@example.com>", "QNEG", nil, "c")
  T.rcpt(conn, "<r@example.net>", "c")
  T.step(conn, "data", "c", mt.data(conn))
  T.step(conn, "eom", "c", mt.eom(conn))
end

T.run({
  -- instance A: shipped rules + test rules: unknown-stage rules (harvest)
  -- and rcpt_rejected, no header rules, no size rules
  main = function()
    local conn = T.connect()
    T.options(conn, { NOHDRS = true, NOEOH = true, NOBODY = true,
      NOUNKNOWN = false, RCPT_REJ = true, NODATA = false, NR_DATA = false,
      NOCONNECT = false, NOHELO = false, NOMAIL = false, NORCPT = false })
    -- Stages with rules must be answered; with a 421 at RCPT in the rules
    -- (harvest) so must every later one (a closed session answers 421),
    -- so no SMFIP_NR_* but for connect (which has rules here too).
    T.options(conn, { NR_CONN = false, NR_HELO = false, NR_MAIL = false,
      NR_RCPT = false, NR_UNKN = false })
    through_data(conn, "192.0.2.30")
    mt.disconnect(conn)
  end,
  -- instance B: submission.rules + t-reload.rules: no unknown rules,
  -- nothing reads refused recipients
  minimal = function()
    local conn = T.connect()
    T.options(conn, { NOHDRS = true, NOEOH = true, NOBODY = true,
      NOUNKNOWN = true, RCPT_REJ = false, NODATA = false, NR_DATA = false })
    -- MAIL has rules: it must be answered (other stages may go no-reply)
    T.options(conn, { NR_MAIL = false })
    through_data(conn, "192.0.2.31")
    mt.disconnect(conn)
  end,
})
