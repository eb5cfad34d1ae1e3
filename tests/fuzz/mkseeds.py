#!/usr/bin/python3
"""mkseeds.py - writes the binary seed inputs of fuzz_session and
fuzz_template (tests/fuzz/corpus/session, .../template) from the readable
descriptions below. Run from the repository root after changing an input
format; the files are committed, this script only documents them."""
import os
import struct


def session_seeds():
    # fuzz_session.c: records "OP LEN DATA"; OP 0x80 = two-byte length,
    # 0x40 with LEN 0 = NULL value, 0x20 on a recipient = refused by the MTA.
    OPS = dict(client=0, name=1, daemon=2, helo=3, tls=4, auth=5, sender=6, rcpt=7,
               qid=8, cmd=9, hdr=10, port=11, size=12, reset=13, eval=14, init=15)
    ST = dict(connect=0, helo=1, envfrom=2, envrcpt=3, data=4, header=5, eom=6, unknown=7)
    def rec(op, data=b'', flags=0):
        if isinstance(data, str): data = data.encode('latin1')
        o = OPS[op] | flags
        if len(data) > 255:
            return bytes([o | 0x80]) + struct.pack('<H', len(data)) + data
        return bytes([o, len(data)]) + data
    def ev(stage, fail=0, dt=1): return rec('eval', bytes([ST[stage], fail, dt]))
    seeds = {}
    seeds['normal'] = b''.join([
        rec('client', '192.0.2.7'), rec('name', 'mx1.example'), rec('daemon', 'smtpd'),
        rec('port', struct.pack('<H', 587)), ev('connect'),
        rec('helo', 'mail.example.org'), rec('tls', b'\x80TLSv1.3'), ev('helo'),
        rec('qid', '4XyZ1abc'), rec('auth', b'alice\x00PLAIN'), rec('size', b'\x0a'),
        rec('sender', '<alice@example.org>'), ev('envfrom'),
        rec('rcpt', '<postmaster@example.com>'), ev('envrcpt'),
        rec('rcpt', '<root@example.com>', 0x20), ev('envrcpt'),
        rec('rcpt', '<bob@x.example>'), ev('envrcpt'), ev('data'),
        rec('hdr', 'Subject: cheap viagra'), ev('header'), ev('eom'), rec('reset')])
    seeds['long-sender'] = b''.join([
        rec('client', '2001:db8::25'), ev('connect'),
        rec('sender', '<' + 'a' * 2100 + '@example.org>'), ev('envfrom')])
    seeds['long-rcpt-noat'] = b''.join([
        rec('client', '192.0.2.25'), rec('sender', 'x@example.org'),
        rec('rcpt', 'c' * 2100), ev('envrcpt')])
    seeds['long-rcpt-domain'] = b''.join([
        rec('client', '192.0.2.26'), rec('sender', 'x@example.org'),
        rec('rcpt', '<' + 'b' * 1200 + '@' + 'd' * 1000 + '.example>'), ev('envrcpt')])
    seeds['long-rcpt-bigdomain'] = b''.join([
        rec('client', '192.0.2.27'), rec('sender', 'x@example.org'),
        rec('rcpt', '<' + 'b' * 1010 + '@' + 'd' * 1030 + '.example>'), ev('envrcpt')])
    seeds['ctrl-bytes'] = b''.join([
        rec('client', '[::ffff:10.1.2.3]'), rec('name', 'evil\r\nX-Forged: 1'),
        rec('helo', b'[127.0.0.1]\r\n\x00\xff"\\%{helo}'), ev('helo'),
        rec('cmd', 'EXPN root'), ev('unknown'), rec('cmd', b'XFOO\tbar'), ev('unknown'),
        rec('cmd', 'VRFY x'), ev('unknown'), rec('sender', '<>'), ev('envfrom'),
        rec('sender', b'', 0x40), ev('envfrom')])
    seeds['long-tag'] = b''.join([
        rec('client', '192.0.2.99'), rec('name', 'n' * 300 + '.example'),
        rec('helo', 'h' * 300), rec('auth', b'u' * 300 + b'\x00LOGIN'),
        rec('sender', 's' * 400 + '@example.org'), rec('rcpt', 'r' * 400 + '@example.com'),
        ev('envrcpt')])
    seeds['limits'] = b''.join([
        rec('client', '198.51.100.1'), rec('helo', 'h.test')] +
        [ev('connect', 0, 0) for _ in range(7)] + [ev('helo', 0, 0) for _ in range(3)] +
        [rec('sender', 'x@y.test'), ev('envfrom', 1), ev('envfrom', 0, 0), ev('envfrom', 0, 0),
         ev('envfrom', 0, 0), ev('envfrom', 0, 0), rec('size', b'\x14'), ev('eom'), ev('eom', 0, 200)] +
        [rec('rcpt', 'z@q.example', 0x20), ev('envrcpt', 0, 0)] * 5)
    return seeds


def template_seeds():
    # byte 0: bit0 = add_header template; bits 1-3 stage; bit 4 tempfail
    ENVRCPT = 3 << 1
    def seed(mode, tmpl, vals):
        return bytes([mode]) + tmpl + b'\0' + b'\0'.join(vals)
    vals = [b'192.0.2.1', b'mx.example', b'helo.example', b'a@example.org',
            b'b@example.com', b'alice', b'rule-1', b'20', b'4XyZ1abc']
    S = {}
    S['tag-all-vars'] = seed(1 | ENVRCPT, b'%{client_ip} %{client_name} %{helo} %{sender} %{rcpt} '
                            b'%{auth_user} %{rule} %{retry_after} %{queue_id} 100%% %x', vals)
    S['reply-multi'] = seed(ENVRCPT, b'550-5.7.1 from <%{sender}>\n550-5.7.1 to <%{rcpt}>\n'
                            b'550 5.7.1 helo %{helo} user %{auth_user}', vals)
    S['tempfail-retry'] = seed(ENVRCPT | 16, b'450 4.7.1 Too many from %{auth_user}, retry in %{retry_after}s', vals)
    S['hostile-values'] = seed(1 | ENVRCPT, b'%{sender} %{helo} %{rcpt}',
                               [b'x', b'y', b'\r\n250 ok\r\n%{sender}\x01', b'<%{rcpt}%%s%n\xff>',
                                b'r' * 300, b'u\rser'])
    S['wrap-long'] = seed(1 | ENVRCPT, b'%{sender} %{rcpt} %{helo} %{client_name} %{auth_user} ' * 4,
                          [b'i' * 260, b'n' * 260, b'h ' * 130, b's' * 260, b'r' * 100 + b' ' + b'r' * 200, b'u' * 260])
    S['connect-code'] = seed(0, b'421 4.7.0', [])
    return S


for name, seeds in (('session', session_seeds()),
                    ('template', template_seeds())):
    out = os.path.join('tests/fuzz/corpus', name)
    os.makedirs(out, exist_ok=True)
    for k, v in seeds.items():
        with open(os.path.join(out, k), 'wb') as f:
            f.write(v)
