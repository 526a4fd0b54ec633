#!/bin/sh
# Run the libFuzzer harnesses built by `make fuzz`, JOBS at a time, SECONDS each.
#
#   scripts/fuzz.sh DIR SECONDS JOBS NAME...
#
# DIR is the build's fuzz directory, with a binary DIR/fuzz-NAME per harness. Each
# run starts from the committed corpus and regressions (tests/fuzz/corpus/NAME,
# tests/fuzz/regressions/NAME), read only, with the harness's dictionary and
# options (tests/fuzz/NAME.dict, tests/fuzz/NAME.options); what it adds to the
# corpus goes to DIR/corpus/NAME, a crash to DIR/artifacts/NAME/, its output to
# DIR/logs/NAME.log. At the end DIR/summary.txt has each harness's executions,
# seconds, new corpus entries, peak memory and findings (libFuzzer's final
# statistics; the artifacts written by this run), and the exit code is 1 when any
# harness found something.
set -eu
cd "$(dirname "$0")/.."
[ $# -ge 4 ] || { echo "usage: $0 DIR SECONDS JOBS NAME..." >&2; exit 2; }
dir=$1 seconds=$2 jobs=$3
shift 3
mkdir -p "$dir/logs"
# findings are the artifacts this run writes; older ones stay where they are
stamp="$dir/logs/.started"
touch "$stamp"

run_one() {
    name=$1
    mkdir -p "$dir/corpus/$name" "$dir/artifacts/$name"
    set -- "$dir/fuzz-$name" -max_total_time="$seconds" -print_final_stats=1 \
        -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$dir/artifacts/$name/"
    [ -f "tests/fuzz/$name.dict" ] && set -- "$@" -dict="tests/fuzz/$name.dict"
    if [ -f "tests/fuzz/$name.options" ]; then
        # one libFuzzer flag a line, '#' starts a comment
        for o in $(grep -v '^#' "tests/fuzz/$name.options"); do
            set -- "$@" "$o"
        done
    fi
    set -- "$@" "$dir/corpus/$name"
    for d in "tests/fuzz/corpus/$name" "tests/fuzz/regressions/$name"; do
        [ -d "$d" ] && set -- "$@" "$d"
    done
    echo "fuzz: $name for ${seconds}s"
    status=0
    "$@" >"$dir/logs/$name.log" 2>&1 || status=$?
    echo "$status" >"$dir/logs/$name.status"
    echo "fuzz: $name done (exit $status)"
}

# At most JOBS runs at once: each waits for a free slot (a token read from a FIFO).
fifo="$dir/.slots"
rm -f "$fifo"
mkfifo "$fifo"
exec 3<>"$fifo"
rm -f "$fifo"
i=0
while [ "$i" -lt "$jobs" ]; do echo >&3; i=$((i + 1)); done
pids=""
for name in "$@"; do
    [ -x "$dir/fuzz-$name" ] || { echo "fuzz: no harness $dir/fuzz-$name" >&2; exit 2; }
    read -r _ <&3
    (run_one "$name"; echo >&3) &
    pids="$pids $!"
done
for p in $pids; do wait "$p"; done
exec 3>&-

found=0
{
    printf '%-10s %12s %8s %8s %10s %8s  %s\n' harness executions seconds corpus peak_rss findings exit
    for name in "$@"; do
        log="$dir/logs/$name.log"
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
        secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n 1)
        rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -n 1)
        corpus=$(find "$dir/corpus/$name" -type f -newer "$stamp" | wc -l)
        findings=$(find "$dir/artifacts/$name" -type f -newer "$stamp" | wc -l)
        status=$(cat "$dir/logs/$name.status")
        [ "$findings" -gt 0 ] || [ "$status" -ne 0 ] && found=1
        printf '%-10s %12s %8s %8s %8sMB %8s  %s\n' "$name" "${runs:-?}" "${secs:-?}" \
            "$corpus" "${rss:-?}" "$findings" "$status"
        for a in $(find "$dir/artifacts/$name" -type f -newer "$stamp"); do
            echo "    finding: $a"
        done
    done
} >"$dir/summary.txt"
cat "$dir/summary.txt"
exit $found
