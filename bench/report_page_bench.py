#!/usr/bin/python3
"""bench/report-page-1m.sh's driver: a campaign of R recipients (D distinct domains) sent
to smtp-sink on loopback, then its report turned into the HTML page (blast report
--format html) and into Prometheus metrics (--format prometheus), each timed with its
peak RSS. Targets (docs/report-page.md): 1,000,000 recipients make a page in <= 10 s with
<= 64 MB, and the page stays small.

    report_page_bench.py BLAST OUT [--rows R] [--domains D] [--name NAME] [--keep DIR]

--keep DIR keeps the list, the report and the page there (and reuses a report already
there with the same rows and domains instead of sending again).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402


def read_time(tfile):
    with open(tfile) as f:
        wall, user, sys_, rss = f.read().split()[-4:]
    return float(wall), float(user), float(sys_), int(rss)


def timed(work, name, args, out):
    tfile = f"{work}/{name}.time"
    with open(out, "wb") as f:
        p = subprocess.run(["/usr/bin/time", "-f", "%e %U %S %M", "-o", tfile, *args],
                           stdin=subprocess.DEVNULL, stdout=f)
    wall, user, sys_, rss = read_time(tfile)
    return {"exit": p.returncode, "wall_s": wall, "cpu_s": round(user + sys_, 2),
            "max_rss_kb": rss, "bytes": os.path.getsize(out)}


def make_report(blast, work, rows, domains):
    """The list, a campaign for smtp-sink, and its report (a real send)."""
    with open(f"{work}/list.csv", "w") as f:
        f.write("email,name\n")
        for i in range(rows):
            f.write(f"reader.{i:07d}@d{i % domains:06d}.example.com,Reader {i}\n")
    with open(f"{work}/body.txt", "w") as f:
        f.write("Hello {{name}},\n\n" + compare.paragraph(1, 60) + "\n")
    sink = compare.Sink(work)
    with open(f"{work}/campaign.yml", "w") as f:
        f.write(f"""name: bench-page
from: "Acme News <news@acme.example>"
subject: "Hi {{{{name}}}}"
recipients: {{path: list.csv}}
body: {{text: body.txt}}
retry: {{attempts: 1}}
rate: 50000/s
relays: [{{host: 127.0.0.1, port: {sink.port}, tls: none, connections: 8, messages_per_connection: 0}}]
""")
    t0 = time.monotonic()
    p = subprocess.run([blast, "send", f"{work}/campaign.yml", "--quiet", "--fresh",
                        "--journal", f"{work}/send.journal", "--report", f"{work}/report.json"],
                       stdin=subprocess.DEVNULL)
    wall = time.monotonic() - t0
    got = sink.stop()
    os.unlink(f"{work}/send.journal")
    if p.returncode != 0 or got != rows:
        raise SystemExit(f"the send exited {p.returncode} with {got} of {rows} delivered")
    with open(f"{work}/made.json", "w") as f:
        json.dump({"rows": rows, "domains": domains}, f)
    return round(wall, 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("blast")
    ap.add_argument("out")
    ap.add_argument("--rows", type=int, default=1000000)
    ap.add_argument("--domains", type=int, default=97)
    ap.add_argument("--name", default="report-page-1m")
    ap.add_argument("--keep")
    a = ap.parse_args()
    work = a.keep or tempfile.mkdtemp(prefix="blast-bench-page-")
    os.makedirs(work, exist_ok=True)
    try:
        result = {"rows": a.rows, "domains": a.domains}
        made = None
        if os.path.exists(f"{work}/made.json"):
            with open(f"{work}/made.json") as f:
                made = json.load(f)
        if made == {"rows": a.rows, "domains": a.domains}:
            print(f"{a.name}: reusing {work}/report.json", flush=True)
        else:
            result["send_s"] = make_report(a.blast, work, a.rows, a.domains)
        result["report_bytes"] = os.path.getsize(f"{work}/report.json")
        result["html"] = timed(work, "html", [a.blast, "report", f"{work}/report.json",
                                              "--format", "html", "--no-db"],
                               f"{work}/report.html")
        result["prometheus"] = timed(work, "prom", [a.blast, "report", f"{work}/report.json",
                                                    "--format", "prometheus", "--no-db"],
                                     f"{work}/report.prom")
        result["text"] = timed(work, "text", [a.blast, "report", f"{work}/report.json",
                                              "--no-db"], f"{work}/report.txt")
        h = result["html"]
        ok = h["exit"] == 0 and h["wall_s"] <= 10 and h["max_rss_kb"] <= 64 * 1024
        print(f"{a.name}: {a.rows:,} recipients, {a.domains:,} domains, report "
              f"{result['report_bytes'] / 1e6:.0f} MB: html page {h['bytes'] / 1024:.1f} KB in "
              f"{h['wall_s']} s, peak RSS {h['max_rss_kb'] / 1024:.1f} MB (target <= 10 s, "
              f"<= 64 MB: {'met' if ok else 'missed'}); prometheus "
              f"{result['prometheus']['wall_s']} s, {result['prometheus']['max_rss_kb'] / 1024:.1f}"
              f" MB; text {result['text']['wall_s']} s", flush=True)
        os.makedirs(a.out, exist_ok=True)
        with open(os.path.join(a.out, f"{a.name}.json"), "w") as f:
            json.dump(result, f, indent=2)
        return 0 if ok else 1
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
