#!/usr/bin/python3
"""bench/journal-compact-1m.sh's driver: what a campaign of R recipients leaves on disk,
and what compaction and a compressed report cost (docs/files.md, docs/delivery.md).

    journal_bench.py BLAST OUT [--rows R] [--name NAME] [--keep DIR]

1. R recipients sent to smtp-sink on loopback with --no-compact and a plain report:
   the send's time, the journal's and the report's sizes.
2. `blast journal compact` of that journal under /usr/bin/time: wall time, peak RSS,
   the journal's size after, bytes a delivered recipient. Target: <= 10 s, <= 64 MB,
   <= 150 bytes a delivered recipient.
3. The same journal with every delivery's reply made as a real relay's (a Postfix
   queue id of its own in the reply and queue_id, TLSv1.3 and its cipher, in the
   entry and its history), compacted again: smtp-sink's replies are all alike and
   compress better than real ones.
4. The report rebuilt from the compacted journal (`blast send` again: nothing left
   to send) exported as CSV and compared with the CSV of the report written before
   compaction: they must be the same.
5. The same send with the report written as .json.gz (--fresh): its time against the
   plain one, and the sizes. Target: at most 15% slower, at most a tenth the size.
"""

import argparse
import json
import os
import random
import shutil
import string
import subprocess
import sys
import tempfile
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402


def timed(work, name, args):
    tfile = f"{work}/{name}.time"
    p = subprocess.run(["/usr/bin/time", "-f", "%e %U %S %M", "-o", tfile, *args],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    with open(tfile) as f:
        wall, user, sys_, rss = f.read().split()[-4:]
    return {"exit": p.returncode, "wall_s": float(wall),
            "cpu_s": round(float(user) + float(sys_), 2), "max_rss_kb": int(rss)}


def setup(work, rows):
    with open(f"{work}/list.csv", "w") as f:
        f.write("email,name\n")
        for i in range(rows):
            f.write(f"reader.{i:07d}@d{i % 97:06d}.example.com,Reader {i}\n")
    with open(f"{work}/body.txt", "w") as f:
        f.write("Hello {{name}},\n\n" + compare.paragraph(1, 60) + "\n")


def campaign(work, port):
    with open(f"{work}/campaign.yml", "w") as f:
        f.write(f"""name: bench-journal
from: "Acme News <news@acme.example>"
subject: "Hi {{{{name}}}}"
recipients: {{path: list.csv}}
body: {{text: body.txt}}
retry: {{attempts: 1}}
rate: 50000/s
relays: [{{host: 127.0.0.1, port: {port}, tls: none, connections: 8, messages_per_connection: 0}}]
""")


def send(blast, work, rows, report, extra=()):
    sink = compare.Sink(work)
    campaign(work, sink.port)
    t0 = time.monotonic()
    p = subprocess.run([blast, "send", f"{work}/campaign.yml", "--quiet", "--fresh",
                        "--no-compact", "--journal", f"{work}/send.journal",
                        "--report", report, *extra], stdin=subprocess.DEVNULL)
    wall = time.monotonic() - t0
    got = sink.stop()
    if p.returncode != 0 or got != rows:
        raise SystemExit(f"the send exited {p.returncode} with {got} of {rows} delivered")
    return round(wall, 1)


def crc_line(obj):
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
    return b"%08x " % zlib.crc32(text) + text + b"\n"


def realistic(src, dst):
    """Each delivery's reply as a real relay's: its own queue id, TLS."""
    rnd = random.Random(7)
    alphabet = string.ascii_letters + string.digits
    with open(src, "rb") as f, open(dst, "wb") as out:
        os.fchmod(out.fileno(), 0o600)
        for line in f:
            rec = json.loads(line[9:])
            if rec.get("t") == "result" and rec.get("status") == "delivered":
                qid = "4" + "".join(rnd.choice(alphabet) for _ in range(10))
                rec["reply"] = f"Ok: queued as {qid}"
                rec["queue_id"] = qid
                rec["relay"] = "smtp.relay.example"
                for h in rec.get("history", []):
                    h.update(reply=rec["reply"], queue_id=qid, tls="TLSv1.3",
                             cipher="TLS_AES_256_GCM_SHA384", relay="smtp.relay.example",
                             host="smtp.relay.example", port=587)
                out.write(crc_line(rec))
            else:
                out.write(line)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("blast")
    ap.add_argument("out")
    ap.add_argument("--rows", type=int, default=1000000)
    ap.add_argument("--name", default="journal-compact-1m")
    ap.add_argument("--keep")
    a = ap.parse_args()
    work = a.keep or tempfile.mkdtemp(prefix="blast-bench-journal-")
    os.makedirs(work, exist_ok=True)
    r = {"rows": a.rows}
    try:
        setup(work, a.rows)
        j = f"{work}/send.journal"
        r["send_plain_s"] = send(a.blast, work, a.rows, f"{work}/report.json")
        r["journal_bytes_before"] = os.path.getsize(j)
        r["report_bytes"] = os.path.getsize(f"{work}/report.json")
        shutil.copy(j, f"{work}/kept.journal")
        c = timed(work, "compact", [a.blast, "journal", "compact", "--journal", j])
        r["compact"] = c
        r["journal_bytes_after"] = os.path.getsize(j)
        r["bytes_per_recipient"] = round(r["journal_bytes_after"] / a.rows, 1)

        realistic(f"{work}/kept.journal", f"{work}/real.journal")
        r["realistic_bytes_before"] = os.path.getsize(f"{work}/real.journal")
        c2 = timed(work, "compact-real", [a.blast, "journal", "compact", "--journal",
                                          f"{work}/real.journal"])
        r["compact_realistic"] = c2
        r["realistic_bytes_after"] = os.path.getsize(f"{work}/real.journal")
        r["realistic_bytes_per_recipient"] = round(r["realistic_bytes_after"] / a.rows, 1)
        os.unlink(f"{work}/kept.journal")
        os.unlink(f"{work}/real.journal")

        # the report rebuilt from the compacted journal: the same recipients
        sink = compare.Sink(work)
        campaign(work, sink.port)
        p = subprocess.run([a.blast, "send", f"{work}/campaign.yml", "--quiet", "--force", "--journal", j,
                            "--report", f"{work}/again.json"], stdin=subprocess.DEVNULL)
        resent = sink.stop()
        for name in ("report", "again"):
            with open(f"{work}/{name}.csv", "wb") as f:
                subprocess.run([a.blast, "report", f"{work}/{name}.json", "--format", "csv",
                                "--no-db"], stdout=f, check=True)
        same = subprocess.run(["cmp", "-s", f"{work}/report.csv", f"{work}/again.csv"]).returncode
        r["rebuilt_report_same"] = p.returncode == 0 and resent == 0 and same == 0
        for name in ("report.json", "again.json", "report.csv", "again.csv"):
            os.unlink(f"{work}/{name}")

        r["send_gz_s"] = send(a.blast, work, a.rows, f"{work}/report.json.gz")
        r["report_gz_bytes"] = os.path.getsize(f"{work}/report.json.gz")
        r["gz_cost"] = round(r["send_gz_s"] / r["send_plain_s"] - 1, 3)
        r["gz_ratio"] = round(r["report_gz_bytes"] / r["report_bytes"], 4)

        ok = (c["exit"] == 0 and c["wall_s"] <= 10 and c["max_rss_kb"] <= 64 * 1024 and
              r["bytes_per_recipient"] <= 150 and r["realistic_bytes_per_recipient"] <= 150 and
              r["rebuilt_report_same"] and r["gz_cost"] <= 0.15 and r["gz_ratio"] <= 0.1)
        r["targets_met"] = ok
        print(f"{a.name}: {a.rows:,} recipients: journal {r['journal_bytes_before'] / 1e6:.1f} MB"
              f" -> {r['journal_bytes_after'] / 1e6:.1f} MB ({r['bytes_per_recipient']} B a "
              f"recipient; with real relays' replies {r['realistic_bytes_per_recipient']} B) in "
              f"{c['wall_s']} s, peak RSS {c['max_rss_kb'] / 1024:.1f} MB (realistic: "
              f"{c2['wall_s']} s, {c2['max_rss_kb'] / 1024:.1f} MB); report rebuilt the same: "
              f"{r['rebuilt_report_same']}; send {r['send_plain_s']} s with a plain report "
              f"({r['report_bytes'] / 1e6:.1f} MB), {r['send_gz_s']} s with .gz "
              f"({r['report_gz_bytes'] / 1e6:.1f} MB): {r['gz_cost'] * 100:+.1f}%, "
              f"{r['gz_ratio'] * 100:.1f}% of the size; targets {'met' if ok else 'missed'}",
              flush=True)
        os.makedirs(a.out, exist_ok=True)
        with open(os.path.join(a.out, f"{a.name}.json"), "w") as f:
            json.dump(r, f, indent=2)
        return 0 if ok else 1
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
