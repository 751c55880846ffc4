#!/usr/bin/env bash
# Console under a flood: the live console (in a real terminal, tmux) follows
# a log that grows by 50,000 lines/s for 10 s; frame times come from the
# console's own debug log (CALLCAP_LOG=debug). Every line must be journaled.
#
# usage: bench/flood.sh [--profile storm] [--diag-mib N] [LINES_PER_SECOND] [SECONDS]
#   without --profile every line is the same KE-1 conflict; with `storm` the
#   lines are bench/gen_synapse_log.py's storm profile (40 % KE lines, the
#   rest access lines), as many as the flood writes.
#   --diag-mib N drops a lotus-crypto-diag report of N MiB (bench/gen_diag.py:
#   5 KB error entries, a third of them KE-3 with an event id each) into the
#   watched downloads folder half-way through the flood; the console's RSS
#   is sampled every 100 ms (growth: the largest after the drop, until the
#   flood is over, less the last before it; the largest while the bundle is
#   written at the quit is printed apart).
#   CALLCAP_BIN=path floods another build (default: this tree's release build).
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=; DIAG_MIB=
while [ $# -gt 0 ]; do
  case $1 in
    --profile) PROFILE=$2; shift 2 ;;
    --diag-mib) DIAG_MIB=$2; shift 2 ;;
    *) break ;;
  esac
done
RATE=${1:-50000}; SECS=${2:-10}
command -v tmux >/dev/null 2>&1 || apt-get install -y -qq tmux >/dev/null
if [ -z "${CALLCAP_BIN:-}" ]; then cargo build --release --quiet; fi
BIN=${CALLCAP_BIN:-$PWD/target/release/callcap}
W=$(mktemp -d); trap 'tmux -S "$W/tmux" kill-server 2>/dev/null || true; rm -rf "$W"' EXIT
POOL=
if [ -n "$PROFILE" ]; then
  POOL=$W/pool.log
  python3 bench/gen_synapse_log.py "$POOL" --profile "$PROFILE" --lines $((RATE * SECS)) 2>/dev/null
fi
: > "$W/hs.log"
mkdir -p "$W/dl"
if [ -n "$DIAG_MIB" ]; then python3 bench/gen_diag.py "$W/diag.json" "$DIAG_MIB"; fi
printf '[server-log]\npath = "%s"\n[client]\ndownloads = "%s"\n[call]\nuser-id = "@alice:lotus.example"\ndevice-id = "RWDSUMBAID"\n[bundle]\nout = "%s"\n' "$W/hs.log" "$W/dl" "$W/out" > "$W/c.toml"
export XDG_STATE_HOME=$W/state
tmux -S "$W/tmux" new-session -d -s c -x 160 -y 48 "CALLCAP_LOG=debug XDG_STATE_HOME=$W/state $BIN live --config $W/c.toml"
sleep 2
PID=$(pgrep -n -f "^$BIN live --config $W/c.toml")
# The console's RSS (KiB) every 100 ms, with a mark where the report drops.
( marked=; quit=; while kill -0 "$PID" 2>/dev/null; do
    if [ -z "$marked" ] && [ -e "$W/dropped" ]; then echo drop; marked=1; fi
    if [ -z "$quit" ] && [ -e "$W/quit" ]; then echo quit; quit=1; fi
    awk '/VmRSS/ { print $2 }' "/proc/$PID/status" 2>/dev/null; sleep 0.1
  done ) > "$W/rss" &
if [ -n "$DIAG_MIB" ]; then
  ( sleep $((SECS / 2)); touch "$W/dropped"; sleep 0.15; cp "$W/diag.json" "$W/dl/.partial"; mv "$W/dl/.partial" "$W/dl/lotus-crypto-diag-1782842680000.json" ) &
fi
# Key presses during the flood: scroll up and down every 200 ms.
( for i in $(seq 1 $((SECS * 5))); do tmux -S "$W/tmux" send-keys -t c k 2>/dev/null; sleep 0.1; tmux -S "$W/tmux" send-keys -t c j 2>/dev/null; sleep 0.1; done ) &
python3 - "$W/hs.log" "$RATE" "$SECS" "$POOL" <<'PY'
import sys, time
path, rate, secs, pool = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
line = "2026-06-30 18:00:00,000 - synapse.http.server - 131 - INFO - POST-1 - SynapseError: 400 - One time key signed_curve25519:AAAAAAAAAFA already exists. Old key: {}; new key: {}\n"
batch = rate // 100
lines = open(pool).readlines() if pool else None
t0 = time.monotonic()
with open(path, "a") as f:
    for tick in range(secs * 100):
        f.write("".join(lines[tick * batch:(tick + 1) * batch]) if lines else line * batch); f.flush()
        delay = t0 + (tick + 1) / 100 - time.monotonic()
        if delay > 0: time.sleep(delay)
print("wrote %d lines in %.2f s" % (rate * secs, time.monotonic() - t0))
PY
sleep 3
RSS_END=$(awk '/VmRSS/ { print $2 }' "/proc/$PID/status")
touch "$W/quit"; sleep 0.2
tmux -S "$W/tmux" send-keys -t c C-c; sleep 3
LOG=$(find "$W/state" -name callcap.log | head -1)
grep -o 'frame_us=[0-9]*' "$LOG" | cut -d= -f2 | sort -n | awk '{ a[NR] = $1 } END { printf "frames: %d, draw time p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", NR, a[int(NR*0.5)]/1000, a[int(NR*0.99)]/1000, a[NR]/1000 }'
grep -o 'key_to_frame_us=[0-9]*' "$LOG" | cut -d= -f2 | sort -n | awk '{ a[NR] = $1 } END { printf "key presses: %d, key to frame p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", NR, a[int(NR*0.5)]/1000, a[int(NR*0.99)]/1000, a[NR]/1000 }'
B=$(find "$W/out" -maxdepth 1 -name 'call-*' | head -1)
echo "journaled lines: $(wc -l < "$B/server/homeserver.log") of $((RATE * SECS))"
awk -v end="$RSS_END" '/drop/ { d = 1; next } /quit/ { q = 1; next }
  q { if ($1 > exit_peak) exit_peak = $1; next }
  !d { before = $1; first = first ? first : $1 } d && $1 > peak { peak = $1 } { max = $1 > max ? $1 : max }
  END { printf "RSS: %.1f MiB at the start of the flood, %.1f MiB largest, %.1f MiB at its end", first/1024, max/1024, end/1024;
        if (d) printf "; %.1f MiB before the report, %.1f MiB largest after it until the quit (growth %.1f MiB)", before/1024, peak/1024, (peak-before)/1024;
        printf "; while the bundle is written at the quit: %.1f MiB largest\n", exit_peak/1024 }' "$W/rss"
if [ -n "$DIAG_MIB" ]; then
  echo "client copy: $(ls "$B/client" 2>/dev/null | tr '\n' ' ')($(du -b "$B/client" | tail -1 | cut -f1) bytes); journal.jsonl $(stat -c %s "$B/journal.jsonl") bytes; client counts $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["counts"]["client"])' "$B/manifest.json")"
fi
