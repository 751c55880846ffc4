#!/usr/bin/env bash
# Benchmark: what writing report.html adds to `callcap analyze` on a ~1 GB
# Synapse-shaped log, and the page's size. The page is made right after
# report.md and right before manifest.json, so its share is read from the
# times the two are opened (strace -ttt, openat only; the scan in between is
# not traced and not slowed). Prints, per round: analyze's wall time, the
# time from report.md's opening to manifest.json's (report.md's write, the
# page's making and its write: an upper bound), its share, the page's bytes.
#
# usage: bench/report-html.sh [SIZE_BYTES]   (default 1 GiB; data cached in $BENCH_DIR)
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${1:-1073741824}
BENCH_DIR=${BENCH_DIR:-/tmp/callcap-bench}
ROUNDS=${ROUNDS:-3}
mkdir -p "$BENCH_DIR"
LOG=$BENCH_DIR/homeserver-$SIZE.log
command -v strace >/dev/null 2>&1 || { echo "installing strace" >&2; apt-get install -y -qq strace >/dev/null; }
[ -s "$LOG" ] || python3 bench/gen_synapse_log.py "$LOG" --bytes "$SIZE" --event-id '$SASBBzoqjEvent1:lotus.example'
cargo build --release --quiet
BIN=target/release/callcap
OUT=$BENCH_DIR/report-html-out
TRACE=$BENCH_DIR/report-html.strace
cat "$LOG" > /dev/null
echo "log: $(du -h "$LOG" | cut -f1), $(wc -l < "$LOG") lines; $ROUNDS rounds"
for round in $(seq "$ROUNDS"); do
  rm -rf "$OUT"; sync
  start=$(date +%s.%N)
  strace -f -ttt --seccomp-bpf -e trace=openat -o "$TRACE" \
    "$BIN" analyze --log "$LOG" --out "$OUT" --label "r$round" > /dev/null
  end=$(date +%s.%N)
  # report.md and report.html are both written through `report.partial`.
  read -r md manifest < <(awk '/report\.partial/ && !md { md = $2 } /manifest\.json/ { m = $2 } END { print md, m }' "$TRACE")
  bytes=$(stat -c %s "$OUT/r$round/report.html")
  awk -v s="$start" -v e="$end" -v a="$md" -v b="$manifest" -v n="$bytes" 'BEGIN {
    printf "analyze %.2f s; report.md + report.html %.1f ms (%.3f %%); report.html %d bytes\n",
      e - s, (b - a) * 1000, (b - a) / (e - s) * 100, n }'
done
rm -rf "$OUT" "$TRACE"
