#!/bin/sh
# What making the journal durable costs on this machine: the median and 90th
# percentile time of an append of a journal-sized line (300 bytes) and fdatasync,
# in a directory on the disk (where the journal usually is) and on tmpfs.
# Usage: bench/fsync.sh [DIR ...]   (default: /tmp and /dev/shm)
set -eu
[ $# -gt 0 ] || set -- /tmp /dev/shm
/usr/bin/python3 - "$@" <<'PY'
import os, statistics, sys, tempfile, time
for where in sys.argv[1:]:
    fd, path = tempfile.mkstemp(prefix="blast-bench-fsync.", dir=where)
    times = []
    try:
        for _ in range(500):
            os.write(fd, b"x" * 299 + b"\n")
            t = time.monotonic()
            os.fdatasync(fd)
            times.append(time.monotonic() - t)
    finally:
        os.close(fd)
        os.unlink(path)
    times.sort()
    print(f"{where}: append + fdatasync: median {statistics.median(times) * 1000:.3f} ms, "
          f"90th percentile {times[449] * 1000:.3f} ms (500 appends)")
PY
