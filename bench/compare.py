#!/usr/bin/python3
"""blast and its peers on the same work, side by side, in one run (docs/performance.md).

The work: N personalized messages of about 4 KB (text + HTML, 10 substitutions in
each part) to Postfix's smtp-sink on 127.0.0.1, at each connection count of CONNS,
first on loopback, then through bench/delayproxy.py (RTT_MS round trip). For each
configuration the senders run in turn, A B C A B C ..., ROUNDS times; the table gives
medians and the ratios blast/peer of the medians, against the targets of issue 9.

Peers:
  smtp-source  Postfix's generator: fixed body, no rendering (the practical limit);
               -d keeps each session for many messages, -s sessions, -l body bytes
  nodemailer   Nodemailer's pooled SMTP transport (bench/nodemailer-send.js)
  swaks, curl  one message per process, one process after another, on a sample of
               N_PROC messages that blast renders beforehand (their rendering is free)
With BLAST_BEFORE set to another build of blast (the commit before a change, say),
the peer "blast-before" runs it on the same work in the same alternation, and a
table compares the two: the way to show that a change costs nothing, or saves CPU.
blast also runs with its journal on tmpfs ("blast tmpfs journal"), to show what the
journal's fdatasync before each end of data costs. Then blast alone against Postfix's smtpd (which offers
CHUNKING) behind the same proxy, with DATA and with BDAT.

Environment (defaults in brackets):
  BLAST [build/blast]  ROUNDS [3]  CONNS ["1 4 16"]  N [20000]  RTT_MS [20]
  N_RTT_PER_CONN [300] messages per connection in the RTT runs
  N_PROC [300]  N_PROC_RTT [50]  swaks and curl samples (loopback, RTT)
  PEERS ["blast blast-tmpfs smtp-source nodemailer swaks curl"]
  PARTS ["loopback rtt chunking"]
  OUT [build/bench]    where compare.json and table.md go
Every address is on 127.0.0.1; nothing leaves the machine.
"""

import datetime
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# the benchmarks' recipient domains are fictional: no DNS lookups (docs/campaign.md)
os.environ.setdefault("BLAST_DNS_SERVERS", "off")
BENCH = os.path.join(ROOT, "bench")


def env_int(name, default):
    return int(os.environ.get(name, default))


BLAST = os.path.abspath(os.environ.get("BLAST", os.path.join(ROOT, "build", "blast")))
BLAST_BEFORE = os.environ.get("BLAST_BEFORE")
ROUNDS = env_int("ROUNDS", 3)
CONNS = [int(c) for c in os.environ.get("CONNS", "1 4 16").split()]
N = env_int("N", 20000)
RTT_MS = float(os.environ.get("RTT_MS", "20"))
N_RTT_PER_CONN = env_int("N_RTT_PER_CONN", 300)
N_PROC = env_int("N_PROC", 300)
N_PROC_RTT = env_int("N_PROC_RTT", 50)
PEERS = os.environ.get("PEERS", "blast blast-tmpfs smtp-source nodemailer swaks curl").split()
PARTS = os.environ.get("PARTS", "loopback rtt chunking").split()
OUT = os.path.abspath(os.environ.get("OUT", os.path.join(ROOT, "build", "bench")))

FROM = "news@acme.example"
COLUMNS = ["first_name", "last_name", "city", "country", "plan", "signup", "score", "code",
           "account", "manager"]
LABEL = {"blast": "blast", "blast-before": "blast before", "blast-tmpfs": "blast tmpfs journal",
         "smtp-source": "smtp-source",
         "nodemailer": "Nodemailer pool", "swaks": "swaks (1 msg/process)",
         "curl": "curl (1 msg/process)", "blast-data": "blast DATA",
         "blast-bdat": "blast BDAT (CHUNKING)"}


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_banner(port, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.settimeout(2)
                if s.recv(512).startswith(b"220"):
                    s.sendall(b"QUIT\r\n")
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"no SMTP server answers on 127.0.0.1:{port}")


# ---- the work ---------------------------------------------------------------------------

WORDS = ("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "
         "incididunt ut labore et dolore magna aliqua ut enim ad minim veniam quis nostrud "
         "exercitation ullamco laboris nisi aliquip ex ea commodo consequat").split()


def paragraph(i, n):
    words = [WORDS[(i * 7 + k * 3) % len(WORDS)] for k in range(n)]
    words[0] = words[0].capitalize()
    lines, line = [], ""
    for w in words:
        if len(line) + len(w) + 1 > 72:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}" if line else w
    lines.append(line + ".")
    return "\n".join(lines)


def prepare(work):
    """list.csv (the largest count needed), body.txt, body.html; returns nothing."""
    rows = max([N, N_PROC, N_PROC_RTT] + [N_RTT_PER_CONN * c for c in CONNS])
    with open(f"{work}/list.csv", "w") as f:
        f.write("email," + ",".join(COLUMNS) + "\n")
        for i in range(rows):
            f.write(f"subscriber.{i:07d}@mail{i % 97:02d}.example.com,Firstname{i},"
                    f"Lastname{i % 1000},City {i % 5000},Country {i % 200},plan-{i % 3},"
                    f"2024-01-{i % 28 + 1:02d},{i % 100},C{i:07d},ACCT-{i * 7919 % 1000003},"
                    f"Manager {i % 37}\n")
    tail_text = ("Your plan {{plan}} since {{signup}}, account {{account}}, score {{score}}.\n"
                 "Your manager {{manager}} in {{city}}, {{country}}. Code {{code}}.\n")
    paras = [paragraph(i, 40) for i in range(6)]
    text = ("Hello {{first_name}} {{last_name}},\n\n" + "\n\n".join(paras) + "\n\n" +
            tail_text + "\n-- \nAcme News\n")
    html = ("<html><body>\n<p>Hello {{first_name}} {{last_name}},</p>\n" +
            "\n".join("<p>" + p.replace("\n", " ") + "</p>" for p in paras) + "\n<p>" +
            tail_text.replace("\n", "<br>\n") + "</p>\n<p>-- <br>Acme News</p>\n"
            "</body></html>\n")
    with open(f"{work}/body.txt", "w") as f:
        f.write(text)
    with open(f"{work}/body.html", "w") as f:
        f.write(html)
    return rows


SUBJECT = "{{first_name}}, your November update"


def campaign(work, name, port, conns, extra=""):
    path = f"{work}/{name}.yml"
    with open(path, "w") as f:
        f.write(f"""name: bench-{name}
from: "Acme News <{FROM}>"
subject: "{SUBJECT}"
recipients: {{path: list.csv, name_column: first_name}}
body: {{text: body.txt, html: body.html}}
retry: {{attempts: 1}}
{extra}relays: [{{host: 127.0.0.1, port: {port}, tls: none, connections: {conns}, messages_per_connection: 0}}]
""")
    return path


def head(work, count):
    """list-COUNT.csv: the first COUNT rows."""
    path = f"{work}/list-{count}.csv"
    if not os.path.exists(path):
        with open(f"{work}/list.csv") as src, open(path, "w") as dst:
            for i, line in enumerate(src):
                if i > count:
                    break
                dst.write(line)
    return path


# ---- servers ----------------------------------------------------------------------------

class Sink:
    """smtp-sink on loopback, counting what reached the end of data (-c)."""

    def __init__(self, work):
        self.port = free_port()
        self.out = tempfile.NamedTemporaryFile(dir=work, prefix="sink-", delete=False)
        self.proc = subprocess.Popen(["/usr/sbin/smtp-sink", "-c", "-u", "nobody",
                                      f"127.0.0.1:{self.port}", "1024"],
                                     stdin=subprocess.DEVNULL, stdout=self.out,
                                     stderr=subprocess.DEVNULL)
        wait_banner(self.port)

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
        self.out.close()
        with open(self.out.name, "rb") as f:
            text = f.read().decode(errors="replace")
        os.unlink(self.out.name)
        m = re.findall(r"mesg=(\d+)", text)
        return int(m[-1]) if m else 0


class Proxy:
    """bench/delayproxy.py in front of a port: RTT_MS / 2 each way."""

    def __init__(self, target_port):
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", f"{BENCH}/delayproxy.py", "--target",
             f"127.0.0.1:{target_port}", "--delay-ms", str(RTT_MS / 2)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().split()
        if len(line) != 3 or line[0] != "listening":
            raise RuntimeError("the delay proxy did not start")
        self.port = int(line[2])

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def measure_rtt(port, count=30):
    """Median time of a NOOP and its reply through port: the round trip the runs see."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        f = s.makefile("rb")
        f.readline()
        times = []
        for _ in range(count):
            t = time.monotonic()
            s.sendall(b"NOOP\r\n")
            f.readline()
            times.append(time.monotonic() - t)
        s.sendall(b"QUIT\r\n")
        f.readline()
    return statistics.median(times)


POSTFIX_MASTER = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

POSTFIX_MAIN = """\
compatibility_level = 3.6
queue_directory = {work}/queue
data_directory = {work}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = bench.blast.test
mydomain = blast.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
alias_maps =
alias_database =
local_recipient_maps =
biff = no
smtpd_peername_lookup = no
in_flow_delay = 0
maillog_file = {work}/log/maillog
maillog_file_prefixes = {work}/log
# Every accepted message is thrown away once queued: nothing accumulates.
default_transport = discard
"""


class Smtpd:
    """A throwaway Postfix (smtpd offers PIPELINING and CHUNKING) whose queue is on
    tmpfs and which discards what it accepts. Needs root, as scripts/localrelay.py."""

    def __init__(self):
        base = "/dev/shm" if os.path.isdir("/dev/shm") else None
        self.work = tempfile.mkdtemp(prefix="blast-bench-postfix-", dir=base)
        import pwd
        pf = pwd.getpwnam("postfix")
        for d in ("etc", "queue", "data", "log"):
            os.makedirs(f"{self.work}/{d}")
        os.chmod(self.work, 0o755)
        os.chown(f"{self.work}/data", pf.pw_uid, pf.pw_gid)
        self.port = free_port()
        with open(f"{self.work}/etc/main.cf", "w") as f:
            f.write(POSTFIX_MAIN.format(work=self.work))
        with open(f"{self.work}/etc/master.cf", "w") as f:
            f.write(POSTFIX_MASTER.format(port=self.port))
        subprocess.run(["/usr/sbin/postfix", "-c", f"{self.work}/etc", "start"], check=True,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.STDOUT)
        wait_banner(self.port)

    def stop(self):
        subprocess.run(["/usr/sbin/postfix", "-c", f"{self.work}/etc", "stop"],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.STDOUT)
        pidfile = f"{self.work}/queue/pid/master.pid"
        deadline = time.monotonic() + 10
        while os.path.exists(pidfile) and time.monotonic() < deadline:
            time.sleep(0.1)
        shutil.rmtree(self.work, ignore_errors=True)


# ---- one run ----------------------------------------------------------------------------

def timed(cmd, cwd, stdout_path):
    """Run cmd under /usr/bin/time; returns (wall s, cpu s, max RSS KB, exit code)."""
    tfile = stdout_path + ".time"
    with open(stdout_path, "w") as out:
        t0 = time.monotonic()
        p = subprocess.run(["/usr/bin/time", "-f", "%U %S %M", "-o", tfile, *cmd], cwd=cwd,
                           stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        wall = time.monotonic() - t0
    with open(tfile) as f:
        last = f.read().strip().splitlines()[-1].split()
    user, sys_, rss = float(last[0]), float(last[1]), int(last[2])
    return wall, user + sys_, rss, p.returncode


class Work:
    def __init__(self, work, sizes):
        self.dir = work
        self.sizes = sizes
        self.proc_jobs = {}

    def proc_sample(self, count):
        """COUNT messages rendered by blast --dry-run, and a job list 'FILE ADDRESS'."""
        if count in self.proc_jobs:
            return self.proc_jobs[count]
        d = f"{self.dir}/eml-{count}"
        c = campaign(self.dir, f"dry{count}", 25, 1)
        subprocess.run([BLAST, "send", c, "--dry-run", d, "--limit", str(count), "--quiet",
                        "--fresh", "--journal", f"{self.dir}/dry{count}.journal",
                        "--report", f"{self.dir}/dry{count}.json"], check=True,
                       cwd=self.dir, stdin=subprocess.DEVNULL)
        with open(f"{self.dir}/list.csv") as f:
            f.readline()
            addrs = [next(f).split(",", 1)[0] for _ in range(count)]
        jobs = f"{self.dir}/jobs-{count}"
        files = sorted((n for n in os.listdir(d) if n.endswith(".eml")),
                       key=lambda n: int(n.split(".")[0]))
        if len(files) != count:
            raise RuntimeError(f"blast --dry-run wrote {len(files)} files, not {count}")
        with open(jobs, "w") as f:
            for name, addr in zip(files, addrs):
                f.write(f"{d}/{name} {addr}\n")
        self.proc_jobs[count] = jobs
        return jobs


def run_one(w, peer, conns, count, port, tag):
    """Send count messages with peer to port; returns a dict of figures."""
    out = f"{w.dir}/{tag}.out"
    cwd = w.dir
    extra = ""
    if peer in ("blast", "blast-before", "blast-tmpfs", "blast-data", "blast-bdat"):
        if peer == "blast-bdat":
            extra = "chunking: true\n"
        c = campaign(w.dir, tag, port, conns, extra)
        lst = head(w.dir, count)
        with open(c) as f:
            text = f.read().replace("path: list.csv", f"path: {os.path.basename(lst)}")
        with open(c, "w") as f:
            f.write(text)
        jdir = "/dev/shm" if peer == "blast-tmpfs" else w.dir
        journal = f"{jdir}/blast-bench-{tag}.journal"
        report = f"{w.dir}/{tag}.json"
        exe = os.path.abspath(BLAST_BEFORE) if peer == "blast-before" else BLAST
        cmd = [exe, "send", c, "-v", "--fresh", "--journal", journal, "--report", report]
    elif peer == "smtp-source":
        body = max(w.sizes["blast"] - w.sizes["smtp-source-headers"], 100)
        cmd = ["/usr/sbin/smtp-source", "-d", "-s", str(conns), "-m", str(count),
               "-l", str(body), "-f", FROM, "-t", "subscriber@mail00.example.com",
               "-M", "bench.blast.test", f"127.0.0.1:{port}"]
    elif peer == "nodemailer":
        cmd = ["node", f"{BENCH}/nodemailer-send.js", "--port", str(port), "--connections",
               str(conns), "--csv", head(w.dir, count), "--text", "body.txt", "--html",
               "body.html", "--subject", SUBJECT]
    elif peer in ("swaks", "curl"):
        jobs = w.proc_sample(count)
        if peer == "swaks":
            one = (f'swaks --server 127.0.0.1 --port {port} --from {FROM} --to "$a" '
                   f'--helo bench.blast.test --data "@$f" >/dev/null || exit 1')
        else:
            one = (f'curl -sS --url smtp://127.0.0.1:{port} --mail-from {FROM} '
                   f'--mail-rcpt "$a" -T "$f" || exit 1')
        cmd = ["/bin/sh", "-c", f'while read -r f a; do {one}; done < "{jobs}"']
    else:
        raise ValueError(peer)

    wall, cpu, rss, rc = timed(cmd, cwd, out)
    r = {"peer": peer, "connections": conns, "messages": count, "wall_s": round(wall, 4),
         "cpu_s": round(cpu, 3), "max_rss_kb": rss, "exit": rc}
    with open(out, errors="replace") as f:
        text = f.read()
    if peer.startswith("blast"):
        try:
            with open(report) as f:
                r["delivered"] = json.load(f)["summary"]["by_status"]["delivered"]
            os.unlink(report)
        except (OSError, ValueError, KeyError):
            r["delivered"] = 0
        for leftover in (journal, journal + ".lock"):
            if os.path.exists(leftover):
                os.unlink(leftover)
        trips = re.findall(r"session done: (\d+) messages, (\d+) writes, (\d+) round trips",
                           text)
        if trips:
            r["blast_sessions"] = len(trips)
            r["blast_round_trips"] = sum(int(t[2]) for t in trips)
            r["blast_writes"] = sum(int(t[1]) for t in trips)
        ok = rc == 0 and r["delivered"] == count
    elif peer == "nodemailer":
        try:
            res = json.loads(text.strip().splitlines()[-1])
        except (ValueError, IndexError):
            res = {"sent": 0, "first_error": text[-500:]}
        r["delivered"] = res.get("sent", 0)
        ok = rc == 0 and r["delivered"] == count
    else:
        ok = rc == 0
    if not ok:
        r["error"] = text[-2000:]
    os.unlink(out)
    return r, ok


# ---- the runs ---------------------------------------------------------------------------

def sizes_of(work):
    """The size of blast's message for row 1, Nodemailer's, and smtp-source's headers."""
    c = campaign(work, "size", 25, 1)
    p = subprocess.run([BLAST, "preview", c, "--row", "1"], cwd=work, check=True,
                       stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    blast_size = len(p.stdout.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    p = subprocess.run(["node", f"{BENCH}/nodemailer-send.js", "--size", "--csv",
                        f"{work}/list.csv", "--text", f"{work}/body.txt", "--html",
                        f"{work}/body.html", "--subject", SUBJECT], check=True,
                       stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    nm_size = json.loads(p.stdout)["size"]
    # smtp-source's own header lines, measured once through a dumping smtp-sink
    dump = tempfile.mkdtemp(prefix="dump-", dir=work)
    os.chmod(dump, 0o777)
    port = free_port()
    sink = subprocess.Popen(["/usr/sbin/smtp-sink", "-u", "nobody", "-d", f"{dump}/%M.",
                             f"127.0.0.1:{port}", "16"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_banner(port)
        subprocess.run(["/usr/sbin/smtp-source", "-m", "1", "-l", "1000", "-f", FROM,
                        "-t", "subscriber@mail00.example.com", "-M", "bench.blast.test",
                        f"127.0.0.1:{port}"], check=True, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 5
        while not os.listdir(dump) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        sink.terminate()
        sink.wait()
    with open(os.path.join(dump, os.listdir(dump)[0]), "rb") as f:
        raw = f.read()
    body_start = raw.find(b"\n\n")
    # drop what smtp-sink adds: the envelope as X- lines and its Received header
    hdrs = [ln for ln in raw[:body_start].split(b"\n")
            if ln and not ln.startswith((b"X-", b"Received:", b"\t", b" "))]
    header_bytes = sum(len(h) + 2 for h in hdrs) + 2
    shutil.rmtree(dump, ignore_errors=True)
    return {"blast": blast_size, "nodemailer": nm_size, "smtp-source-headers": header_bytes}


def peers_for(part, conns):
    want = []
    for p in PEERS:
        if p in ("swaks", "curl") and conns != 1:
            continue
        if p == "blast-before" and not BLAST_BEFORE:
            log("compare: blast-before needs BLAST_BEFORE (a blast to compare with); skipped")
            continue
        if p in ("swaks", "curl") and not shutil.which(p):
            log(f"compare: {p} is not installed; skipped")
            continue
        want.append(p)
    return want


def count_for(part, peer, conns):
    if peer in ("swaks", "curl"):
        return N_PROC if part == "loopback" else N_PROC_RTT
    return N if part == "loopback" else N_RTT_PER_CONN * conns


def main():
    # a SIGTERM unwinds like an exception, so servers, proxies and files are cleaned up
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if not os.access(BLAST, os.X_OK):
        sys.exit(f"compare: {BLAST} is not built (make)")
    os.makedirs(OUT, exist_ok=True)
    work = tempfile.mkdtemp(prefix="blast-bench-compare.")
    os.chmod(work, 0o755)   # smtp-sink runs as nobody and dumps a message into it once
    started = time.monotonic()
    results = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cores": os.cpu_count(), "kernel": platform.release(),
                    "cpu": cpu_model()},
        "versions": versions(),
        "settings": {"rounds": ROUNDS, "connections": CONNS, "n": N, "rtt_ms": RTT_MS,
                     "n_rtt_per_connection": N_RTT_PER_CONN, "n_proc": N_PROC,
                     "n_proc_rtt": N_PROC_RTT, "peers": PEERS, "parts": PARTS},
        "runs": [],
    }
    try:
        prepare(work)
        w = Work(work, sizes_of(work))
        results["message_bytes"] = w.sizes
        log(f"compare: message sizes {w.sizes}")
        failures = 0
        for part in [p for p in ("loopback", "rtt") if p in PARTS]:
            for conns in CONNS:
                peers = peers_for(part, conns)
                for rnd in range(1, ROUNDS + 1):
                    for peer in peers:
                        count = count_for(part, peer, conns)
                        sink = Sink(work)
                        proxy = Proxy(sink.port) if part == "rtt" else None
                        try:
                            rtt = measure_rtt(proxy.port) if proxy else None
                            tag = f"{part}-{conns}-{peer}-{rnd}"
                            r, ok = run_one(w, peer, conns, count,
                                            proxy.port if proxy else sink.port, tag)
                        finally:
                            if proxy:
                                proxy.stop()
                            received = sink.stop()
                        r.update(part=part, round=rnd, received=received)
                        if rtt is not None:
                            r["rtt_s"] = round(rtt, 5)
                        if received != count:
                            ok = False
                            r.setdefault("error", f"the sink counted {received} of {count}")
                        r["ok"] = ok
                        results["runs"].append(r)
                        failures += not ok
                        log(f"compare: {part:8} {conns:2} conn  {LABEL[peer]:22} round {rnd}: "
                            f"{count / r['wall_s']:9.1f} msg/s  cpu {r['cpu_s']:6.2f} s  "
                            f"rss {r['max_rss_kb'] / 1024:6.1f} MB"
                            + ("" if ok else f"  FAILED: {r.get('error', '')[-300:]}"))
        if "chunking" in PARTS:
            failures += chunking(w, results)
        results["total_seconds"] = round(time.monotonic() - started, 1)
        with open(f"{OUT}/compare.json", "w") as f:
            json.dump(results, f, indent=1)
        table = render_table(results)
        with open(f"{OUT}/table.md", "w") as f:
            f.write(table)
        print(table)
        log(f"compare: raw figures in {OUT}/compare.json, table in {OUT}/table.md "
            f"({results['total_seconds']:.0f} s)")
        if failures:
            sys.exit(f"compare: {failures} runs did not send what they should")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def chunking(w, results):
    """blast DATA and BDAT, alternately, to Postfix smtpd through the delay proxy."""
    failures = 0
    try:
        smtpd = Smtpd()
    except (OSError, subprocess.CalledProcessError, RuntimeError) as e:
        log(f"compare: Postfix smtpd did not start ({e}); the CHUNKING runs are skipped")
        results["chunking_error"] = str(e)
        return 0
    try:
        proxy = Proxy(smtpd.port)
        try:
            for conns in [c for c in CONNS if c <= 4]:
                count = N_RTT_PER_CONN * conns
                for rnd in range(1, ROUNDS + 1):
                    for peer in ("blast-data", "blast-bdat"):
                        rtt = measure_rtt(proxy.port)
                        tag = f"chunking-{conns}-{peer}-{rnd}"
                        r, ok = run_one(w, peer, conns, count, proxy.port, tag)
                        r.update(part="chunking", round=rnd, rtt_s=round(rtt, 5), ok=ok)
                        results["runs"].append(r)
                        failures += not ok
                        per = r.get("blast_round_trips", 0) / count
                        log(f"compare: smtpd+rtt {conns:2} conn  {LABEL[peer]:22} round {rnd}: "
                            f"{count / r['wall_s']:9.1f} msg/s  {per:.3f} counted round trips"
                            f"/msg" + ("" if ok else f"  FAILED: {r.get('error', '')[-300:]}"))
        finally:
            proxy.stop()
    finally:
        smtpd.stop()
    return failures


# ---- the table --------------------------------------------------------------------------

def med(values):
    return statistics.median(values) if values else None


def summarize(runs):
    """(part, conns, peer) -> medians."""
    groups = {}
    for r in runs:
        if not r.get("ok"):
            continue
        groups.setdefault((r["part"], r["connections"], r["peer"]), []).append(r)
    out = {}
    for key, rs in groups.items():
        part, conns, peer = key
        rate = med([r["messages"] / r["wall_s"] for r in rs])
        m = {"n": len(rs), "messages": rs[0]["messages"], "rate": rate,
             "cpu10k": med([r["cpu_s"] * 10000 / r["messages"] for r in rs]),
             "rss_mb": med([r["max_rss_kb"] / 1024 for r in rs]),
             "rates": [round(r["messages"] / r["wall_s"], 1) for r in rs]}
        if part != "loopback":
            # one-message-per-process peers use one connection at a time
            c = 1 if peer in ("swaks", "curl") else conns
            m["rt"] = med([r["wall_s"] * c / (r["rtt_s"] * r["messages"]) for r in rs])
            m["rtt_ms"] = med([r["rtt_s"] * 1000 for r in rs])
            if all("blast_round_trips" in r for r in rs):
                m["counted_rt"] = med([r["blast_round_trips"] / r["messages"] for r in rs])
        out[key] = m
    return out


TARGETS = [
    # (part, conns or None for all, peer, minimum ratio, text)
    ("loopback", 4, "smtp-source", 0.8, "≥ 0.8×"),
    ("loopback", 16, "smtp-source", 0.8, "≥ 0.8×"),
    ("loopback", None, "nodemailer", 3.0, "≥ 3×"),
    ("rtt", None, "nodemailer", 2.0, "≥ 2×"),
]


def fmt(v, spec):
    return "—" if v is None else format(v, spec)


def render_table(results):
    s = summarize(results["runs"])
    settings = results["settings"]
    lines = [f"Run of {results['date']} on {results['machine']['cores']} cores "
             f"({results['machine']['cpu']}), the receiving server on the same machine; "
             f"{settings['rounds']} alternating rounds, medians. Messages: blast "
             f"{results['message_bytes']['blast']} bytes, Nodemailer "
             f"{results['message_bytes']['nodemailer']} bytes, smtp-source the same size "
             f"with a fixed body.", ""]
    lines += ["| network | conns | sender | messages | msgs/s (median) | RT/msg/conn | "
              "CPU s / 10k msgs | peak RSS MB | runs (msgs/s) |",
              "|---|---:|---|---:|---:|---:|---:|---:|---|"]
    order = ["blast", "blast-before", "blast-tmpfs", "smtp-source", "nodemailer", "swaks", "curl"]
    for part in ("loopback", "rtt"):
        for conns in settings["connections"]:
            for peer in order:
                m = s.get((part, conns, peer))
                if not m:
                    continue
                net = "loopback" if part == "loopback" else f"{settings['rtt_ms']:g} ms RTT"
                rt = fmt(m.get("rt"), ".2f")
                if m.get("counted_rt") is not None:
                    rt += f" ({m['counted_rt']:.2f} counted)"
                lines.append(f"| {net} | {conns} | {LABEL[peer]} | {m['messages']} | "
                             f"{m['rate']:,.1f} | {rt} | {m['cpu10k']:.2f} | "
                             f"{m['rss_mb']:.1f} | {', '.join(map(str, m['rates']))} |")
    chunk = [(k, m) for k, m in s.items() if k[0] == "chunking"]
    if chunk:
        lines += ["", "Postfix smtpd (offers CHUNKING) behind the same delay proxy, blast only:",
                  "", "| conns | sender | messages | msgs/s (median) | RT/msg/conn (from wall) | "
                  "round trips/msg (counted by blast) | CPU s / 10k msgs | peak RSS MB |",
                  "|---:|---|---:|---:|---:|---:|---:|---:|"]
        for (part, conns, peer), m in sorted(chunk, key=lambda x: (x[0][1], x[0][2])):
            lines.append(f"| {conns} | {LABEL[peer]} | {m['messages']} | {m['rate']:,.1f} | "
                         f"{fmt(m.get('rt'), '.2f')} | {fmt(m.get('counted_rt'), '.3f')} | "
                         f"{m['cpu10k']:.2f} | {m['rss_mb']:.1f} |")

    lines += ["", "Ratios blast / peer (medians of msgs/s); the verdict is blast's as it ships "
              "(journal on disk); the last column is blast with its journal on tmpfs:", "",
              "| network | conns | peer | blast/peer | target | | tmpfs journal/peer |",
              "|---|---:|---|---:|---|---|---:|"]
    for part in ("loopback", "rtt"):
        for conns in settings["connections"]:
            b = s.get((part, conns, "blast"))
            if not b:
                continue
            bt = s.get((part, conns, "blast-tmpfs"))
            for peer in order[3:]:
                m = s.get((part, conns, peer))
                if not m:
                    continue
                ratio = b["rate"] / m["rate"]
                target = next((t for t in TARGETS if t[0] == part and t[2] == peer and
                               t[1] in (None, conns)), None)
                verdict = ("" if target is None else
                           "pass" if ratio >= target[3] else "**miss**")
                net = "loopback" if part == "loopback" else f"{settings['rtt_ms']:g} ms RTT"
                lines.append(f"| {net} | {conns} | {LABEL[peer]} | {ratio:.2f}× | "
                             f"{target[4] if target else '—'} | {verdict} | "
                             f"{fmt(bt['rate'] / m['rate'] if bt else None, '.2f')}"
                             f"{'×' if bt else ''} |")

    before = [(k, m) for k, m in s.items() if k[2] == "blast-before"]
    if before:
        lines += ["", f"blast against blast before ({BLAST_BEFORE}), alternating on the same "
                  "work:", "", "| network | conns | msgs/s after | msgs/s before | after/before | "
                  "CPU s/10k after | CPU s/10k before | CPU change |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for (part, conns, _), m in sorted(before):
            a = s.get((part, conns, "blast"))
            if not a:
                continue
            net = "loopback" if part == "loopback" else f"{settings['rtt_ms']:g} ms RTT"
            lines.append(f"| {net} | {conns} | {a['rate']:,.1f} | {m['rate']:,.1f} | "
                         f"{a['rate'] / m['rate']:.3f}× | {a['cpu10k']:.3f} | "
                         f"{m['cpu10k']:.3f} | {100.0 * (a['cpu10k'] / m['cpu10k'] - 1):+.1f}% |")

    lines += ["", "Other targets:", "", "| target | measured | |", "|---|---|---|"]
    for conns in settings["connections"]:
        b = s.get(("rtt", conns, "blast"))
        bt = s.get(("rtt", conns, "blast-tmpfs"))
        if b:
            lines.append(f"| ≤ 1.1 round trips/msg/conn at {settings['rtt_ms']:g} ms RTT with "
                         f"DATA, {conns} conn | {b['rt']:.2f} (from wall; "
                         f"{fmt(b.get('counted_rt'), '.2f')} counted"
                         + (f"; journal on tmpfs {bt['rt']:.2f}" if bt else "") + ") | "
                         f"{'pass' if b['rt'] <= 1.1 else '**miss**'} |")
    for (part, conns, peer), m in sorted(chunk):
        if peer == "blast-bdat":
            v = m.get("counted_rt")
            lines.append(f"| several messages per round trip with CHUNKING, {conns} conn | "
                         f"{fmt(v, '.3f')} round trips/msg counted "
                         f"({fmt(m.get('rt'), '.2f')} from wall) | "
                         f"{'pass' if v is not None and v <= 0.5 else '**miss**'} |")
    dry = os.path.join(OUT, "dryrun-1m.json")
    if os.path.exists(dry):
        with open(dry) as f:
            d = json.load(f)
        lines.append(f"| peak RSS ≤ 64 MB at 1,000,000 recipients (--dry-run of "
                     f"{d['rows']:,} to tmpfs, {d['rows'] / d['wall_s']:,.0f} msgs/s) | "
                     f"{d['max_rss_kb'] / 1024:.1f} MB | "
                     f"{'pass' if d['max_rss_kb'] <= 64 * 1024 else '**miss**'} |")
    return "\n".join(lines) + "\n"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def versions():
    def first_line(cmd):
        try:
            p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, text=True, timeout=20)
            return p.stdout.strip().splitlines()[0] if p.stdout.strip() else ""
        except (OSError, subprocess.TimeoutExpired):
            return ""
    v = {"blast": first_line([BLAST, "version"]),
         "postfix": first_line(["/usr/sbin/postconf", "-d", "-h", "mail_version"]),
         "node": first_line(["node", "--version"]),
         "swaks": first_line(["swaks", "--version"]),
         "curl": first_line(["curl", "--version"])}
    try:
        with open(f"{BENCH}/node/node_modules/nodemailer/package.json") as f:
            v["nodemailer"] = json.load(f)["version"]
    except OSError:
        v["nodemailer"] = ""
    return v


def prepare_only(directory, count):
    """compare.py --prepare DIR COUNT: the same list (COUNT rows), templates and a
    campaign.yml for 127.0.0.1:25, for the micro-benchmarks (bench/dryrun-1m.sh)."""
    global N, N_PROC, N_PROC_RTT, N_RTT_PER_CONN
    N, N_PROC, N_PROC_RTT, N_RTT_PER_CONN = count, 0, 0, 0
    prepare(directory)
    os.replace(campaign(directory, "campaign", 25, 1), f"{directory}/campaign.yml")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--prepare":
        prepare_only(sys.argv[2], int(sys.argv[3]))
    else:
        main()
