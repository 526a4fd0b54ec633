"""The driver of bench/intake-10k.sh: `blast bounces` over a mailbox of N bounces.

Run from the repository root (it imports tests.integration):
    /usr/bin/python3 bench/intake_bench.py BLAST OUT [--messages N] [--pop3] [--keep]

1. A private Dovecot on loopback (tests/integration/mailservers.py) and Postfix's
   smtp-sink (tests/integration/servers.Sink).
2. A campaign of N recipients with a return_path (VERP) secret is sent to the sink
   with `blast send`: its journal and its envelope senders are real. Each
   recipient's envelope sender is read back from the sink's dump (X-Mail-Args) and
   its token checked against the row it names (test_return_path.token_row).
3. One report per recipient, addressed to its envelope sender, is appended to the
   INBOX over IMAPS (pipelined APPENDs, not timed): 80% DSNs 5.1.1 (hard), 8% 4.2.2
   delayed (soft), 7% 5.7.1 (policy), 5% ARF complaints. Their returned headers are
   a campaign message's real ones (Received lines, a DKIM-Signature): about 3 KB a
   message, as Postfix's and the big providers' DSNs are.
4. Timed: `blast bounces campaign.yml` (after: delete, over imaps; or pop3s with
   --pop3), under /usr/bin/time -v: wall time, CPU, peak RSS.
5. Checked: exit 0, one event and one intake row a message, the INBOX empty.

Prints the figures and writes them to OUT/intake-10k.json (intake-10k-pop3.json).
Targets: at least 500 messages/s, peak RSS at most 64 MB.
"""

import argparse
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.integration import mailservers, servers  # noqa: E402
from tests.integration.test_return_path import token_row  # noqa: E402

NAME = "bench-intake"
SECRET = "throwaway-bench-secret-for-bounce-tokens"
TARGET_RATE = 500          # messages a second, at least
TARGET_RSS_KB = 64 * 1024  # peak RSS, at most

CAMPAIGN = """\
name: {name}
from: "News <news@acme.example>"
subject: "The March newsletter, {{{{name}}}}"
recipients: {{path: list.csv}}
body: {{text: body.txt}}
retry: {{attempts: 1}}
relays:
  - host: 127.0.0.1
    port: {port}
    tls: none
suppression_db: {db}
return_path:
  address: "bounces+{{token}}@acme.example"
  secret_env: BLAST_BENCH_BOUNCE_SECRET
list_unsubscribe: {{mailto: unsubscribe@acme.example}}
bounces:
  url: {scheme}://127.0.0.1:{mport}/
  username: {user}
  password_env: BLAST_BENCH_MAILBOX_PASSWORD
  ca_file: {ca}
  after: delete
"""

BODY = """Hello {{name}},

This is the March newsletter: three short articles, a link or two, and the
dates of the spring meetings. Thank you for reading.

-- The newsletter team
"""


def log(*args):
    print(*args, flush=True)


def returned_headers(rcpt, sender, i):
    """The header of a campaign message as a receiving MTA returns it."""
    return (
        f"Return-Path: <{sender}>\r\n"
        f"Received: from mta.acme.example (mta.acme.example [192.0.2.25])\r\n"
        f"\tby mx{i % 7}.example.net (Postfix) with ESMTPS id 4Qx{i:07X}\r\n"
        f"\tfor <{rcpt}>; Tue, 4 Mar 2025 10:{i % 60:02d}:07 +0000 (UTC)\r\n"
        f"Received: from localhost (localhost [127.0.0.1])\r\n"
        f"\tby mta.acme.example (blast) with ESMTP id {i:08x}\r\n"
        f"\tfor <{rcpt}>; Tue, 4 Mar 2025 10:{i % 60:02d}:06 +0000\r\n"
        f"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=acme.example;\r\n"
        f"\ts=mail2025; t=1741082766; h=from:to:subject:date:message-id:list-unsubscribe;\r\n"
        f"\tbh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;\r\n"
        f"\tb=Xq3vT0dJ8Zk2mWn1yQ9c7hF5pL0aR4sE6uB8iK2oN3gD1fH7jM9lC5vX0zA2qW4e\r\n"
        f"\t R6tY8uI0oP2aS4dF6gH8jK0lZ2xC4vB6nM8qW0eR2tY4uI6oP8aS0dF2gH4jK6lZ8x\r\n"
        f"\t C0vB2nM4qW6eR8tY0uI2oP4aS6dF8gH0jK2lZ4xC6vB8nM0qW2eR4tY6uI8oP0aS2d=\r\n"
        f"From: News <news@acme.example>\r\n"
        f"To: {rcpt}\r\n"
        f"Subject: The March newsletter\r\n"
        f"Date: Tue, 4 Mar 2025 10:{i % 60:02d}:06 +0000\r\n"
        f"Message-ID: <{i}.bench@acme.example>\r\n"
        f"MIME-Version: 1.0\r\n"
        f"Content-Type: multipart/alternative; boundary=\"b{i:08x}\"\r\n"
        f"List-Unsubscribe: <mailto:unsubscribe@acme.example>\r\n"
        f"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n").encode()


def report_for(i, rcpt, sender):
    """The i-th message of the mix, and its expected class."""
    h = returned_headers(rcpt, sender, i)
    k = i % 100
    if k < 80:
        return "hard", mailservers.dsn(rcpt, to=sender, status="5.1.1", original_headers=h,
                                       reporting_mta=f"mx{i % 7}.example.net")
    if k < 88:
        return "soft", mailservers.dsn(rcpt, to=sender, status="4.2.2", action="delayed",
                                       diagnostic="smtp; 452 4.2.2 Mailbox full, try later",
                                       original_headers=h)
    if k < 95:
        return "policy", mailservers.dsn(
            rcpt, to=sender, status="5.7.1",
            diagnostic="smtp; 550 5.7.1 Message rejected as spam by content filter",
            original_headers=h)
    return "complaint", mailservers.arf_report(rcpt, sender, h)


def senders_from_sink(sink, rows):
    """{recipient: envelope sender} from smtp-sink's dumps, each token checked."""
    out = {}
    for path in sink.messages():
        with open(path, "rb") as f:
            head = f.read(4096).decode("latin-1")
        mail = re.search(r"(?im)^X-Mail-Args:\s*(?:FROM:)?<([^>]*)>", head)
        rcpt = re.search(r"(?im)^X-Rcpt-Args:\s*(?:TO:)?<([^>]*)>", head)
        if not (mail and rcpt):
            continue
        m = re.fullmatch(r"bounces\+([a-z2-7]+)@acme\.example", mail.group(1))
        row = m and token_row(m.group(1), NAME, SECRET)
        if not row or rows[row - 1] != rcpt.group(1):
            raise SystemExit(f"intake_bench: {path}: sender {mail.group(1)} does not name "
                             f"the row of {rcpt.group(1)}")
        out[rcpt.group(1)] = mail.group(1)
    return out


def parse_time_v(path):
    fields = {}
    with open(path) as f:
        for line in f:
            name, _, value = line.strip().rpartition(": ")
            fields[name] = value
    wall = fields.get("Elapsed (wall clock) time (h:mm:ss or m:ss)", "0:0")
    secs = 0.0
    for part in wall.split(":"):
        secs = secs * 60 + float(part)
    return {"wall_s": secs, "user_s": float(fields.get("User time (seconds)", 0)),
            "sys_s": float(fields.get("System time (seconds)", 0)),
            "max_rss_kb": int(fields.get("Maximum resident set size (kbytes)", 0)),
            "exit": int(fields.get("Exit status", -1))}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("blast")
    ap.add_argument("out")
    ap.add_argument("--messages", type=int, default=10000)
    ap.add_argument("--pop3", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--perf", metavar="PERF.DATA", help="run the intake under perf record")
    a = ap.parse_args()
    n = a.messages
    scheme = "pop3s" if a.pop3 else "imaps"
    work = tempfile.mkdtemp(prefix="blast-bench-intake.")
    dovecot = sink = None
    try:
        t0 = time.monotonic()
        dovecot = mailservers.Dovecot()
        sink = servers.Sink()
        rows = [f"reader.{i:06d}@example.net" for i in range(1, n + 1)]
        with open(os.path.join(work, "list.csv"), "w") as f:
            f.write("email,name\n" + "".join(f"{r},Reader {i}\n"
                                             for i, r in enumerate(rows, 1)))
        with open(os.path.join(work, "body.txt"), "w") as f:
            f.write(BODY)
        db = os.path.join(work, "suppression.db")
        with open(os.path.join(work, "campaign.yml"), "w") as f:
            f.write(CAMPAIGN.format(
                name=NAME, port=sink.port, db=db, scheme=scheme,
                mport=dovecot.pop3s_port if a.pop3 else dovecot.imaps_port,
                user=dovecot.user, ca=dovecot.ca_file))
        env = dict(os.environ, BLAST_BENCH_BOUNCE_SECRET=SECRET,
                   BLAST_BENCH_MAILBOX_PASSWORD=dovecot.password)

        t = time.monotonic()
        p = subprocess.run([a.blast, "send", "campaign.yml", "--quiet", "--report",
                            os.path.join(work, "report.json")], cwd=work, env=env,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if p.returncode != 0:
            raise SystemExit(f"intake_bench: blast send: exit {p.returncode}\n{p.stderr}")
        senders = senders_from_sink(sink, rows)
        if len(senders) != n:
            raise SystemExit(f"intake_bench: the sink holds {len(senders)} of {n} messages")
        journal = os.path.join(work, ".blast", f"{NAME}.journal")
        log(f"setup: campaign of {n} sent to smtp-sink in {time.monotonic() - t:.1f} s "
            f"(journal {os.path.getsize(journal) // 1024} KB)")
        sink.stop()
        sink = None

        t = time.monotonic()
        mix, raws = {}, []
        for i, r in enumerate(rows):
            kind, raw = report_for(i, r, senders[r])
            mix[kind] = mix.get(kind, 0) + 1
            raws.append(raw)
        size = sum(len(r) for r in raws)
        dovecot.deliver_many(raws)
        del raws
        if dovecot.count("INBOX") != n:
            raise SystemExit(f"intake_bench: the INBOX holds {dovecot.count('INBOX')}, not {n}")
        log(f"setup: {n} reports ({size / n / 1024:.1f} KB each on average; "
            + ", ".join(f"{k} {v}" for k, v in mix.items())
            + f") appended over IMAPS in {time.monotonic() - t:.1f} s")

        timing = os.path.join(work, "time.txt")
        cmd = ["/usr/bin/time", "-v", "-o", timing, a.blast, "bounces", "campaign.yml"]
        if a.perf:
            cmd = ["perf", "record", "-a", "-g", "-o", a.perf, "--"] + cmd
        with open(os.path.join(work, "bounces.err"), "w") as err:
            p = subprocess.run(cmd, cwd=work, env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=err)
        with open(os.path.join(work, "bounces.err")) as f:
            said = [line.rstrip() for line in f if not line.startswith("blast: suppressed ")]
        tv = parse_time_v(timing)

        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
            events = con.execute("SELECT count(*) FROM event").fetchone()[0]
            intake = con.execute("SELECT count(*) FROM intake").fetchone()[0]
            by_class = dict(con.execute("SELECT class, count(*) FROM event GROUP BY class"))
            suppressed = con.execute("SELECT count(*) FROM suppression").fetchone()[0]
        left = dovecot.count("INBOX")
        # the messages this run read (one intake row each): all n when it is correct
        rate = intake / tv["wall_s"] if tv["wall_s"] > 0 else 0.0
        ok = p.returncode == 0 and events == n and intake == n and left == 0
        result = {"messages": n, "protocol": scheme, "after": "delete",
                  "message_bytes_avg": size // n, "mix": mix, **tv,
                  "messages_per_s": round(rate, 1), "events": events, "intake_rows": intake,
                  "events_by_class": by_class, "suppressed": suppressed,
                  "left_on_server": left, "exit_code": p.returncode, "correct": ok,
                  "target_messages_per_s": TARGET_RATE, "target_max_rss_kb": TARGET_RSS_KB,
                  "summary": [s for s in said if "bounces:" in s][-1:]}
        for line in said[-5:]:
            log("  " + line)
        verdict = ("not measured: the run is not correct" if not ok
                   else "met" if rate >= TARGET_RATE else "MISSED")
        log(f"blast bounces over {scheme} (after: delete): {intake} of {n} messages read in "
            f"{tv['wall_s']:.2f} s: {rate:.0f} messages/s (target >= {TARGET_RATE}: {verdict}); "
            f"user {tv['user_s']:.2f} s, "
            f"system {tv['sys_s']:.2f} s; peak RSS {tv['max_rss_kb'] / 1024:.1f} MB "
            f"(target <= {TARGET_RSS_KB // 1024} MB: "
            f"{'met' if tv['max_rss_kb'] <= TARGET_RSS_KB else 'MISSED'})")
        log(f"checked: exit {p.returncode}, {events} events ({by_class}), {intake} intake rows, "
            f"{suppressed} suppressed, {left} left on the server: "
            f"{'correct' if ok else 'NOT CORRECT'}")
        os.makedirs(a.out, exist_ok=True)
        out = os.path.join(a.out, f"intake-10k{'-pop3' if a.pop3 else ''}.json")
        with open(out, "w") as f:
            json.dump(result, f, indent=1)
            f.write("\n")
        log(f"written: {out} (whole bench {time.monotonic() - t0:.0f} s)")
        return 0 if ok else 1
    finally:
        if sink is not None:
            sink.stop()
        if dovecot is not None:
            dovecot.stop()
        if a.keep:
            log(f"kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
