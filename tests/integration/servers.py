"""Servers for the SMTP engine's tests, all on 127.0.0.1 with free ports.

- Sink: Postfix's smtp-sink, fast and pipelining, rejecting or dropping chosen
  commands on request.
- Scripted: aiosmtpd with handlers that misbehave on purpose (421 after N
  messages, chosen recipients refused, a dropped connection mid-body or after the
  end of data, a stall, a huge or garbled reply), optionally with STARTTLS and AUTH.
- Counting: a small pipelining SMTP server that counts its turns: the times it
  answered everything it had and had to wait for the client. One turn per message
  is what pipelining promises.
- certificates(): a throwaway CA and server certificates: good, for the wrong
  name, expired, or from an unknown CA.
"""

import asyncio
import datetime
import os
import random
import re
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time

import logging

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


logging.getLogger("mail.log").setLevel(logging.CRITICAL)


_ports_given = set()


def free_port():
    """A loopback port nothing listens on, for a server to bind next. Taken below the
    kernel's ephemeral range, so that no outgoing connection can take it between this
    check and the server's bind (a port bind(0) gave could be), and never twice in one
    process."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    top = max(low - 1, 2048)
    bottom = max(1024, top - 16384)
    rnd = random.SystemRandom()
    for _ in range(200):
        port = rnd.randint(bottom, top)
        if port in _ports_given:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _ports_given.add(port)
        return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def terminate(proc, timeout=5):
    """Stop a server process: SIGTERM, then SIGKILL after timeout seconds."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()

class Sink:
    """smtp-sink on loopback. args are smtp-sink options (e.g. ["-p"], ["-f", "RCPT"])."""

    def __init__(self, *args):
        self.port = free_port()
        self.dump = tempfile.mkdtemp(prefix="blast-sink-")
        os.chmod(self.dump, 0o777)
        cmd = ["/usr/sbin/smtp-sink", "-u", "nobody", "-d", f"{self.dump}/%M.", *args,
               f"127.0.0.1:{self.port}", "100"]
        # stderr to a file: a pipe nobody reads fills up and stalls the server
        self.log = self.dump + ".log"
        with open(self.log, "wb") as err:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=err)
        wait_port(self.port)

    def messages(self):
        """Dumped transactions (those that reached the end of data)."""
        return [os.path.join(self.dump, f) for f in sorted(os.listdir(self.dump))]

    def recipients(self):
        """How many times each recipient was received: each dump starts with the
        envelope (X-Mail-Args, X-Rcpt-Args lines) before the message's headers."""
        counts = {}
        for path in self.messages():
            with open(path, errors="replace") as f:
                for line in f:
                    m = re.match(r"X-Rcpt-Args: <([^>]*)>", line)
                    if m:
                        counts[m.group(1)] = counts.get(m.group(1), 0) + 1
                    if line.strip() == "":
                        break
        return counts

    def stop(self):
        terminate(self.proc)
        subprocess.run(["rm", "-rf", self.dump, self.log])


# ---- certificates -------------------------------------------------------------------------

def certificates(directory):
    """Write ca.pem and server certificates into directory; return their paths."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress

    now = datetime.datetime.now(datetime.timezone.utc)

    def key():
        return ec.generate_private_key(ec.SECP256R1())

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def ca_cert(cn, k):
        return (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(name(cn))
                .public_key(k.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=2))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(k, hashes.SHA256()))

    def leaf(ca, ca_key, k, dns, ip, before, after):
        sans = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(a))
                                                 for a in ip]
        return (x509.CertificateBuilder().subject_name(name(dns[0] if dns else "server"))
                .issuer_name(ca.subject).public_key(k.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(before).not_valid_after(after)
                .add_extension(x509.SubjectAlternativeName(sans), critical=False)
                .sign(ca_key, hashes.SHA256()))

    def write(path, *objs):
        with open(path, "wb") as f:
            for o in objs:
                if hasattr(o, "private_bytes"):
                    f.write(o.private_bytes(serialization.Encoding.PEM,
                                            serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
                else:
                    f.write(o.public_bytes(serialization.Encoding.PEM))
        return path

    ca_key, other_key = key(), key()
    ca = ca_cert("blast throwaway test CA", ca_key)
    other = ca_cert("blast throwaway unknown CA", other_key)
    day = datetime.timedelta(days=1)
    out = {"ca": write(os.path.join(directory, "ca.pem"), ca)}
    specs = {
        "good": (ca, ca_key, ["localhost"], ["127.0.0.1"], now - day, now + day),
        "wrong_name": (ca, ca_key, ["mail.other.example"], [], now - day, now + day),
        "expired": (ca, ca_key, ["localhost"], ["127.0.0.1"], now - 10 * day, now - 5 * day),
        "unknown_ca": (other, other_key, ["localhost"], ["127.0.0.1"], now - day, now + day),
    }
    for kind, (issuer, issuer_key, dns, ip, before, after) in specs.items():
        k = key()
        cert = leaf(issuer, issuer_key, k, dns, ip, before, after)
        out[kind] = (write(os.path.join(directory, f"{kind}.pem"), cert),
                     write(os.path.join(directory, f"{kind}.key"), k))
    return out


def spki_sha256(cert_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    with open(cert_path, "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    der = cert.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    digest = hashes.Hash(hashes.SHA256())
    digest.update(der)
    return digest.finalize().hex()


# ---- aiosmtpd with faults -------------------------------------------------------------------

class Script:
    """What the scripted server does. Every field is optional."""

    def __init__(self, **kw):
        self.close_after = kw.get("close_after")        # 421 at MAIL after N messages
        self.rcpt = kw.get("rcpt", {})                   # address -> reply for RCPT
        self.drop_mid_body = kw.get("drop_mid_body", 0)  # the first N bodies
        self.drop_after_dot = kw.get("drop_after_dot", False)
        self.stall_after_dot = kw.get("stall_after_dot", 0)  # seconds
        self.mail_reply = kw.get("mail_reply")           # a raw reply to MAIL
        self.defer_first = kw.get("defer_first", {})     # address -> times to answer 451
        # what those deferrals say: address -> reply (default "451 4.7.1 try again later")
        self.defer_reply = kw.get("defer_reply", {})


class Handler:
    """aiosmtpd hooks. A token makes the handler offer XOAUTH2 too (RFC 7628-like)."""

    xoauth2_token = None

    async def auth_XOAUTH2(self, server, args):
        import base64
        self.tried_auth.append("XOAUTH2")
        try:
            raw = base64.b64decode(args[1]).decode()
        except Exception:
            return AuthResult(success=False, handled=False)
        fields = dict(f.split("=", 1) for f in raw.split("\x01") if "=" in f)
        ok = fields.get("auth") == f"Bearer {self.xoauth2_token}" and "user" in fields
        if not ok:
            # RFC 7628 §3.2.2: a JSON error in a 334, the client answers with an empty line
            await server.push("334 eyJzdGF0dXMiOiI0MDEifQ==")
            await server._reader.readline()
        return AuthResult(success=ok, handled=False)

    def __init__(self, script):
        self.script = script
        self.messages = []   # (mail_from, rcpt_tos, content)
        self.tried_auth = []
        self.deferred = {}

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        s = self.script
        if s.mail_reply is not None:
            await server.push(s.mail_reply)
            return None
        if s.close_after is not None and len(self.messages) >= s.close_after:
            await server.push("421 4.3.2 closing: too many messages this session")
            server.transport.close()
            return None
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        s = self.script
        if address in s.rcpt:
            return s.rcpt[address]
        n = s.defer_first.get(address, 0)
        if self.deferred.get(address, 0) < n:
            self.deferred[address] = self.deferred.get(address, 0) + 1
            return s.defer_reply.get(address, "451 4.7.1 try again later")
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        s = self.script
        if s.drop_after_dot:
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
            server.transport.close()
            return None
        if s.stall_after_dot:
            await asyncio.sleep(s.stall_after_dot)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 2.0.0 OK queued as Q%d" % len(self.messages)


class FaultySMTP(SMTP):
    async def smtp_DATA(self, arg):
        script = self.event_handler.script
        if script.drop_mid_body > 0 and self.envelope.rcpt_tos:
            script.drop_mid_body -= 1
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            await self._reader.read(200)   # a little of the body, then away
            self.transport.close()
            return
        await super().smtp_DATA(arg)


class Scripted:
    """aiosmtpd on loopback, pipelining off (aiosmtpd 1.4 does not offer it)."""

    def __init__(self, script=None, tls=None, password=None, require_tls=True, implicit=False,
                 xoauth2_token=None):
        self.handler = Handler(script or Script())
        self.handler.xoauth2_token = xoauth2_token
        self.port = free_port()
        handler = self.handler

        def authenticator(server, session, envelope, mechanism, auth_data):
            handler.tried_auth.append(mechanism)
            ok = (isinstance(auth_data, LoginPassword) and
                  auth_data.password.decode() == password)
            return AuthResult(success=ok, handled=False)

        context = None
        if tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*tls)
        kwargs = {}
        if password is not None:
            kwargs.update(authenticator=authenticator, auth_require_tls=require_tls)

        class Ctl(Controller):
            def factory(self_inner):
                return FaultySMTP(handler, tls_context=None if implicit else context,
                                  require_starttls=context is not None and require_tls and
                                  not implicit,
                                  timeout=30, **kwargs)

        self.controller = Ctl(handler, hostname="127.0.0.1", port=self.port,
                              ssl_context=context if implicit else None)
        # refused handshakes and dropped clients are the point of these tests: keep quiet
        self.controller.loop.set_exception_handler(lambda loop, ctx: None)
        self.controller.start()

    @property
    def messages(self):
        return self.handler.messages

    def stop(self):
        self.controller.stop()


# ---- the counting server -------------------------------------------------------------------

class _Counting(asyncio.Protocol):
    def __init__(self, owner):
        self.owner = owner
        self.buf = b""
        self.in_data = False
        self.out = []
        self.flush_handle = None
        self.rcpts = []

    def connection_made(self, transport):
        self.transport = transport
        self.reply("220 counting ESMTP")

    def reply(self, line):
        self.out.append(line.encode() + b"\r\n")
        # answers go out together once the client's bytes stop arriving: one turn
        if self.flush_handle is not None:
            self.flush_handle.cancel()
        self.flush_handle = asyncio.get_running_loop().call_later(0.002, self.flush)

    def flush(self):
        self.flush_handle = None
        if self.out:
            self.transport.write(b"".join(self.out))
            self.out = []
            self.owner.turns += 1

    def data_received(self, data):
        self.owner.client_chunks += 1
        self.buf += data
        while True:
            if self.in_data:
                end = self.buf.find(b"\r\n.\r\n")
                if end < 0:
                    return
                self.buf = self.buf[end + 5:]
                self.in_data = False
                self.owner.messages += 1
                self.owner.arrived(self.rcpts)
                self.rcpts = []
                self.reply("250 2.0.0 queued as C%d" % self.owner.messages)
                continue
            nl = self.buf.find(b"\r\n")
            if nl < 0:
                return
            line, self.buf = self.buf[:nl].decode(errors="replace"), self.buf[nl + 2:]
            verb = line.split(" ", 1)[0].upper()
            if verb == "EHLO":
                self.reply("250-counting\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 100000000")
            elif verb == "DATA":
                self.in_data = True
                self.reply("354 go ahead")
            elif verb == "QUIT":
                self.reply("221 bye")
                self.flush()
                self.transport.close()
                return
            elif verb == "RCPT":
                self.rcpts.append(line[line.find("<") + 1:line.find(">")])
                self.reply("250 OK")
            elif verb in ("MAIL", "RSET", "NOOP"):
                if verb != "NOOP":
                    self.rcpts = []
                self.reply("250 OK")
            else:
                self.reply("502 not here")


class Counting:
    """Counts turns; records each accepted message's arrival time and recipients."""

    def __init__(self):
        self.turns = 0
        self.client_chunks = 0
        self.messages = 0
        self.arrivals = []   # (monotonic time, [recipients])
        self.received = {}   # recipient -> messages accepted for it
        self.lock = threading.Lock()
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self.ready.wait(10)

    def arrived(self, rcpts):
        with self.lock:
            self.arrivals.append((time.monotonic(), list(rcpts)))
            for r in rcpts:
                self.received[r] = self.received.get(r, 0) + 1

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(
            self.loop.create_server(lambda: _Counting(self), "127.0.0.1", self.port))
        self.ready.set()
        self.loop.run_forever()

    def stop(self):
        def _stop():
            self.server.close()
            self.loop.stop()
        self.loop.call_soon_threadsafe(_stop)
        self.thread.join(10)
        if not self.thread.is_alive():
            self.loop.close()


# ---- the hand-written server, for faults no real MTA makes ----------------------------------

class Fault:
    """On one connection, the reply to the nth command `verb` ("MAIL", "RCPT", "DATA", "."
    for an end of data, "AUTH" and each line of its exchange) is `reply` (None: the normal
    one), followed by `extra` in the same write."""

    def __init__(self, verb, nth, reply=None, extra=None):
        self.verb, self.nth, self.reply, self.extra = verb, nth, reply, extra


class Raw:
    """A small SMTP server on loopback, written by hand so that it can break the protocol
    exactly as a test says: replies out of step with the commands, AUTH challenges that
    are not base64, a connection reset while a message's final bytes are on their way.

    faults: connection index -> Fault (every_connection: the Fault of index 0 on each).
    reset_at_dot: connection index -> message number: once that message's final "." line
    has arrived, the connection is reset (RST) without a reply.
    auth: the AUTH mechanisms offered, or None.
    Every byte each connection received is kept in conns[i]; delivered holds
    (recipients, message) for each end of data answered 250.
    """

    def __init__(self, faults=None, every_connection=False, reset_at_dot=None, auth=None,
                 pipelining=True):
        self.faults = faults or {}
        self.every_connection = every_connection
        self.reset_at_dot = reset_at_dot or {}
        self.auth = auth
        self.pipelining = pipelining
        self.conns = []
        self.delivered = []
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.threads = []
        self.accepting = threading.Thread(target=self._accept, daemon=True)
        self.accepting.start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                index = len(self.conns)
                self.conns.append(bytearray())
            t = threading.Thread(target=self._serve, args=(conn, index), daemon=True)
            self.threads.append(t)
            t.start()

    def _fault(self, index):
        if self.every_connection:
            return self.faults.get(0)
        return self.faults.get(index)

    def _serve(self, conn, index):
        got = self.conns[index]
        buf = bytearray()
        seen = {}
        fault = self._fault(index)
        messages = 0

        def line():
            while b"\n" not in buf:
                data = conn.recv(65536)
                if not data:
                    return None
                got.extend(data)
                buf.extend(data)
            n = buf.index(b"\n") + 1
            out = bytes(buf[:n])
            del buf[:n]
            return out

        def answer(verb, normal):
            seen[verb] = seen.get(verb, 0) + 1
            out = normal
            if fault is not None and fault.verb == verb and fault.nth == seen[verb]:
                out = (fault.reply if fault.reply is not None else normal) + (fault.extra or "")
            conn.sendall(out.encode())
            return out

        try:
            conn.sendall(b"220 raw.example ESMTP\r\n")
            in_auth = False
            rcpts = []
            while True:
                ln = line()
                if ln is None:
                    break
                text = ln.decode("utf-8", "replace").rstrip("\r\n")
                verb = text.split(" ", 1)[0].upper()
                if in_auth:
                    out = answer("AUTH", "501 5.7.0 cancelled\r\n" if text == "*"
                                 else "235 2.7.0 Authentication successful\r\n")
                    in_auth = out.startswith("334")
                elif verb == "EHLO":
                    caps = ["raw.example", "8BITMIME", "ENHANCEDSTATUSCODES"]
                    if self.pipelining:
                        caps.append("PIPELINING")
                    if self.auth:
                        caps.append("AUTH " + self.auth)
                    conn.sendall("".join(f"250{'-' if i < len(caps) - 1 else ' '}{c}\r\n"
                                         for i, c in enumerate(caps)).encode())
                elif verb == "AUTH":
                    out = answer("AUTH", "235 2.7.0 Authentication successful\r\n")
                    in_auth = out.startswith("334")
                elif verb == "MAIL":
                    rcpts = []
                    answer("MAIL", "250 2.1.0 Ok\r\n")
                elif verb == "RCPT":
                    if answer("RCPT", "250 2.1.5 Ok\r\n").startswith("2"):
                        rcpts.append(text[text.find("<") + 1:text.find(">")])
                elif verb == "DATA":
                    if not answer("DATA", "354 End data with <CR><LF>.<CR><LF>\r\n").startswith("354"):
                        continue
                    body = bytearray()
                    while True:
                        ln = line()
                        if ln is None or ln == b".\r\n":
                            break
                        body.extend(ln)
                    if ln is None:
                        break
                    messages += 1
                    if self.reset_at_dot.get(index) == messages:
                        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                        struct.pack("ii", 1, 0))
                        break
                    if answer(".", f"250 2.0.0 Ok: queued as R{index}x{messages}\r\n").startswith("2"):
                        with self.lock:
                            self.delivered.append((list(rcpts), bytes(body)))
                elif verb == "RSET":
                    answer("RSET", "250 2.0.0 Ok\r\n")
                elif verb == "QUIT":
                    conn.sendall(b"221 2.0.0 Bye\r\n")
                    break
                else:
                    conn.sendall(b"502 5.5.2 not here\r\n")
        except OSError:
            pass
        finally:
            conn.close()

    def received(self, index):
        """Every byte connection index received (wait for it to end first)."""
        return bytes(self.conns[index])

    def after(self, index, command, nth=1):
        """What connection index received after the nth line `command` (e.g. b"DATA\\r\\n")."""
        data = self.received(index)
        at = -len(command)
        for _ in range(nth):
            at = data.index(command, at + len(command))
        return data[at + len(command):]

    def stop(self):
        self.sock.close()
        for t in self.threads:
            t.join(10)


# ---- DNS ---------------------------------------------------------------------------------

class Dnsmasq:
    """dnsmasq (Debian's dnsmasq-base) answering for the names the test gives it, on
    127.0.0.1 and a free port, forwarding nothing: args are its record options
    (--mx-host=..., --dns-rr=..., --local=/test/ ...). Names it has no record for in a
    --local domain are NXDOMAIN. stop() ends it."""

    BINARY = "/usr/sbin/dnsmasq"

    def __init__(self, *args):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [self.BINARY, "--no-daemon", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
             "--pid-file=", "--log-facility=-", "--listen-address=127.0.0.1",
             "--bind-interfaces", f"--port={self.port}", *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port)

    @property
    def servers(self):
        return f"127.0.0.1:{self.port}"

    def stop(self):
        terminate(self.proc)


class SilentUDP:
    """A UDP port on 127.0.0.1 that takes queries and never answers (a DNS server that
    does not answer in time): bound, never read."""

    def __init__(self):
        import socket
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def stop(self):
        self.sock.close()
