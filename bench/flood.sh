#!/usr/bin/env bash
# Console under a flood: the live console (in a real terminal, tmux) follows
# a log that grows by 50,000 lines/s for 10 s; frame times come from the
# console's own debug log (CALLCAP_LOG=debug). Every line must be journaled.
#
# usage: bench/flood.sh [--profile storm] [LINES_PER_SECOND] [SECONDS]
#   without --profile every line is the same KE-1 conflict; with `storm` the
#   lines are bench/gen_synapse_log.py's storm profile (40 % KE lines, the
#   rest access lines), as many as the flood writes.
#   CALLCAP_BIN=path floods another build (default: this tree's release build).
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=
if [ "${1:-}" = --profile ]; then PROFILE=$2; shift 2; fi
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
printf '[server-log]\npath = "%s"\n[bundle]\nout = "%s"\n' "$W/hs.log" "$W/out" > "$W/c.toml"
export XDG_STATE_HOME=$W/state
tmux -S "$W/tmux" new-session -d -s c -x 160 -y 48 "CALLCAP_LOG=debug XDG_STATE_HOME=$W/state $BIN live --config $W/c.toml"
sleep 2
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
tmux -S "$W/tmux" send-keys -t c C-c; sleep 3
LOG=$(find "$W/state" -name callcap.log | head -1)
grep -o 'frame_us=[0-9]*' "$LOG" | cut -d= -f2 | sort -n | awk '{ a[NR] = $1 } END { printf "frames: %d, draw time p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", NR, a[int(NR*0.5)]/1000, a[int(NR*0.99)]/1000, a[NR]/1000 }'
grep -o 'key_to_frame_us=[0-9]*' "$LOG" | cut -d= -f2 | sort -n | awk '{ a[NR] = $1 } END { printf "key presses: %d, key to frame p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", NR, a[int(NR*0.5)]/1000, a[int(NR*0.99)]/1000, a[NR]/1000 }'
B=$(find "$W/out" -maxdepth 1 -name 'call-*' | head -1)
echo "journaled lines: $(wc -l < "$B/server/homeserver.log") of $((RATE * SECS))"
