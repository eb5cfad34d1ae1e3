-- common.lua - helpers for the miltertest scenario scripts of
-- tests/milter/run.sh. Loaded with dofile(lib) by each script; globals
-- come from miltertest -D: sock (inet:PORT@127.0.0.1), case (which
-- scenario of the script to run), and per script extras.
--
-- Conventions: every check raises a Lua error with a message saying what
-- was expected; T.run() catches it, prints "FAIL: ..." and re-raises so
-- miltertest exits 1 (run.sh prints the message as a TAP comment).

T = {}

local names = {
  [SMFIR_CONTINUE] = "continue", [SMFIR_ACCEPT] = "accept",
  [SMFIR_REJECT] = "reject", [SMFIR_TEMPFAIL] = "tempfail",
  [SMFIR_DISCARD] = "discard", [SMFIR_REPLYCODE] = "replycode",
}

-- "c" -> SMFIR_CONTINUE etc.: expectations are written as the letters
-- of the protocol (c continue, y reply code, a accept, d discard,
-- t tempfail, r reject).
local function show(r)
  if r == nil or r == 0 then return "(none)" end
  return "'" .. string.char(r) .. "' (" .. (names[r] or "?") .. ")"
end

function T.fail(msg) error(msg, 0) end

-- Checks the reply of the last step.
function T.reply(conn, what, want)
  local r = mt.getreply(conn)
  if r ~= string.byte(want) then
    T.fail(what .. ": reply " .. show(r) .. ", want " ..
      show(string.byte(want)))
  end
end

-- Runs one step (an mt.* call that returns nil or an error string) and
-- checks its reply.
function T.step(conn, what, want, err)
  if err ~= nil then T.fail(what .. ": " .. tostring(err)) end
  T.reply(conn, what, want)
end

function T.connect()
  local conn = mt.connect(sock, 40, 0.05)
  if conn == nil then T.fail("cannot connect to " .. sock) end
  return conn
end

-- A new SMTP connection: connect macros, then conninfo; checks the reply.
-- port: {daemon_port} (nil: not sent).
function T.open(ip, port, want, host)
  local conn = T.connect()
  if port ~= nil then
    mt.macro(conn, SMFIC_CONNECT, "j", "mx.example.test",
      "{daemon_port}", tostring(port))
  end
  T.step(conn, "connect " .. ip, want or "c",
    mt.conninfo(conn, host or "client.example.net", ip))
  return conn
end

-- HELO with optional TLS macros.
function T.helo(conn, name, tls, want)
  if tls ~= nil then
    mt.macro(conn, SMFIC_HELO, "{tls_version}", tls, "{cipher_bits}", "256")
  end
  T.step(conn, "helo " .. name, want or "c", mt.helo(conn, name))
end

-- MAIL FROM with queue id and optional AUTH macros.
function T.mail(conn, from, qid, user, want)
  if user ~= nil then
    mt.macro(conn, SMFIC_MAIL, "i", qid, "{auth_type}", "PLAIN",
      "{auth_authen}", user)
  else
    mt.macro(conn, SMFIC_MAIL, "i", qid)
  end
  T.step(conn, "mail " .. from, want or "c", mt.mailfrom(conn, from))
end

-- RCPT TO; refused = true marks it refused by the MTA
-- ({rcpt_mailer} = error, as Postfix does with SMFIP_RCPT_REJ).
function T.rcpt(conn, to, want, refused, what)
  mt.macro(conn, SMFIC_RCPT, "{rcpt_addr}", to,
    "{rcpt_mailer}", refused and "error" or "smtp")
  T.step(conn, what or ("rcpt " .. to), want or "c", mt.rcptto(conn, to))
end

function T.opt(conn, flag) return mt.test_option(conn, flag) end

-- Asserts which SMFIP_* bits the filter asked for; spec maps name -> bool.
function T.options(conn, spec)
  for name, want in pairs(spec) do
    local flag = _G["SMFIP_" .. name]
    if flag == nil then T.fail("SMFIP_" .. name .. " unknown to miltertest") end
    local have = mt.test_option(conn, flag)
    if have ~= want then
      T.fail("negotiated SMFIP_" .. name .. "=" .. tostring(have) ..
        ", want " .. tostring(want))
    end
  end
end

-- At EOM: the exact reply (miltertest compares "CODE XCODE TEXT" with the
-- whole SMFIR_REPLYCODE text, so multi-line replies are given whole).
function T.eom_reply(conn, code, xcode, text)
  if not mt.eom_check(conn, MT_SMTPREPLY, code, xcode, text) then
    T.fail("eom: no reply \"" .. code .. " " .. xcode .. " " .. text .. "\"")
  end
end

-- Reads a whole file (the warden log) as a string.
function T.slurp(path)
  local f = io.open(path, "rb")
  if f == nil then return "" end
  local s = f:read("*a")
  f:close()
  return s
end

-- Waits (bounded) until the log at path contains the plain text needle
-- after byte offset from; returns the log.
function T.wait_log(path, needle, from, secs)
  local tries = math.floor((secs or 5) / 0.05)
  for _ = 1, tries do
    local s = T.slurp(path)
    if string.find(s, needle, (from or 0) + 1, true) then return s end
    mt.sleep(0.05)
  end
  T.fail("log " .. path .. ": no \"" .. needle .. "\" within " ..
    tostring(secs or 5) .. " s")
end

-- Runs the case named by the global `case` from the table cases.
function T.run(cases)
  local fn = cases[case]
  if fn == nil then
    mt.echo("FAIL: no case " .. tostring(case))
    error("no case")
  end
  local good, err = pcall(fn)
  if not good then
    mt.echo("FAIL: " .. tostring(err))
    error(err)
  end
  mt.echo("PASS " .. case)
end
