-- reload.lua - SIGHUP (DESIGN.md §6) against instance B. Globals: pid,
-- log (its stderr), rules (the live t-reload.rules), v2 and broken (the
-- next versions of it, prepared by run.sh).
dofile(lib)

local function hup(src, needle)
  local from = #T.slurp(log)
  if not os.execute("cp '" .. src .. "' '" .. rules .. "' && kill -HUP " ..
      pid) then
    T.fail("cannot install " .. src .. " or signal " .. pid)
  end
  T.wait_log(log, needle, from, 10)
end

T.run({
  -- a session in flight keeps the rules it started with; the next one
  -- sees the new reply and the new negotiation (v2 adds an unknown rule)
  ok = function()
    local old = T.open("192.0.2.40", 25)
    T.helo(old, "client.example.net")
    hup(v2, "reload: ok")
    T.mail(old, "<reload@example.org>", "QRELOADOLD", nil, "y")
    mt.disconnect(old)
    local new = T.connect()
    T.options(new, { NOUNKNOWN = false })
    T.step(new, "connect", "c",
      mt.conninfo(new, "client.example.net", "192.0.2.41"))
    T.helo(new, "client.example.net")
    T.step(new, "unknown EXPN", "y", mt.unknown(new, "EXPN"))
    mt.disconnect(new)
    new = T.open("192.0.2.41", nil)
    T.helo(new, "client.example.net")
    T.mail(new, "<reload@example.org>", "QRELOADNEW", nil, "y")
    mt.disconnect(new)
  end,
  -- a broken rule file: the running rules keep answering
  failed = function()
    hup(broken, "reload: failed")
    local conn = T.connect()
    T.options(conn, { NOUNKNOWN = false })
    T.step(conn, "connect", "c",
      mt.conninfo(conn, "client.example.net", "192.0.2.42"))
    T.helo(conn, "client.example.net")
    T.mail(conn, "<reload@example.org>", "QRELOADKEPT", nil, "y")
    mt.disconnect(conn)
  end,
})
