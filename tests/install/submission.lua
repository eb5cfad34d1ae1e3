-- submission.lua: the installed daemon runs the shipped rules. Port 587
-- without AUTH is refused at MAIL FROM (submission.rules:
-- submission-requires-auth, 530 5.7.0); the same session on port 25
-- goes on. A daemon without its rules would answer continue to both.
-- -D sock=unix:/run/warden/warden.sock
local function ok(err, what) if err ~= nil then error(what .. ": " .. err) end end

local function session(port, want)
  local conn = mt.connect(sock, 40, 0.05)
  if conn == nil then error("cannot connect to " .. sock) end
  mt.macro(conn, SMFIC_CONNECT, "j", "mx.example.test", "{daemon_port}", port)
  ok(mt.conninfo(conn, "client.example.net", "192.0.2.10"), "conninfo")
  if mt.getreply(conn) ~= SMFIR_CONTINUE then error("connect: not continue") end
  ok(mt.helo(conn, "client.example.net"), "helo")
  mt.macro(conn, SMFIC_MAIL, "i", "4XyZ1abc", "{mail_addr}", "a@example.com")
  ok(mt.mailfrom(conn, "<a@example.com>"), "mailfrom")
  local r = mt.getreply(conn)
  if r ~= want then
    error("port " .. port .. ": MAIL FROM got '" .. string.char(r) ..
        "', want '" .. string.char(want) .. "'")
  end
  mt.disconnect(conn)
  mt.echo("PASS port " .. port .. " reply " .. string.char(r))
end

local good, err = pcall(function()
  session("587", SMFIR_REPLYCODE)
  session("25", SMFIR_CONTINUE)
end)
if not good then mt.echo("FAIL: " .. tostring(err)); error(err) end
