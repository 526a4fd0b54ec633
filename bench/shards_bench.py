#!/usr/bin/python3
"""bench/shards-1m.sh's driver: one campaign sent to smtp-sink by one blast process with C
connections, then by N shard processes at once (--shard I/N) with C/N connections each;
the same list, work and receiving server (bench/compare.py's). Target: the shards' total
rate at least 0.9x the single process's (sharding costs little).

    shards_bench.py BLAST OUT [--rows R] [--shards N] [--connections C] [--rounds K]
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
    """Start one send; returns (Popen, time file)."""
    path = compare.campaign(work, name, port, conns)
    tfile = f"{work}/{name}.time"
    args = ["/usr/bin/time", "-f", "%e %U %S %M", "-o", tfile, blast, "send", path, "--quiet",
            "--fresh", "--journal", f"{work}/{name}.journal", "--report",
            f"{work}/{name}.json"]
    if shard is not None:
        args += ["--shard", shard]
    return subprocess.Popen(args, stdin=subprocess.DEVNULL), tfile


def read_time(tfile):
    with open(tfile) as f:
        wall, user, sys_, rss = f.read().split()[-4:]
    return float(wall), float(user), float(sys_), int(rss)


def measure(blast, work, rows, shards, conns):
    out = {}
    # one process
    sink = compare.Sink(work)
    t0 = time.monotonic()
    p, tf = run_one(blast, work, "single", sink.port, conns)
    p.wait()
    wall = time.monotonic() - t0
    got = sink.stop()
    _, user, sys_, rss = read_time(tf)
    out["single"] = {"wall_s": round(wall, 2), "messages": got, "rate": round(got / wall, 1),
                     "cpu_s": round(user + sys_, 2), "max_rss_kb": rss, "exit": p.returncode}
    # N shards at once, the same total connections
    sink = compare.Sink(work)
    t0 = time.monotonic()
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
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="blast-bench-shards-")
    try:
        subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "compare.py"),
                        "--prepare", work, str(a.rows)], check=True)
        results = []
        for r in range(a.rounds):
            m = measure(a.blast, work, a.rows, a.shards, a.connections)
            ratio = m["shards"]["rate"] / m["single"]["rate"]
            m["ratio"] = round(ratio, 3)
            results.append(m)
            print(f"round {r + 1}: one process {m['single']['messages']} in "
                  f"{m['single']['wall_s']} s ({m['single']['rate']}/s, peak RSS "
                  f"{m['single']['max_rss_kb'] / 1024:.1f} MB); {a.shards} shards "
                  f"{m['shards']['messages']} in {m['shards']['wall_s']} s "
                  f"({m['shards']['rate']}/s, peak RSS per shard "
                  f"{m['shards']['max_rss_kb'] / 1024:.1f} MB): {ratio:.2f}x "
                  f"(target >= 0.9x: {'met' if ratio >= 0.9 else 'missed'})", flush=True)
            if m["single"]["messages"] != a.rows or m["shards"]["messages"] != a.rows:
                print("shards-1m: a run did not deliver every recipient", file=sys.stderr)
                return 1
        with open(os.path.join(a.out, "shards-1m.json"), "w") as f:
            json.dump({"rows": a.rows, "shards": a.shards, "connections": a.connections,
                       "rounds": results}, f, indent=1)
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
