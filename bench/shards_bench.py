#!/usr/bin/python3
"""bench/shards-1m.sh's and bench/shards-10m.sh's driver: one campaign sent to smtp-sink
by one blast process with C connections, then by N shard processes at once (--shard I/N)
with C/N connections each; the same list, work and receiving server (bench/compare.py's).
Target: the shards' total rate at least 0.9x the single process's (sharding costs little).
With --merge, the shards' reports are then merged (blast report --merge) and the merged
report read back (blast report --format json), each timed with its peak RSS; with
--no-single, only the shards run (the 10,000,000-recipient memory run).

    shards_bench.py BLAST OUT [--rows R] [--shards N] [--connections C] [--rounds K]
                    [--no-single] [--merge] [--name NAME]

JOURNAL_DIR=/dev/shm puts the journals on tmpfs, to tell the disk's syncs from the rest.
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


def run_one(blast, work, name, port, conns, shard=None):
    """Start one send; returns (Popen, time file). The shards share one campaign file
    (one campaign, so their reports merge; written before any starts), each its own
    journal and report."""
    path = f"{work}/shards.yml" if shard else compare.campaign(work, name, port, conns)
    tfile = f"{work}/{name}.time"
    jdir = os.environ.get("JOURNAL_DIR", work)
    args = ["/usr/bin/time", "-f", "%e %U %S %M", "-o", tfile, blast, "send", path, "--quiet",
            "--fresh", "--journal", f"{jdir}/{name}.journal", "--report",
            f"{work}/{name}.json"]
    if shard is not None:
        args += ["--shard", shard]
    return subprocess.Popen(args, stdin=subprocess.DEVNULL), tfile


def read_time(tfile):
    with open(tfile) as f:
        wall, user, sys_, rss = f.read().split()[-4:]
    return float(wall), float(user), float(sys_), int(rss)


def timed(work, name, args, stdout=subprocess.DEVNULL):
    """Run args under /usr/bin/time: (exit code, wall s, peak RSS kB)."""
    tfile = f"{work}/{name}.time"
    t0 = time.monotonic()
    p = subprocess.run(["/usr/bin/time", "-f", "%e %U %S %M", "-o", tfile, *args],
                       stdin=subprocess.DEVNULL, stdout=stdout)
    wall = time.monotonic() - t0
    return p.returncode, round(wall, 2), read_time(tfile)[3]


def merge(blast, work, shards, rows):
    """The shards' reports merged, then the merged report read back."""
    out = {}
    merged = f"{work}/merged.json"
    rc, wall, rss = timed(work, "merge", [blast, "report", "--merge",
                                          *[f"{work}/shard{i}.json" for i in range(shards)],
                                          "-o", merged])
    out["merge"] = {"exit": rc, "wall_s": wall, "max_rss_kb": rss,
                    "bytes": os.path.getsize(merged) if rc == 0 else 0}
    with open(f"{work}/merged-summary.json", "w") as f:
        rc, wall, rss = timed(work, "read", [blast, "report", merged, "--format", "json"], f)
    with open(f"{work}/merged-summary.json") as f:
        total = json.load(f)["total"] if rc == 0 else None
    out["read"] = {"exit": rc, "wall_s": wall, "max_rss_kb": rss, "total": total}
    if total != rows:
        raise SystemExit(f"the merged report has {total} recipients, not {rows}")
    return out


def measure(blast, work, rows, shards, conns, single=True):
    out = {}
    if single:
        # one process
        sink = compare.Sink(work)
        t0 = time.monotonic()
        p, tf = run_one(blast, work, "single", sink.port, conns)
        p.wait()
        wall = time.monotonic() - t0
        got = sink.stop()
        _, user, sys_, rss = read_time(tf)
        out["single"] = {"wall_s": round(wall, 2), "messages": got,
                         "rate": round(got / wall, 1), "cpu_s": round(user + sys_, 2),
                         "max_rss_kb": rss, "exit": p.returncode}
        os.unlink(f"{os.environ.get('JOURNAL_DIR', work)}/single.journal")  # the 10M run's disk
        os.unlink(f"{work}/single.json")
    # N shards at once, the same total connections
    sink = compare.Sink(work)
    t0 = time.monotonic()
    compare.campaign(work, "shards", sink.port, max(1, conns // shards))
    procs = [run_one(blast, work, f"shard{i}", sink.port, max(1, conns // shards),
                     f"{i}/{shards}") for i in range(shards)]
    for p, _ in procs:
        p.wait()
    wall = time.monotonic() - t0
    got = sink.stop()
    times = [read_time(tf) for _, tf in procs]
    out["shards"] = {"wall_s": round(wall, 2), "messages": got, "rate": round(got / wall, 1),
                     "cpu_s": round(sum(t[1] + t[2] for t in times), 2),
                     "max_rss_kb": max(t[3] for t in times),
                     "exits": [p.returncode for p, _ in procs]}
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("blast")
    ap.add_argument("out")
    ap.add_argument("--rows", type=int, default=1000000)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--no-single", action="store_true")
    ap.add_argument("--merge", action="store_true")
    ap.add_argument("--name", default="shards-1m")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="blast-bench-shards-")
    try:
        subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "compare.py"),
                        "--prepare", work, str(a.rows)], check=True)
        results = []
        for r in range(a.rounds):
            m = measure(a.blast, work, a.rows, a.shards, a.connections, not a.no_single)
            line = (f"round {r + 1}: {a.shards} shards {m['shards']['messages']} in "
                    f"{m['shards']['wall_s']} s ({m['shards']['rate']}/s, peak RSS per shard "
                    f"{m['shards']['max_rss_kb'] / 1024:.1f} MB)")
            if "single" in m:
                ratio = m["shards"]["rate"] / m["single"]["rate"]
                m["ratio"] = round(ratio, 3)
                line = (f"round {r + 1}: one process {m['single']['messages']} in "
                        f"{m['single']['wall_s']} s ({m['single']['rate']}/s, peak RSS "
                        f"{m['single']['max_rss_kb'] / 1024:.1f} MB); " + line[len(
                            f"round {r + 1}: "):] +
                        f": {ratio:.2f}x (target >= 0.9x: {'met' if ratio >= 0.9 else 'missed'})")
            print(line, flush=True)
            if m.get("single", {"messages": a.rows})["messages"] != a.rows or \
                    m["shards"]["messages"] != a.rows:
                print(f"{a.name}: a run did not deliver every recipient", file=sys.stderr)
                return 1
            if a.merge:
                m.update(merge(a.blast, work, a.shards, a.rows))
                print(f"merge of {a.shards} reports: {m['merge']['wall_s']} s, peak RSS "
                      f"{m['merge']['max_rss_kb'] / 1024:.1f} MB, "
                      f"{m['merge']['bytes'] / 1e9:.2f} GB; blast report on it: "
                      f"{m['read']['wall_s']} s, peak RSS {m['read']['max_rss_kb'] / 1024:.1f} MB",
                      flush=True)
            results.append(m)
        with open(os.path.join(a.out, f"{a.name}.json"), "w") as f:
            json.dump({"rows": a.rows, "shards": a.shards, "connections": a.connections,
                       "rounds": results}, f, indent=1)
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
