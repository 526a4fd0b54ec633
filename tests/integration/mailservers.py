"""Real mail servers on loopback for the bounce intake's tests (reading a bounce mailbox).

- Dovecot: a private Dovecot instance (its own base_dir, state_dir, config and log
  under one work directory) with one user, a Maildir, IMAP and POP3 with STARTTLS,
  IMAPS, POP3S and LMTP, all on 127.0.0.1 with free ports. Plaintext logins need TLS.
  With oauth2_token, XOAUTH2 and OAUTHBEARER too: Dovecot's oauth2 passdb asks an
  RFC 7662 introspection endpoint (Introspection, http.server in a thread) about it.
- BounceMTA: a private Postfix instance (the layout of scripts/localrelay.py) that
  accepts everything on a loopback port without AUTH or TLS, relays it to a scripted
  aiosmtpd next hop that refuses recipients by their local part, and so makes Postfix's
  bounce(8) write real DSNs, which it delivers over LMTP into the Dovecot user's INBOX.
- Builders for the other mail a bounce mailbox receives: ARF feedback reports,
  RFC 3834 auto-replies, vacation replies without Auto-Submitted, unsubscribe requests,
  and DSNs (RFC 3464, and RFC 6533 message/global-delivery-status).

BounceMTA needs root (Postfix's master runs as root and drops privileges); Dovecot
runs as root (mail processes as the Debian user "mail") or, without root, entirely as
the user running the tests. Debian packages: dovecot-core, dovecot-imapd,
dovecot-pop3d, dovecot-lmtpd, postfix, python3-aiosmtpd, python3-cryptography.
Nothing here is a secret: the certificates and the password are throwaway values
made for the run and removed with its work directory.
"""

import asyncio
import atexit
import base64
import contextlib
import email
import email.generator
import email.policy
import email.utils
import grp
import hashlib
import hmac
import http.server
import imaplib
import io
import json
import os
import pwd
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from email.message import Message

from tests.integration import servers
from tests.integration.servers import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if os.path.join(ROOT, "scripts") not in sys.path:
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
import localrelay  # noqa: E402

DOVECOT = "/usr/sbin/dovecot"

# Whatever a test forgot to stop is stopped when the interpreter exits.
_running = set()


@atexit.register
def _stop_leftovers():
    for server in list(_running):
        with contextlib.suppress(Exception):
            server.stop()


def _tail(path, n=40):
    return localrelay.tail(path, n)


def _traversable(path):
    """Let unprivileged daemons (dovecot, postfix, the mail user) reach into path."""
    while path not in ("/", ""):
        mode = os.stat(path).st_mode
        if mode & 0o011 != 0o011:
            os.chmod(path, mode | 0o011)
        path = os.path.dirname(path)


def _ports_listen(ports, deadline, alive):
    """Wait, bounded, until every port accepts a connection; False on timeout or death."""
    pending = list(ports)
    while pending and time.monotonic() < deadline:
        if not alive():
            return False
        try:
            servers.wait_port(pending[0], timeout=0.2)
            pending.pop(0)
        except RuntimeError:
            pass
    return not pending


# ---- Dovecot ---------------------------------------------------------------------------------

DOVECOT_CONF = """\
# Written by tests/integration/mailservers.py for one test run; thrown away with it.
instance_name = blast-test-{tag}
base_dir = {work}/run
state_dir = {work}/state
protocols = imap pop3 lmtp
listen = 127.0.0.1
log_path = {work}/log/dovecot.log
log_timestamp = "%Y-%m-%d %H:%M:%S "
hostname = imap.blast.test
auth_verbose = yes
{users}
first_valid_uid = {uid}
last_valid_uid = 0
first_valid_gid = {gid}

# Plaintext authentication only inside TLS, even from loopback. Dovecot 2.3 takes a
# connection whose remote address is its local one for secured, and would take a
# password in the clear: clients reach the login listeners through LoginFront, which
# hands them over with a PROXY header, and a proxied connection is secured only by TLS.
haproxy_trusted_networks = 127.0.0.1
ssl = required
disable_plaintext_auth = yes
ssl_cert = <{cert}
ssl_key = <{key}
ssl_min_protocol = TLSv1.2
auth_mechanisms = plain login{mechanisms_extra}

mail_location = maildir:~/Maildir
namespace inbox {{
  inbox = yes
  separator = /
}}

# The user logs in with the password of the passwd-file. LMTP finds any recipient:
# +detail is cut by recipient_delimiter, the domain by %n, and a local part that is
# not in the file falls through to the static userdb, which names the one user.
recipient_delimiter = +
passdb {{
  driver = passwd-file
  args = username_format=%n {work}/etc/users
{passwd_extra}}}
{oauth2_passdb}userdb {{
  driver = passwd-file
  args = username_format=%n {work}/etc/users
}}
userdb {{
  driver = static
  args = user={user} uid={uid} gid={gid} home={home} allow_all_users=yes
}}

protocol lmtp {{
  postmaster_address = postmaster@blast.test
}}

service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_back}
    haproxy = yes
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_back}
    ssl = yes
    haproxy = yes
  }}
{login_extra}}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {pop3_back}
    haproxy = yes
  }}
  inet_listener pop3s {{
    address = 127.0.0.1
    port = {pop3s_back}
    ssl = yes
    haproxy = yes
  }}
{login_extra}}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lmtp_port}
  }}
}}
# Tests log in with wrong passwords on purpose: answer at once, and keep no
# per-IP penalty that would slow down the logins that follow.
auth_failure_delay = 0
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
{anvil_extra}}}
"""

# Without root, everything runs as the user running the tests (no chroot, no setuid).
NONROOT_USERS = """\
default_internal_user = {name}
default_internal_group = {group}
default_login_user = {name}"""
NONROOT_LOGIN = "  chroot =\n"
NONROOT_ANVIL = "  chroot =\n"

# With an OAuth 2.0 token (Dovecot(oauth2_token=...)): XOAUTH2 and OAUTHBEARER are
# offered too, and only they reach the oauth2 passdb, which asks the harness's
# introspection endpoint (RFC 7662) about the token; passwords stay with the
# passwd-file. Both mechanisms count as plaintext ones: inside TLS only, like passwords.
OAUTH2_MECHANISMS = " xoauth2 oauthbearer"
OAUTH2_PASSWD_EXTRA = "  mechanisms = plain login\n"
OAUTH2_PASSDB = """\
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {conf}
}}
"""
# Dovecot 2.3's db-oauth2.c: without tokeninfo_url the token goes straight to the
# introspection_url ("post": token=... as a form); the answer's active_attribute must
# equal active_value (a JSON true reads as "true"), and its username_attribute,
# through username_format (%Lu), must equal the user who logs in.
OAUTH2_CONF = """\
# Written by tests/integration/mailservers.py for one test run; thrown away with it.
introspection_url = {url}
introspection_mode = post
username_attribute = username
username_format = %Lu
active_attribute = active
active_value = true
timeout_msecs = 5000
"""


def _ssha512(password):
    salt = os.urandom(8)
    digest = hashlib.sha512(password.encode() + salt).digest()
    return "{SSHA512}" + base64.b64encode(digest + salt).decode()


def _quote(name):
    """An IMAP quoted string (folder names are ASCII here)."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


class LoginFront:
    """Loopback ports in front of Dovecot's login listeners (haproxy = yes).

    Each connection to a front port is passed on to its back port after a PROXY
    protocol v1 header that names the client's real address: Dovecot then decides
    "secured" by TLS alone, not by the client's address being its own.
    """

    def __init__(self, back_ports, timeout=10.0):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True,
                                       name="mailservers-login-front")
        self.thread.start()
        self.servers = []
        self.conns = set()
        self.ports = []
        for back in back_ports:
            server = asyncio.run_coroutine_threadsafe(
                asyncio.start_server(lambda r, w, back=back: self._serve(r, w, back),
                                     "127.0.0.1", 0), self.loop).result(timeout)
            self.servers.append(server)
            self.ports.append(server.sockets[0].getsockname()[1])

    async def _serve(self, reader, writer, back):
        task = asyncio.current_task()
        self.conns.add(task)
        back_writer = None
        try:
            back_reader, back_writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", back), 5)
            peer = writer.get_extra_info("peername")
            local = writer.get_extra_info("sockname")
            back_writer.write(f"PROXY TCP4 {peer[0]} {local[0]} {peer[1]} {local[1]}\r\n"
                              .encode())
            pipes = [asyncio.ensure_future(self._pipe(reader, back_writer)),
                     asyncio.ensure_future(self._pipe(back_reader, writer))]
            try:
                await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for pipe in pipes:
                    pipe.cancel()
        except (OSError, asyncio.TimeoutError):
            pass
        finally:
            for w in (writer, back_writer):
                if w is not None:
                    w.close()
            self.conns.discard(task)

    @staticmethod
    async def _pipe(reader, writer):
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    return
                writer.write(data)
                await writer.drain()
        except OSError:
            return

    def stop(self):
        async def shutdown():
            for server in self.servers:
                server.close()
            for task in list(self.conns):
                task.cancel()
            await asyncio.sleep(0)
        if self.loop.is_running():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(5)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
        if not self.loop.is_running():
            self.loop.close()


class Introspection:
    """An OAuth 2.0 token introspection endpoint (RFC 7662) on 127.0.0.1, in a thread.

    POST (token=... as a form) or GET (?token=...) to self.url: for the one token it
    answers {"active": true, "username": user, ...}; for any other token
    {"active": false}. self.asked counts the answers: {"active": n, "inactive": n}.
    """

    def __init__(self, token, user):
        outer = self
        self.token = token
        self.user = user
        self.asked = {"active": 0, "inactive": 0}
        self.lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(min(length, 65536)).decode("ascii", "replace")
                self._answer(urllib.parse.parse_qs(body).get("token", [""])[0])

            def do_GET(self):
                query = urllib.parse.urlsplit(self.path).query
                self._answer(urllib.parse.parse_qs(query).get("token", [""])[0])

            def _answer(self, token):
                body = json.dumps(outer.answer(token)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass   # quiet: nothing of it belongs in a test's output

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/introspect"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.1,),
                                       daemon=True, name="mailservers-introspection")
        self.thread.start()

    def answer(self, token):
        active = hmac.compare_digest(token.encode(), self.token.encode())
        with self.lock:
            self.asked["active" if active else "inactive"] += 1
        if not active:
            return {"active": False}
        now = int(time.time())
        return {"active": True, "username": self.user, "scope": "mail",
                "token_type": "Bearer", "client_id": "blast-test",
                "iat": now, "exp": now + 3600}

    def stop(self):
        if self.server is None:
            return
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
        self.server = None


class Dovecot:
    """A private Dovecot on 127.0.0.1: IMAP/POP3 with STARTTLS, IMAPS, POP3S and LMTP.

    One user (user/password) whose mail is a Maildir at self.maildir (made by Dovecot
    on first use; folders are Maildir++ ".Name" directories, hierarchy separator "/").
    Clients verify the server with self.ca_file (the certificate names localhost and
    127.0.0.1). A password is accepted only inside TLS (IMAPS/POP3S or after
    STARTTLS/STLS), even from loopback. LMTP (self.lmtp_port, no TLS, no AUTH) takes
    any recipient, of any domain, for the one user.

    With oauth2_token, the user may also log in with XOAUTH2 or OAUTHBEARER and that
    bearer token, checked by Dovecot's oauth2 passdb against self.introspection (an
    Introspection endpoint on loopback that knows that one token).
    """

    def __init__(self, user="bounces", password="throwaway-test-password", start_timeout=20.0,
                 oauth2_token=None):
        self.user = user
        self.password = password
        self.oauth2_token = oauth2_token
        self.introspection = None
        self.proc = None
        self.front = None
        self.work = tempfile.mkdtemp(prefix="blast-dovecot-")
        try:
            self._setup()
            self._start(start_timeout)
        except BaseException:
            self.stop()
            raise

    # -- setup and start --

    def _setup(self):
        work = self.work
        for d in ("etc", "run", "state", "log", "tls", "home"):
            os.makedirs(os.path.join(work, d))
        _traversable(work)
        tls = servers.certificates(os.path.join(work, "tls"))
        self.ca_file = tls["ca"]
        self.cert_file, self.key_file = tls["good"]
        self.home = os.path.join(work, "home", self.user)
        self.maildir = os.path.join(self.home, "Maildir")
        os.makedirs(self.home)
        self.root = os.geteuid() == 0
        if self.root:
            # Dovecot will not run mail processes as root: the Debian user "mail".
            try:
                owner = pwd.getpwnam("mail")
            except KeyError:
                owner = pwd.getpwnam("nobody")
            internal_gid = grp.getgrnam("dovecot").gr_gid
        else:
            owner = pwd.getpwuid(os.geteuid())
            internal_gid = owner.pw_gid
        self.uid, self.gid = owner.pw_uid, owner.pw_gid
        if self.root:
            os.chown(self.home, self.uid, self.gid)
        users = os.path.join(work, "etc", "users")
        localrelay.write(users, f"{self.user}:{_ssha512(self.password)}:{self.uid}:{self.gid}::"
                                f"{self.home}::\n", 0o640)
        if self.root:
            os.chown(users, 0, internal_gid)   # the auth process runs as "dovecot"
        if self.oauth2_token is not None:
            self.introspection = Introspection(self.oauth2_token, self.user)
            self.oauth2_conf = os.path.join(work, "etc", "dovecot-oauth2.conf.ext")
            localrelay.write(self.oauth2_conf, OAUTH2_CONF.format(url=self.introspection.url))
        self.conf = os.path.join(work, "etc", "dovecot.conf")
        self.log_file = os.path.join(work, "log", "dovecot.log")
        self.stderr_file = os.path.join(work, "log", "stderr")

    def _write_conf(self):
        nonroot = not self.root
        text = DOVECOT_CONF.format(
            tag=os.path.basename(self.work), work=self.work, user=self.user, home=self.home,
            uid=self.uid, gid=self.gid, cert=self.cert_file, key=self.key_file,
            imap_back=self.back_ports[0], imaps_back=self.back_ports[1],
            pop3_back=self.back_ports[2], pop3s_back=self.back_ports[3],
            lmtp_port=self.lmtp_port,
            users=NONROOT_USERS.format(name=pwd.getpwuid(self.uid).pw_name,
                                       group=grp.getgrgid(self.gid).gr_name) if nonroot else "",
            login_extra=NONROOT_LOGIN if nonroot else "",
            anvil_extra=NONROOT_ANVIL if nonroot else "",
            **self._oauth2_conf())
        localrelay.write(self.conf, text)

    def _oauth2_conf(self):
        if self.introspection is None:
            return {"mechanisms_extra": "", "passwd_extra": "", "oauth2_passdb": ""}
        return {"mechanisms_extra": OAUTH2_MECHANISMS, "passwd_extra": OAUTH2_PASSWD_EXTRA,
                "oauth2_passdb": OAUTH2_PASSDB.format(conf=self.oauth2_conf)}

    def _start(self, timeout):
        # A free port can be taken by someone else before Dovecot binds it: a few tries.
        why = ""
        for _ in range(3):
            ports = [free_port() for _ in range(5)]
            if len(set(ports)) < 5:
                continue
            self.back_ports = ports[:4]
            self.lmtp_port = ports[4]
            self._write_conf()
            with open(self.stderr_file, "ab") as err:
                self.proc = subprocess.Popen([DOVECOT, "-F", "-c", self.conf],
                                             stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                             start_new_session=True)
            _running.add(self)
            alive = lambda: self.proc.poll() is None  # noqa: E731
            if _ports_listen(ports, time.monotonic() + timeout, alive):
                self.front = LoginFront(self.back_ports)
                self.imap_port, self.imaps_port, self.pop3_port, self.pop3s_port = \
                    self.front.ports
                return
            why = self.log()
            self._stop_master()
            if "Address already in use" not in why:
                break
        raise RuntimeError("Dovecot did not start; its log:\n" + why)

    # -- stop --

    def _stop_master(self):
        if self.front is not None:
            self.front.stop()
            self.front = None
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)   # the master stops its children
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)

    def stop(self, keep=False):
        """Stop Dovecot; remove its work directory unless keep."""
        self._stop_master()
        if self.introspection is not None:
            self.introspection.stop()
            self.introspection = None
        _running.discard(self)
        if not keep and self.work:
            shutil.rmtree(self.work, ignore_errors=True)
            self.work = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def log(self, n=40):
        """The tail of Dovecot's log (and of what it wrote to stderr)."""
        return _tail(self.stderr_file, n) + _tail(self.log_file, n)

    # -- clients --

    def ssl_context(self):
        """A client context that trusts only this server's CA and checks the host name."""
        return ssl.create_default_context(cafile=self.ca_file)

    @contextlib.contextmanager
    def imap(self, folder=None, readonly=True, starttls=False):
        """A logged-in imaplib client over IMAPS (or STARTTLS on the IMAP port);
        with folder, that folder selected."""
        if starttls:
            conn = imaplib.IMAP4("127.0.0.1", self.imap_port, timeout=10)
            conn.starttls(ssl_context=self.ssl_context())
        else:
            conn = imaplib.IMAP4_SSL("127.0.0.1", self.imaps_port,
                                     ssl_context=self.ssl_context(), timeout=10)
        try:
            conn.login(self.user, self.password)
            if folder is not None:
                typ, data = conn.select(_quote(folder), readonly=readonly)
                if typ != "OK":
                    raise imaplib.IMAP4.error(f"SELECT {folder}: {data}")
            yield conn
        finally:
            with contextlib.suppress(Exception):
                conn.logout()

    def deliver(self, raw, folder="INBOX", flags=()):
        """Append raw (bytes) to folder (made when missing) over IMAPS; return its UID."""
        raw = re.sub(rb"\r?\n", b"\r\n", raw)
        with self.imap() as conn:
            if folder.upper() != "INBOX":
                self._create(conn, folder)
            flag_list = "(" + " ".join(flags) + ")" if flags else None
            typ, data = conn.append(_quote(folder), flag_list, None, raw)
            if typ != "OK":
                raise imaplib.IMAP4.error(f"APPEND to {folder}: {data}")
        m = re.search(rb"APPENDUID \d+ (\d+)", data[0] or b"")
        return int(m.group(1)) if m else None

    def deliver_many(self, raws, folder="INBOX", window=100):
        """Append each message of raws (bytes) to folder over one IMAPS connection, in
        order; return their UIDs. The APPENDs go pipelined, window at a time, with
        non-synchronizing literals (LITERAL+, RFC 7888): thousands of messages in a few
        seconds, where one APPEND a round trip takes a millisecond or two each."""
        uids = []
        with self.imap() as conn:
            if folder.upper() != "INBOX":
                self._create(conn, folder)
            box = _quote(folder).encode()
            for start in range(0, len(raws), window):
                tags, out = [], []
                for i, raw in enumerate(raws[start:start + window], start):
                    raw = re.sub(rb"\r?\n", b"\r\n", raw)
                    tags.append(b"M%07d" % i)
                    out.append(b"%s APPEND %s {%d+}\r\n%s\r\n" % (tags[-1], box, len(raw), raw))
                conn.send(b"".join(out))
                done = {}
                while len(done) < len(tags):
                    line = conn.readline()
                    if not line:
                        raise imaplib.IMAP4.abort(f"APPEND to {folder}: connection closed")
                    m = re.match(rb"(M\d{7}) (OK|NO|BAD)(.*)", line)
                    if m:
                        done[m.group(1)] = (m.group(2), m.group(3))
                for tag in tags:
                    status, text = done[tag]
                    if status != b"OK":
                        raise imaplib.IMAP4.error(f"APPEND to {folder}: {status} {text}")
                    m = re.search(rb"APPENDUID \d+ (\d+)", text)
                    uids.append(int(m.group(1)) if m else None)
        return uids

    @staticmethod
    def _create(conn, name):
        typ, data = conn.create(_quote(name))
        if typ != "OK" and b"ALREADYEXISTS" not in b" ".join(d or b"" for d in data):
            raise imaplib.IMAP4.error(f"CREATE {name}: {data}")

    def create_folder(self, name):
        """Create a folder (fine when it exists). Hierarchy separator: '/'."""
        with self.imap() as conn:
            self._create(conn, name)

    def folders(self):
        """Names of every folder."""
        with self.imap() as conn:
            typ, data = conn.list()
        out = []
        for line in data:
            m = re.match(rb'\(.*?\) (?:"[^"]*"|NIL) (.*)$', line or b"")
            if m:
                name = m.group(1).decode()
                out.append(name[1:-1].replace('\\"', '"').replace("\\\\", "\\")
                           if name.startswith('"') else name)
        return out

    def uids(self, folder="INBOX"):
        """The UIDs in folder, ascending."""
        with self.imap(folder) as conn:
            return self._uids(conn)

    @staticmethod
    def _uids(conn):
        typ, data = conn.uid("SEARCH", None, "ALL")
        return sorted(int(u) for u in (data[0] or b"").split())

    def messages(self, folder="INBOX"):
        """Every message in folder as bytes, in UID order (read without setting \\Seen)."""
        return list(self.messages_by_uid(folder).values())

    def messages_by_uid(self, folder="INBOX"):
        """{uid: bytes} for folder, in UID order (read without setting \\Seen)."""
        with self.imap(folder) as conn:
            uids = self._uids(conn)
            if not uids:
                return {}
            typ, data = conn.uid("FETCH", ",".join(map(str, uids)), "(UID BODY.PEEK[])")
        out = {}
        for item in data:
            if isinstance(item, tuple):
                m = re.search(rb"UID (\d+)", item[0])
                out[int(m.group(1))] = item[1]
        return dict(sorted(out.items()))

    def flags(self, folder="INBOX"):
        """{uid: set of flags} for folder, e.g. {1: {"\\\\Seen"}}."""
        with self.imap(folder) as conn:
            uids = self._uids(conn)
            if not uids:
                return {}
            typ, data = conn.uid("FETCH", ",".join(map(str, uids)), "(UID FLAGS)")
        out = {}
        for item in data:
            line = item[0] if isinstance(item, tuple) else item
            m = re.search(rb"UID (\d+)", line or b"")
            f = re.search(rb"FLAGS \(([^)]*)\)", line or b"")
            if m and f:
                out[int(m.group(1))] = set(f.group(1).decode().split()) - {"\\Recent"}
        return out

    def count(self, folder="INBOX"):
        """How many messages folder holds (IMAP STATUS); 0 when it does not exist."""
        with self.imap() as conn:
            typ, data = conn.status(_quote(folder), "(MESSAGES)")
        if typ != "OK":
            return 0
        m = re.search(rb"MESSAGES (\d+)", data[0] or b"")
        return int(m.group(1)) if m else 0

    def clear(self, folder="INBOX"):
        """Expunge every message of folder."""
        with self.imap(folder, readonly=False) as conn:
            if self._uids(conn):
                conn.uid("STORE", "1:*", "+FLAGS.SILENT", r"(\Deleted)")
                conn.expunge()

    def wait_for(self, count, timeout=30.0, folder="INBOX", settle=0.5):
        """Wait (bounded) until folder holds at least count messages; return them all.

        After the count is reached it waits settle seconds more, so that one too many
        would show up as well. On timeout, returns what is there (the caller asserts).
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.count(folder) >= count:
                time.sleep(settle)
                break
            time.sleep(0.2)
        return self.messages(folder)


# ---- BounceMTA -------------------------------------------------------------------------------

# The next hop's answer to RCPT, by the start of the recipient's local part.
REPLIES = [
    ("unknown", "550 5.1.1 <{addr}>: Recipient address rejected: User unknown"),
    ("full", "552 5.2.2 <{addr}>: Mailbox full"),
    ("blocked", "554 5.7.1 Service unavailable; client blocked using zen.spamhaus.org"),
    ("nodomain", "550 5.1.2 Host unknown"),
    # temporary refusals: Postfix tries once here, so these are DSNs at once too
    ("greylisted", "451 4.7.1 <{addr}>: Recipient address rejected: Greylisted, try again later"),
    ("quota", "452 4.2.2 <{addr}>: Mailbox full, try again later"),
]


class ByLocalPart:
    """A servers.Script rcpt table that matches recipients by their local part's start."""

    def __init__(self, replies):
        self.replies = list(replies)

    def _find(self, address):
        local = address.rsplit("@", 1)[0].lower()
        for prefix, reply in self.replies:
            if local.startswith(prefix):
                return reply.format(addr=address)
        return None

    def __contains__(self, address):
        return self._find(address) is not None

    def __getitem__(self, address):
        reply = self._find(address)
        if reply is None:
            raise KeyError(address)
        return reply


BOUNCE_MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {work}/queue
data_directory = {work}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mta.blast.test
mydomain = blast.test
myorigin = $myhostname
mydestination =
relay_domains =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
local_recipient_maps =
biff = no
append_dot_mydomain = no
smtputf8_enable = yes
maillog_file = {work}/log/maillog
maillog_file_prefixes = {work}/log
smtpd_banner = $myhostname ESMTP blast test bounce MTA
# Loopback clients send anything to anyone, without AUTH or TLS.
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions =
smtpd_tls_security_level = none
smtpd_sasl_auth_enable = no
smtp_tls_security_level = none
lmtp_tls_security_level = none
# Mail for the senders' domain (the DSNs) goes to Dovecot over LMTP; all other mail to
# the scripted next hop, which refuses recipients by their local part.
transport_maps = inline:{{ {domain}=lmtp:inet:[127.0.0.1]:{lmtp_port} }}
default_transport = smtp:[127.0.0.1]:{next_hop}
# One try: a refusal, permanent or temporary, is a DSN at once.
maximal_queue_lifetime = 0
bounce_queue_lifetime = 0
delay_warning_time = 0h
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
smtp_connect_timeout = 5s
lmtp_connect_timeout = 5s
# One recipient per LMTP transaction, so that Dovecot writes Delivered-To.
lmtp_destination_recipient_limit = 1
# A DSN that cannot be delivered is dropped (logged), not sent to a postmaster.
notify_classes =
"""

# localrelay's services, plus the delivery agents used here.
BOUNCE_MASTER_EXTRA = """\
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
lmtp      unix  -       -       n       -       -       lmtp
"""


class BounceMTA:
    """A private Postfix on 127.0.0.1:self.port that turns refusals into real DSNs.

    It relays every message to an aiosmtpd next hop (self.next_hop) that answers RCPT
    by the recipient's local part (REPLIES, or replies: [(prefix, reply with {addr})]);
    other recipients are accepted (self.accepted). Postfix tries once, so a refusal,
    5xx or 4xx, is a DSN from MAILER-DAEMON to the envelope sender at once; mail for
    domain (the envelope senders' domain) is delivered over LMTP to dovecot's user.
    """

    def __init__(self, dovecot, domain="acme.example", replies=None, start_timeout=20.0):
        if os.geteuid() != 0:
            raise RuntimeError("BounceMTA: Postfix needs root to start")
        self.dovecot = dovecot
        self.domain = domain
        self.next_hop = None
        self.work = tempfile.mkdtemp(prefix="blast-bouncemta-")
        self.started = False
        _running.add(self)
        try:
            self.next_hop = servers.Scripted(servers.Script(
                rcpt=ByLocalPart(REPLIES if replies is None else replies)))
            self._start(start_timeout)
        except BaseException:
            self.stop()
            raise

    def _start(self, timeout):
        work = self.work
        for d in ("etc", "queue", "data", "log"):
            os.makedirs(os.path.join(work, d))
        _traversable(work)
        pf = pwd.getpwnam("postfix")
        os.chown(os.path.join(work, "data"), pf.pw_uid, pf.pw_gid)
        localrelay.write(os.path.join(work, "etc", "main.cf"), BOUNCE_MAIN_CF.format(
            work=work, domain=self.domain, lmtp_port=self.dovecot.lmtp_port,
            next_hop=self.next_hop.port))
        why = ""
        for _ in range(3):
            self.port = free_port()
            localrelay.write(os.path.join(work, "etc", "master.cf"),
                             localrelay.MASTER_CF.format(listen=f"127.0.0.1:{self.port}") +
                             BOUNCE_MASTER_EXTRA)
            try:
                localrelay.postfix(work, "start")
            except subprocess.CalledProcessError as e:
                why = e.stdout.decode(errors="replace")
                localrelay.stop(work)
                continue
            self.started = True
            if localrelay.wait_listening(self.port, time.monotonic() + timeout):
                return
            why = self.log()
            localrelay.stop(work)
            self.started = False
        raise RuntimeError("BounceMTA: Postfix did not start:\n" + why)

    @property
    def accepted(self):
        """What the next hop accepted: [(mail_from, [rcpt], content bytes)]."""
        return self.next_hop.messages if self.next_hop else []

    def wait_for(self, count, timeout=30.0, settle=0.5):
        """Wait (bounded) until the Dovecot INBOX holds count messages; return them all."""
        return self.dovecot.wait_for(count, timeout=timeout, settle=settle)

    def log(self, n=40):
        return _tail(os.path.join(self.work, "log", "maillog"), n) if self.work else ""

    def stop(self, keep=False):
        if self.work and self.started:
            localrelay.stop(self.work)
            self.started = False
        if self.next_hop is not None:
            self.next_hop.stop()
            self.next_hop = None
        _running.discard(self)
        if not keep and self.work:
            shutil.rmtree(self.work, ignore_errors=True)
            self.work = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


# ---- builders --------------------------------------------------------------------------------
# Each returns the message as bytes with CRLF line ends, as IMAP and SMTP carry it.

class _Generator(email.generator.BytesGenerator):
    """Writes a message/* part whose payload is text (feedback-report, delivery-status,
    global-delivery-status, global-headers) as its raw bytes, 8-bit ones included."""

    def _handle_message(self, msg):
        if isinstance(msg._payload, str):
            return self._handle_text(msg)
        return super()._handle_message(msg)

    def _handle_message_delivery_status(self, msg):
        if isinstance(msg._payload, str):
            return self._handle_text(msg)
        return super()._handle_message_delivery_status(msg)


def _bytes(msg):
    out = io.BytesIO()
    _Generator(out, mangle_from_=False, policy=email.policy.SMTP).flatten(msg)
    return out.getvalue()


def _leaf(ctype, payload, msg=None):
    """A part (or msg) holding payload (str or bytes, UTF-8 allowed) as it is: no
    transfer encoding, "8bit" when it has 8-bit bytes."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    payload = re.sub(rb"\r?\n", b"\n", payload)
    part = Message(policy=email.policy.SMTP) if msg is None else msg
    part["Content-Type"] = ctype
    if any(b > 127 for b in payload):
        part["Content-Transfer-Encoding"] = "8bit"
    part.set_payload(payload.decode("ascii", "surrogateescape"))
    return part


def _text(body):
    charset = "us-ascii" if body.isascii() else "utf-8"
    return f"text/plain; charset={charset}"


def _head(from_, to, subject, extra=(), domain=None):
    """A message with the usual header fields, in the usual order, and no body yet."""
    msg = Message(policy=email.policy.SMTP)
    msg["From"] = from_
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = email.utils.formatdate(usegmt=True)
    msg["Message-ID"] = email.utils.make_msgid(
        domain=domain or email.utils.parseaddr(from_)[1].rsplit("@", 1)[-1])
    for name, value in extra:
        msg[name] = value
    msg["MIME-Version"] = "1.0"
    return msg


def _report(msg, report_type, parts):
    msg["Content-Type"] = "multipart/report"
    msg.set_param("report-type", report_type)
    for part in parts:
        msg.attach(part)
    return _bytes(msg)


def _fields(pairs):
    return "".join(f"{k}: {v}\n" for k, v in pairs if v is not None)


def _subject_of(headers, default):
    m = re.search(rb"(?im)^Subject:[ \t]*(.*?)\r?$", headers or b"")
    return m.group(1).decode("utf-8", "replace") if m else default


def original_headers(from_="news@acme.example", to="user@example.com",
                     subject="The March newsletter", return_path="bounces+abc@acme.example"):
    """Header fields of a campaign message (bytes), for the builders' original_headers."""
    return (f"Return-Path: <{return_path}>\r\nFrom: {from_}\r\nTo: {to}\r\n"
            f"Subject: {subject}\r\nDate: {email.utils.formatdate(usegmt=True)}\r\n"
            f"Message-ID: {email.utils.make_msgid(domain='acme.example')}\r\n"
            f"List-Unsubscribe: <mailto:unsubscribe@acme.example>\r\n").encode()


def arf_report(original_rcpt, original_mail_from, original_headers: bytes,
               feedback_type="abuse", from_="fbl@isp.example", to="fbl@acme.example",
               user_agent="ExampleFBL/1.0", source_ip="192.0.2.1"):
    """An RFC 5965 feedback report: multipart/report; report-type=feedback-report with
    text/plain, message/feedback-report and text/rfc822-headers (original_headers)."""
    msg = _head(from_, to, "FW: " + _subject_of(original_headers, "complaint"))
    human = (f"This is an email abuse report for an email message received from IP "
             f"{source_ip} on {email.utils.formatdate(usegmt=True)}.\n"
             f"For more information about this format please see "
             f"https://www.rfc-editor.org/rfc/rfc5965.\n")
    machine = _fields([
        ("Feedback-Type", feedback_type),
        ("User-Agent", user_agent),
        ("Version", "1"),
        ("Original-Mail-From", f"<{original_mail_from}>"),
        ("Original-Rcpt-To", f"<{original_rcpt}>"),
        ("Arrival-Date", email.utils.formatdate(usegmt=True)),
        ("Source-IP", source_ip),
        ("Reported-Domain", original_mail_from.rsplit("@", 1)[-1]),
    ])
    return _report(msg, "feedback-report", [
        _leaf(_text(human), human),
        _leaf("message/feedback-report", machine),
        _leaf("text/rfc822-headers", original_headers)])


def _reply(to, from_, subject, extra, body):
    return _bytes(_leaf(_text(body), body, _head(from_, to, subject, extra)))


def auto_reply(to, from_, subject="Out of office", in_reply_to=None):
    """An RFC 3834 automatic reply (Auto-Submitted: auto-replied) from from_ to to."""
    extra = [("Auto-Submitted", "auto-replied")]
    if in_reply_to:
        extra += [("In-Reply-To", in_reply_to), ("References", in_reply_to)]
    return _reply(to, from_, subject, extra,
                  "I am out of the office until Monday and will read your message then.\n")


def vacation_without_header(to, from_, subject="Out of office", marker="X-Autoreply"):
    """An out-of-office reply without Auto-Submitted, marked only by marker:
    "X-Autoreply" (X-Autoreply: yes) or "Precedence" (Precedence: auto_reply)."""
    field = {"x-autoreply": ("X-Autoreply", "yes"),
             "precedence": ("Precedence", "auto_reply")}[marker.lower()]
    return _reply(to, from_, subject, [field],
                  "Thank you for your message. I am on vacation and back on the 14th.\n")


def unsubscribe_request(from_, to, subject="unsubscribe"):
    """A plain "unsubscribe" message from from_ to a List-Unsubscribe mailto: address."""
    return _reply(to, from_, subject, [], "unsubscribe\n")


def dsn(original_rcpt, to="bounces+abc@acme.example", status="5.1.1", action="failed",
        diagnostic=None, reporting_mta="mx.example.com", original_headers=None,
        from_="MAILER-DAEMON@mx.example.com"):
    """An RFC 3464 DSN from another MTA: multipart/report; report-type=delivery-status
    with text/plain, message/delivery-status and text/rfc822-headers."""
    return _dsn(False, original_rcpt, to, status, action, diagnostic, reporting_mta,
                original_headers, from_)


def global_dsn(original_rcpt="jörg@bücher.example", to="bounces+abc@acme.example",
               status="5.1.1", action="failed", diagnostic=None,
               reporting_mta="mx.bücher.example", original_headers=None,
               from_="MAILER-DAEMON@mx.example.com"):
    """An RFC 6533 DSN: message/global-delivery-status (8bit) whose Original- and
    Final-Recipient are "utf-8;" addresses in raw UTF-8, and message/global-headers."""
    return _dsn(True, original_rcpt, to, status, action, diagnostic, reporting_mta,
                original_headers, from_)


def _dsn(utf8, rcpt, to, status, action, diagnostic, mta, headers, from_):
    if diagnostic is None:
        diagnostic = f"smtp; 550 {status} <{rcpt}>: Recipient address rejected: User unknown"
    if headers is None:
        headers = original_headers(to=rcpt, return_path=to)
    kind = "utf-8" if utf8 else "rfc822"
    msg = _head(f"Mail Delivery System <{from_}>", to, "Undelivered Mail Returned to Sender",
                [("Auto-Submitted", "auto-replied")])
    human = (f"I'm sorry to have to inform you that your message could not\n"
             f"be delivered to one or more recipients.\n\n"
             f"<{rcpt}>: {diagnostic.split(';', 1)[-1].strip()}\n")
    report = _fields([("Reporting-MTA", f"dns; {mta}"),
                      ("Arrival-Date", email.utils.formatdate(usegmt=True))]) + "\n" + _fields([
        ("Original-Recipient", f"{kind}; {rcpt}"),
        ("Final-Recipient", f"{kind}; {rcpt}"),
        ("Action", action),
        ("Status", status),
        ("Diagnostic-Code", diagnostic),
    ])
    return _report(msg, "delivery-status", [
        _leaf(_text(human), human),
        _leaf("message/global-delivery-status" if utf8 else "message/delivery-status", report),
        _leaf("message/global-headers" if utf8 else "text/rfc822-headers", headers)])


# ---- reading reports -------------------------------------------------------------------------

def _field_blocks(body):
    """RFC 3464 field groups (blank-line separated) as [{lower-case name: value}]."""
    text = body.decode("utf-8", "replace").replace("\r\n", "\n")
    blocks = []
    for chunk in re.split(r"\n[ \t]*\n", text.strip("\n")):
        fields, name = {}, None
        for line in chunk.split("\n"):
            if line[:1] in (" ", "\t") and name:
                fields[name] += " " + line.strip()
            elif ":" in line:
                name, value = line.split(":", 1)
                name = name.strip().lower()
                fields[name] = value.strip()
        if fields:
            blocks.append(fields)
    return blocks


def report_part(raw, ctype):
    """The raw body (bytes, transfer encoding undone) of the first part of raw whose
    Content-Type is ctype (e.g. "message/delivery-status"), or None."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    for part in msg.walk():
        if part.get_content_type() != ctype:
            continue
        if part.is_multipart() or isinstance(part.get_payload(), list):
            # message/* parsed as messages: take the part's bytes back as they were
            out = io.BytesIO()
            email.generator.BytesGenerator(out, mangle_from_=False,
                                           policy=email.policy.compat32).flatten(part)
            head, _, body = out.getvalue().partition(b"\n\n")
            return body
        body = part.get_payload(decode=True)
        return body if body is not None else b""
    return None


def delivery_status(raw):
    """The fields of a DSN's message/delivery-status or message/global-delivery-status:
    (per-message fields, [per-recipient fields]), names lower-cased, values unfolded."""
    body = report_part(raw, "message/delivery-status")
    if body is None:
        body = report_part(raw, "message/global-delivery-status")
    if body is None:
        raise ValueError("no delivery-status part")
    blocks = _field_blocks(body)
    return (blocks[0] if blocks else {}), blocks[1:]


def feedback_report(raw):
    """The fields of an ARF report's message/feedback-report part (names lower-cased)."""
    body = report_part(raw, "message/feedback-report")
    if body is None:
        raise ValueError("no feedback-report part")
    blocks = _field_blocks(body)
    return blocks[0] if blocks else {}
