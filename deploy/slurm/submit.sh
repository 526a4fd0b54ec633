#!/bin/bash
# Submit a sharded blast campaign to Slurm: a job array of N shards, then the merge
# of their reports once every shard has ended (docs/deploy.md).
#
#   deploy/slurm/submit.sh -n 8 [-t 4] [-d STATE_DIR] CAMPAIGN.yml [-- BLAST SEND OPTIONS...]
#   deploy/slurm/submit.sh -n 8 -r 2,5 CAMPAIGN.yml     # shards 2 and 5 again, then the merge
#
# options:
#   -n N        the number of shards (or BLAST_SHARD_COUNT); never change it mid-campaign
#   -t THROTTLE at most this many shards at once (sbatch --array=...%THROTTLE;
#               default N, or BLAST_THROTTLE)
#   -d DIR      journals, reports and logs (or BLAST_STATE_DIR; default: a directory
#               'blast-state' beside the campaign file); a filesystem every node sees
#   -r LIST     rerun these shards only (e.g. 2 or 2,5): each resumes from its journal
#   -b BLAST    the blast binary on the nodes (or BLAST; default: blast on PATH)
#   -N NAME     the files' prefix (or BLAST_NAME; default: the campaign file's name)
#   -M          no merge job
# Other sbatch options come from the environment sbatch reads itself
# (SBATCH_PARTITION, SBATCH_ACCOUNT, SBATCH_TIMELIMIT, ...).
#
# Prints the job ids: "shards JOBID" and "merge JOBID".
set -eu

here=$(cd "$(dirname "$0")" && pwd)
usage() {
    echo "usage: $0 -n N [-t THROTTLE] [-d STATE_DIR] [-r LIST] [-b BLAST] [-N NAME] [-M]" \
        "CAMPAIGN.yml [-- BLAST SEND OPTIONS...]" >&2
    echo "(the options are described at the top of $0)" >&2
    exit 2
}

count=${BLAST_SHARD_COUNT:-}
throttle=${BLAST_THROTTLE:-}
state=${BLAST_STATE_DIR:-}
rerun=
merge=1
blast=${BLAST:-blast}
name=${BLAST_NAME:-}
while getopts n:t:d:r:b:N:Mh opt; do
    case $opt in
    n) count=$OPTARG ;;
    t) throttle=$OPTARG ;;
    d) state=$OPTARG ;;
    r) rerun=$OPTARG ;;
    b) blast=$OPTARG ;;
    N) name=$OPTARG ;;
    M) merge= ;;
    *) usage ;;
    esac
done
shift $((OPTIND - 1))
[ "$#" -ge 1 ] || usage
campaign=$1
shift
if [ "$#" -gt 0 ]; then
    [ "$1" = "--" ] || usage
    shift
fi

whole() { case $1 in '' | *[!0-9]*) return 1 ;; *) [ "$1" -ge 1 ] ;; esac }
whole "$count" || { echo "submit: -n N: a whole number of shards above 0 is needed" >&2; exit 2; }
[ "$count" -le 10000 ] || { echo "submit: -n $count: at most 10000 shards" >&2; exit 2; }
throttle=${throttle:-$count}
whole "$throttle" || { echo "submit: -t '$throttle': a whole number above 0 is needed" >&2; exit 2; }
[ -f "$campaign" ] || { echo "submit: $campaign: no such file" >&2; exit 2; }

# absolute paths: the tasks run on other nodes, in other directories
campaign="$(cd "$(dirname "$campaign")" && pwd)/$(basename "$campaign")"
state=${state:-$(dirname "$campaign")/blast-state}
mkdir -p "$state/logs"
state=$(cd "$state" && pwd)
case $blast in
*/*) blast="$(cd "$(dirname "$blast")" && pwd)/$(basename "$blast")" ;;
esac
name=${name:-$(basename "$campaign")}
name=${name%.yml}
name=${name%.yaml}

if [ -n "$rerun" ]; then
    for i in ${rerun//,/ }; do
        case $i in
        *[!0-9]*) i=$count ;; # not a whole number: refused below
        esac
        if [ "$i" -ge "$count" ]; then
            echo "submit: -r $rerun: shards are 0..$((count - 1)), listed with commas" >&2
            exit 2
        fi
    done
    array=$rerun
else
    array="0-$((count - 1))"
fi

# the batch scripts read these (sbatch passes the environment on, --export=ALL)
export BLAST_CAMPAIGN="$campaign" BLAST_SHARD_COUNT="$count" BLAST_STATE_DIR="$state"
export BLAST_NAME="$name" BLAST="$blast"

shards=$(sbatch --parsable --array="$array%$throttle" --job-name="blast-$name" \
    --output="$state/logs/$name-%A_%a.out" "$here/blast-campaign.sbatch" "$@")
shards=${shards%%;*}
echo "shards $shards (array $array%$throttle of $count; logs $state/logs/$name-${shards}_I.out)"

if [ -n "$merge" ]; then
    # afterany, not afterok: a shard that exits 1 (some recipients failed, which a
    # large list nearly always has) still has a report worth merging, and with
    # afterok the merge would wait forever; the merge itself fails, naming the
    # shard, when a report is missing
    m=$(sbatch --parsable --dependency="afterany:$shards" --job-name="blast-$name-merge" \
        --output="$state/logs/$name-merge-%j.out" "$here/blast-merge.sbatch")
    m=${m%%;*}
    echo "merge $m (after job $shards ends; writes $state/reports/$name.json)"
fi
