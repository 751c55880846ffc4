#!/usr/bin/env bash
# Console benchmarks: idle CPU of the live console (nothing arriving) and
# memory over a long replay (an hour-long recording replayed at high speed:
# RSS after the first minute of recording compared with at the end).
#
# usage: bench/console.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v tmux >/dev/null 2>&1 || apt-get install -y -qq tmux >/dev/null
cargo build --release --quiet
BIN=$PWD/target/release/callcap
W=$(mktemp -d); trap 'tmux -S "$W/tmux" kill-server 2>/dev/null || true; rm -rf "$W"' EXIT
TCK=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# 1. Idle CPU: the console follows a log that stays quiet.
: > "$W/hs.log"; mkdir -p "$W/dl"
printf '[server-log]\npath = "%s"\n[client]\ndownloads = "%s"\n[bundle]\nout = "%s"\n' "$W/hs.log" "$W/dl" "$W/out" > "$W/c.toml"
tmux -S "$W/tmux" new-session -d -s c -x 160 -y 48 "$BIN live --config $W/c.toml"
sleep 3
PID=$(pgrep -f "callcap live --config $W/c.toml" | head -1)
a=$(cpu_ticks "$PID"); sleep 20; b=$(cpu_ticks "$PID")
echo "idle CPU: $(awk -v d=$((b - a)) -v t="$TCK" 'BEGIN { printf "%.2f", 100 * d / t / 20 }') % of one core over 20 s"
tmux -S "$W/tmux" send-keys -t c C-c; sleep 2

# 2. RSS over a long replay: one hour of recording at 1200x.
python3 bench/gen_synapse_log.py "$W/hour.log" --lines 180000 2>/dev/null
B=$("$BIN" analyze --log "$W/hour.log" --out "$W/bundles" --label hour | tail -1)
"$BIN" replay "$B" --headless --speed 1200 --out "$W/replayed" > "$W/replay.out" &
RP=$!
first=""; peak=0
while kill -0 "$RP" 2>/dev/null; do
  r=$(awk '/VmRSS/ { print $2 }' "/proc/$RP/status" 2>/dev/null || echo 0)
  [ -z "$first" ] && [ "${r:-0}" -gt 0 ] && { sleep 0.05; first=$(awk '/VmRSS/ { print $2 }' "/proc/$RP/status" 2>/dev/null || echo 0); }
  [ "${r:-0}" -gt "$peak" ] && peak=$r
  last=$r
  sleep 0.2
done
wait "$RP"
echo "replay of $(wc -l < "$W/hour.log") lines (1 h of recording) at 1200x: RSS after the first minute ${first} KiB, peak ${peak} KiB, at the end ${last} KiB"
