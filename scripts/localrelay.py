#!/usr/bin/python3
"""A throwaway Postfix relay on loopback, for the demo and the integration tests.

Starts a private Postfix instance (its own config, queue and data directories under
one work directory) that listens on 127.0.0.1:PORT, requires STARTTLS before AUTH,
authenticates with Cyrus SASL against a sasldb file, relays only for authenticated
clients, and delivers every accepted message, whatever the recipient domain, into
one Maildir (WORKDIR/mail/catchall/) so that tests can read back what arrived.

It also writes a throwaway CA and a server certificate for "localhost" and
127.0.0.1 (WORKDIR/tls/ca.pem is what a client trusts). Nothing here is a secret:
the keys and the password are made fresh for each run and thrown away with it.

Needs root (Postfix's master runs as root and drops privileges), the Debian
packages postfix, libsasl2-modules, libsasl2-modules-db, sasl2-bin and openssl.

Command line:
    localrelay.py start WORKDIR [--port N]   prints KEY=VALUE lines (port, user, ...)
    localrelay.py stop WORKDIR
"""

import argparse
import glob
import os
import pwd
import grp
import shutil
import signal
import socket
import subprocess
import sys
import time

USER = "demo"
REALM = "relay.blast.test"
# Made up for each run; only ever used against this loopback instance.
PASSWORD = "throwaway-" + os.urandom(6).hex()

MASTER_CF = """\
# service type  private unpriv  chroot  wakeup  maxproc command
{listen} inet n       -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {work}/queue
data_directory = {work}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = {realm}
mydomain = blast.test
myorigin = $myhostname
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks =
alias_maps =
alias_database =
local_recipient_maps =
biff = no
append_dot_mydomain = no
smtputf8_enable = yes
maillog_file = {work}/log/maillog
maillog_file_prefixes = {work}/log
smtpd_banner = $myhostname ESMTP blast test relay
# Relay for authenticated clients only, and only after STARTTLS.
smtpd_relay_restrictions = permit_sasl_authenticated, reject
smtpd_recipient_restrictions = permit_sasl_authenticated, reject
smtpd_tls_security_level = encrypt
smtpd_tls_auth_only = yes
smtpd_tls_cert_file = {work}/tls/server.pem
smtpd_tls_key_file = {work}/tls/server.key
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = cyrus
smtpd_sasl_path = smtpd
smtpd_sasl_local_domain = {realm}
# Debian's smtpd reads $config_directory/sasl/smtpd.conf.
cyrus_sasl_config_path = {work}/etc/sasl
smtpd_sasl_security_options = noanonymous
smtpd_sasl_tls_security_options = noanonymous
# Every accepted message, whatever its domain, lands in one Maildir.
default_transport = virtual
virtual_mailbox_base = {work}/mail
virtual_mailbox_maps = static:catchall/
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
"""

SASL_CONF = """\
pwcheck_method: auxprop
auxprop_plugin: sasldb
sasldb_path: {work}/etc/sasl/sasldb2
mech_list: PLAIN LOGIN CRAM-MD5
"""


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kw)


def make_tls(work):
    tls = os.path.join(work, "tls")
    os.makedirs(tls, exist_ok=True)
    ossl = ["openssl"]
    run(ossl + ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                "-subj", "/CN=blast throwaway test CA",
                "-keyout", f"{tls}/ca.key", "-out", f"{tls}/ca.pem"])
    run(ossl + ["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
                "-keyout", f"{tls}/server.key", "-out", f"{tls}/server.csr"])
    with open(f"{tls}/ext.cnf", "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                "extendedKeyUsage=serverAuth\n")
    run(ossl + ["x509", "-req", "-in", f"{tls}/server.csr", "-CA", f"{tls}/ca.pem",
                "-CAkey", f"{tls}/ca.key", "-CAcreateserial", "-days", "2",
                "-extfile", f"{tls}/ext.cnf", "-out", f"{tls}/server.pem"])
    os.chmod(f"{tls}/server.key", 0o600)


def write(path, text, mode=0o644):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def postfix(work, *args):
    return run(["/usr/sbin/postfix", "-c", f"{work}/etc", *args])


def wait_listening(port, deadline):
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.settimeout(2)
                if s.recv(512).startswith(b"220"):
                    s.sendall(b"QUIT\r\n")
                    return True
        except OSError:
            time.sleep(0.1)
    return False


def start(work, port=None):
    work = os.path.abspath(work)
    if os.geteuid() != 0:
        raise SystemExit("localrelay: Postfix needs root to start")
    if os.path.exists(f"{work}/queue/pid/master.pid"):
        stop(work)
    for d in ("etc", "etc/sasl", "queue", "data", "log", "mail"):
        os.makedirs(f"{work}/{d}", exist_ok=True)
    # Postfix's unprivileged processes must reach everything under WORK.
    path = work
    while path != "/":
        os.chmod(path, os.stat(path).st_mode | 0o011)
        path = os.path.dirname(path)
    nobody = pwd.getpwnam("nobody")
    pf = pwd.getpwnam("postfix")
    os.chown(f"{work}/mail", nobody.pw_uid, nobody.pw_gid)
    os.chown(f"{work}/data", pf.pw_uid, pf.pw_gid)
    make_tls(work)

    write(f"{work}/etc/sasl/smtpd.conf", SASL_CONF.format(work=work))
    p = subprocess.run(["/usr/sbin/saslpasswd2", "-f", f"{work}/etc/sasl/sasldb2",
                        "-p", "-c", "-u", REALM, USER],
                       input=PASSWORD.encode(), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT)
    if p.returncode != 0:
        raise SystemExit("localrelay: saslpasswd2 failed: " + p.stdout.decode())
    os.chown(f"{work}/etc/sasl/sasldb2", 0, pf.pw_gid)
    os.chmod(f"{work}/etc/sasl/sasldb2", 0o640)
    write(f"{work}/password", PASSWORD + "\n", 0o600)

    # A port chosen here can be taken by someone else before Postfix binds it:
    # try a few free ports. A port the caller asked for is tried once.
    fixed = port is not None
    last = ""
    for _ in range(1 if fixed else 5):
        port = port or free_port()
        write(f"{work}/etc/main.cf", MAIN_CF.format(
            work=work, realm=REALM, uid=nobody.pw_uid, gid=nobody.pw_gid))
        write(f"{work}/etc/master.cf", MASTER_CF.format(listen=f"127.0.0.1:{port}"))
        try:
            postfix(work, "start")
        except subprocess.CalledProcessError as e:
            last = e.stdout.decode(errors="replace")
            port = None if not fixed else port
            continue
        if wait_listening(port, time.monotonic() + 20):
            break
        last = tail(f"{work}/log/maillog")
        stop(work)
        port = None if not fixed else port
    else:
        where = f" on 127.0.0.1:{port} (is the port in use?)" if fixed else ""
        raise SystemExit(f"localrelay: Postfix did not start{where}:\n" + last)
    info = {
        "port": port, "user": USER, "password": PASSWORD,
        "ca_file": f"{work}/tls/ca.pem", "maildir": f"{work}/mail/catchall",
        "log": f"{work}/log/maillog",
    }
    write(f"{work}/relay.env",
          "".join(f"{k.upper()}={v}\n" for k, v in info.items()), 0o600)
    return info


def tail(path, n=30):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def master_pid(work):
    """The pid in WORK's master.pid, or None (no file, or not a number)."""
    try:
        with open(f"{work}/queue/pid/master.pid") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _stat(pid):
    """(name, state, process group) of pid from /proc/PID/stat; None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    head, _, rest = stat.rpartition(")")
    fields = rest.split()
    try:
        return head.partition("(")[2], fields[0], int(fields[2])
    except (IndexError, ValueError):
        return None


def _live(state):
    return state not in ("Z", "X", "x")   # a zombie has exited: nothing left to wait for


def master_running(pid):
    """True while pid is a Postfix master that runs: not gone, not a zombie.

    Postfix leaves master.pid behind when it stops, so the file says nothing; the
    process does. A zombie counts as gone (the master has exited; reaping it is its
    parent's business), and so does a process of another name that reuses the pid.
    """
    if not os.path.isdir("/proc/self"):
        try:                                   # no /proc: all kill(pid, 0) can tell
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True
    st = _stat(pid)
    return st is not None and st[0] == "master" and _live(st[1])


def group_running(pgid):
    """True while a process of group pgid (the master's children) has not exited."""
    try:
        names = os.listdir("/proc")
    except OSError:
        return False
    for name in names:
        if name.isdigit():
            st = _stat(name)
            if st is not None and st[2] == pgid and _live(st[1]):
                return True
    return False


def wait_gone(pid, timeout):
    """Wait, bounded, until master pid and the children it leads have exited (so that
    its port is free again); False on timeout."""
    deadline = time.monotonic() + timeout
    while master_running(pid) or group_running(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def stop(work, timeout=10.0):
    """Stop WORK's Postfix and wait (bounded) until its master and the master's
    children have exited; then postfix abort, then SIGKILL for the master."""
    work = os.path.abspath(work)
    pid = master_pid(work)
    if pid is None or not master_running(pid):
        return
    try:
        postfix(work, "stop")
    except subprocess.CalledProcessError:
        pass
    if wait_gone(pid, timeout):
        return
    subprocess.run(["/usr/sbin/postfix", "-c", f"{work}/etc", "abort"],
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    if not wait_gone(pid, 5) and master_running(pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        wait_gone(pid, 5)


def delivered(work):
    """Paths of the messages delivered so far, oldest first."""
    files = glob.glob(f"{os.path.abspath(work)}/mail/catchall/new/*")
    return sorted(files, key=os.path.getmtime)


def main():
    ap = argparse.ArgumentParser(description="throwaway Postfix relay on loopback")
    ap.add_argument("action", choices=["start", "stop"])
    ap.add_argument("workdir")
    ap.add_argument("--port", type=int)
    a = ap.parse_args()
    if a.action == "start":
        info = start(a.workdir, a.port)
        for k, v in info.items():
            if k != "password":
                print(f"{k.upper()}={v}")
    else:
        stop(a.workdir)


if __name__ == "__main__":
    main()
