#!/usr/bin/env bash
# Benchmark: the zero-latency sweep of this checkout next to an older pipeline's, one run after the other, each
# next to its own direct pool (bench/sweep.py), so that "N times the checks a second of before" is measured on
# one machine in one sitting rather than against a figure from another day's machine (not a test).
#
#   git worktree add /tmp/ltr-before 6c92c1a        # issue 12 filed: the pipeline before its per-check work
#   git -C /tmp/ltr-before show 73a82af:bench/sweep.py > /tmp/ltr-before/bench/sweep.py  # the first with the pool
#   ln -s "$PWD/.venv" /tmp/ltr-before/.venv
#   bench/sweep_pairs.sh /tmp/ltr-before sqlite 3     # or: ... postgres 3 (database ltr_pairs, dropped each run)
#
# GAP=<seconds> waits before each run (the last run's load settles). One line a run: checks a second (first
# started to last finished), the direct pool's calls a second, their ratio, checks passed.
set -uo pipefail
before=$1 db=${2:-sqlite} runs=${3:-3}
here=$(cd "$(dirname "$0")/.." && pwd)
for i in $(seq 1 "$runs"); do
  for tree in before now; do
    dir=$before; [ "$tree" = now ] && dir=$here
    sleep "${GAP:-0}"
    load=$(cut -d' ' -f1 /proc/loadavg)
    if [ "$db" = postgres ]; then
      psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS ltr_pairs" -c "CREATE DATABASE ltr_pairs" postgres
      export DATABASE_URL=postgres://postgres@127.0.0.1:5432/ltr_pairs
    else
      unset DATABASE_URL
    fi
    out=$(cd "$dir" && .venv/bin/python bench/sweep.py --servers 1000 --subscriptions 5 --latency-ms 0 \
          --workers 2 --threads 32 2>&1 | grep -v WARNING)
    rate=$(grep "checks a second (first" <<<"$out" | grep -o '[0-9]*/s ([0-9.]* s)')
    pool=$(grep "direct pool of" <<<"$out" | grep -o '[0-9]* calls/s')
    ratio=$(grep "sweep / direct pool" <<<"$out" | awk '{print $NF}')
    passed=$(grep "checks passed" <<<"$out" | awk '{print $(NF-2) "/" $NF}')
    echo "$(date -u +%H:%M:%S) $db run $i $tree (load before $load): $rate, direct pool $pool, ratio $ratio, passed $passed"
  done
done
