#!/usr/bin/env bash
# Soak: memory over a long live capture. The console runs headless and
# follows, over SSH (a throwaway sshd on 127.0.0.1), a storm-profile log
# (bench/gen_synapse_log.py --profile storm) appended at 2,000 lines/s, each
# line stamped with the time it is written; callcap's RSS is sampled every
# 10 s. Prints the RSS after the first minute, at the end and the largest,
# and checks that every line fed was journaled.
#
# usage: bench/soak.sh [--quick] [MINUTES]   (default 30; --quick: 3)
#        CALLCAP_BIN=path soaks another build
set -euo pipefail
cd "$(dirname "$0")/.."
MIN=30
if [ "${1:-}" = --quick ]; then MIN=3; shift; fi
MIN=${1:-$MIN}
RATE=2000
LINES=$((RATE * 60 * MIN))
command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || apt-get install -y -qq openssh-server >/dev/null
# CALLCAP_BIN: another build to soak (default: this tree's release build).
if [ -z "${CALLCAP_BIN:-}" ]; then cargo build --release --quiet; fi
BIN=${CALLCAP_BIN:-$PWD/target/release/callcap}
W=$(mktemp -d)
cleanup() {
  [ -n "${CP:-}" ] && kill "$CP" 2>/dev/null || true
  [ -n "${FEED:-}" ] && kill "$FEED" 2>/dev/null || true
  [ -s "$W/sshd.pid" ] && kill "$(cat "$W/sshd.pid")" 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT

# The sshd (see the reference's toolchain notes).
mkdir -p /run/sshd
ssh-keygen -q -t ed25519 -N '' -f "$W/host_ed25519"
ssh-keygen -q -t ed25519 -N '' -f "$W/client_ed25519"
cp "$W/client_ed25519.pub" "$W/authorized_keys"; chmod 600 "$W/authorized_keys"
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
cat > "$W/sshd_config" <<CFG
Port $PORT
ListenAddress 127.0.0.1
HostKey $W/host_ed25519
AuthorizedKeysFile $W/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile $W/sshd.pid
CFG
/usr/sbin/sshd -f "$W/sshd_config"
echo "[127.0.0.1]:$PORT $(cut -d' ' -f1,2 "$W/host_ed25519.pub")" > "$W/known_hosts"
for _ in $(seq 50); do [ -s "$W/sshd.pid" ] && break; sleep 0.1; done

python3 bench/gen_synapse_log.py "$W/pool.log" --profile storm --lines "$LINES" 2>/dev/null
: > "$W/hs.log"
cat > "$W/c.toml" <<CFG
[ssh]
host = "127.0.0.1"
port = $PORT
user = "$(id -un)"
identity-file = "$W/client_ed25519"
known-hosts = "$W/known_hosts"
[server-log]
path = "$W/hs.log"
[bundle]
out = "$W/out"
CFG
XDG_STATE_HOME=$W/state "$BIN" live --headless --config "$W/c.toml" > "$W/live.out" 2>&1 &
CP=$!
sleep 5
# The feeder: RATE lines/s in 10 ms ticks, each stamped with the wall clock.
python3 - "$W/pool.log" "$W/hs.log" "$RATE" <<'PY' &
import datetime as dt, sys, time
pool, out, rate = sys.argv[1], sys.argv[2], int(sys.argv[3])
per_tick = rate // 100
t0 = time.monotonic()
with open(pool, "rb") as src, open(out, "ab") as f:
    tick = 0
    while True:
        now = dt.datetime.utcnow()
        stamp = (now.strftime("%Y-%m-%d %H:%M:%S,") + "%03d" % (now.microsecond // 1000)).encode()
        chunk = []
        for _ in range(per_tick):
            line = src.readline()
            if not line:
                break
            chunk.append(stamp + line[23:] if line[:2] == b"20" and line[23:26] == b" - " else line)
        if not chunk:
            break
        f.write(b"".join(chunk)); f.flush()
        tick += 1
        delay = t0 + tick / 100 - time.monotonic()
        if delay > 0:
            time.sleep(delay)
PY
FEED=$!
rss() { awk '/VmRSS/ { print $2 }' "/proc/$CP/status" 2>/dev/null || echo 0; }
start=$(date +%s); first=""; peak=0; samples=""
while kill -0 "$FEED" 2>/dev/null; do
  sleep 10
  r=$(rss); el=$(( $(date +%s) - start ))
  [ "${r:-0}" -gt 0 ] || { echo "callcap stopped: $(tail -3 "$W/live.out")" >&2; exit 1; }
  [ -z "$first" ] && [ "$el" -ge 60 ] && first=$r
  [ "$r" -gt "$peak" ] && peak=$r
  last=$r; samples="$samples $r"
done
FEED=
sleep 5; last=$(rss)
kill -INT "$CP"; wait "$CP" || true; CP=
B=$(find "$W/out" -maxdepth 1 -name 'call-*' -type d | head -1)
got=$(wc -l < "$B/server/homeserver.log")
echo "soak: $MIN min at $RATE lines/s over SSH, storm profile; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "RSS samples (KiB, every 10 s):$samples"
echo "RSS after the first minute ${first:-?} KiB, at the end $last KiB, largest $peak KiB;" \
  "end/first $(python3 -c "print('%+.1f %%' % (100 * ($last / ${first:-$last} - 1)))")"
echo "journaled lines: $got of $LINES"
[ "$got" = "$LINES" ]
