#!/usr/bin/env bash
# Benchmark: `callcap analyze` (one pass, bundle written) against grep -cE and
# rg -c running the runbook's patterns one pass per KE, on a ~1 GB
# Synapse-shaped log of each profile (bench/gen_synapse_log.py: `sparse`,
# about 14 % of the lines KE evidence; `storm`, about 40 %). Contenders and
# profiles are interleaved round by round; prints wall times, CPU, peak RSS
# and the ratios, the profiles side by side.
#
# usage: bench/analyze.sh [--profile sparse|storm|both] [SIZE_BYTES]
#   (default: both, 1 GiB; data cached in $BENCH_DIR)
#   ROUNDS=N (default 5); CALLCAP_BASE=path/to/another/callcap adds it as a
#   contender (`base`) in the same rounds, for an A/B of two builds.
#   FLOOR=1 adds `floor` (examples/bundle_floor.rs): only the bundle's fixed
#   work, reading the log, writing and hashing its copy and as many bytes of
#   KE logs as the warm-up's bundle held; no line scanned.
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=both
if [ "${1:-}" = --profile ]; then PROFILE=$2; shift 2; fi
case $PROFILE in
  sparse | storm) PROFILES=$PROFILE ;;
  both) PROFILES="sparse storm" ;;
  *) echo "usage: bench/analyze.sh [--profile sparse|storm|both] [SIZE_BYTES]" >&2; exit 2 ;;
esac
SIZE=${1:-1073741824}
BENCH_DIR=${BENCH_DIR:-/tmp/callcap-bench}
mkdir -p "$BENCH_DIR"

for tool in rg:ripgrep; do
  bin=${tool%%:*}; pkg=${tool##*:}
  command -v "$bin" >/dev/null 2>&1 || { echo "installing $pkg" >&2; apt-get install -y -qq "$pkg" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "$pkg" >/dev/null; }; }
done

log_of() { # profile -> path (today's sparse log keeps its old name)
  if [ "$1" = sparse ]; then echo "$BENCH_DIR/homeserver-$SIZE.log"; else echo "$BENCH_DIR/homeserver-$1-$SIZE.log"; fi
}
for p in $PROFILES; do
  L=$(log_of "$p")
  [ -s "$L" ] || python3 bench/gen_synapse_log.py "$L" --profile "$p" --bytes "$SIZE" --event-id '$SASBBzoqjEvent1:lotus.example'
done
cargo build --release --quiet
BIN=target/release/callcap
BASE=${CALLCAP_BASE:-}
FLOOR=${FLOOR:-}
if [ -n "$FLOOR" ]; then cargo build --release --quiet --example bundle_floor; fi

KE1='keys/upload|One time key .* already exists|OneTimeKey'
KE2='io.element.call.encryption_keys|m.room.encrypted|/sendToDevice|to_device'
KE4='delayed_event|msc4140|msc4157|update_delayed'
CLIENT='already exists|missing key at index|io.element.call.encryption_keys|MissingKey|DecryptionError|update_delayed_event|delayed event'

measure() { # name, command...
  local name=$1; shift
  local out; out=$(python3 bench/measure.py "$@")
  echo "$name $out"
}
four_passes() { # tool log: one pass per KE, the way the runbook does it
  for p in "$KE1" "$KE2" "$KE4" "$CLIENT"; do
    if [ "$1" = grep ]; then LC_ALL=C grep -cE "$p" "$2"; else rg -c "$p" "$2"; fi
  done
}
export -f four_passes; export KE1 KE2 KE4 CLIENT

OUT=$BENCH_DIR/out
ROUNDS=${ROUNDS:-5}
for p in $PROFILES; do
  L=$(log_of "$p"); n=$(wc -l < "$L")
  echo "$p: $(du -h "$L" | cut -f1), $n lines; KE-1/KE-2/KE-4/client lines:" \
    "$(for x in "$KE1" "$KE2" "$KE4" "$CLIENT"; do printf '%s%% ' $((100 * $(rg -c "$x" "$L") / n)); done)" \
    "any: $((100 * $(rg -c "$KE1|$KE2|$KE4|$CLIENT" "$L") / n))%"
done
echo "$ROUNDS rounds, contenders and profiles interleaved; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
# Memory and the bundle: callcap writes 1.3 GB into the page cache, grep and
# ripgrep write nothing. On a VM with free page reporting (this project's
# machine: `Free page reporting enabled` in dmesg, nested virtualization),
# memory left free for a few seconds goes back to the host, and the first
# write into each such page costs a fault on the host: the same run then
# takes twice as long, nearly all of it kernel time in the page-cache copy.
# Each round therefore deletes the previous bundle right before callcap runs,
# so that its page cache reuses memory the machine still holds (as a capture
# host that keeps writing does), and one run after a pause is reported apart.
mkdir -p "$OUT"
for p in $PROFILES; do # untimed warm-up: page cache and binaries
  cat "$(log_of "$p")" > /dev/null
  "$BIN" analyze --log "$(log_of "$p")" --out "$OUT" --label warmup >/dev/null
  # The floor writes as many bytes of KE logs as callcap does.
  declare "KE_BYTES_$p=$(cat "$OUT"/warmup/server/KE-*.log | wc -c)"
  rm -rf "$OUT"; mkdir -p "$OUT"
done
floor_run() { # profile round
  local ke="KE_BYTES_$1"
  sync; rm -rf "$OUT"; mkdir -p "$OUT"
  measure "floor-$1 $2" target/release/examples/bundle_floor "$(log_of "$1")" "$OUT/floor" "${!ke}"
  # A floor that copied less is not a lower one.
  [ "$(stat -c %s "$OUT/floor/server/homeserver.log" 2>/dev/null)" = "$(stat -c %s "$(log_of "$1")")" ] ||
    { echo "the floor did not copy the whole log" >&2; exit 1; }
}
callcap_run() { # name profile round binary
  sync; rm -rf "$OUT"; mkdir -p "$OUT"
  measure "$1-$2 $3" "$4" analyze --log "$(log_of "$2")" --out "$OUT" --label bench
  # A run that failed is not a fast one.
  [ -s "$OUT/bench/manifest.json" ] || { echo "callcap wrote no bundle" >&2; exit 1; }
}
results=$(
  for round in $(seq "$ROUNDS"); do
    for p in $PROFILES; do
      L=$(log_of "$p")
      cat "$L" > /dev/null
      # `sync` first: earlier writeback would compete with the contender.
      sync
      measure "grep-$p $round" bash -c 'four_passes grep "$0"' "$L"
      sync
      measure "rg-$p $round" bash -c 'four_passes rg "$0"' "$L"
      # The floor before callcap, the round's first writer (placed after
      # callcap it measured 0.88-0.96 of ripgrep, before it 0.79, one run each).
      if [ -n "$FLOOR" ]; then floor_run "$p" "$round"; fi
      # With a base build, the two builds take turns going first.
      if [ -n "$BASE" ] && [ $((round % 2)) = 0 ]; then callcap_run base "$p" "$round" "$BASE"; fi
      callcap_run callcap "$p" "$round" "$BIN"
      if [ -n "$BASE" ] && [ $((round % 2)) = 1 ]; then callcap_run base "$p" "$round" "$BASE"; fi
    done
  done
  for p in $PROFILES; do
    sync; rm -rf "$OUT"; mkdir -p "$OUT"; sleep 10
    measure "callcap-after-pause-$p 1" "$BIN" analyze --log "$(log_of "$p")" --out "$OUT" --label bench
  done
  rm -rf "$OUT"
)
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$results" "$PROFILES" <<'PY'
import statistics, sys
runs = {}
for line in sys.argv[1].splitlines():
    name, rnd, wall, rss, user, sys_ = line.split()
    runs.setdefault(name, {})[rnd] = (float(wall), int(rss), float(user), float(sys_))
profiles = sys.argv[2].split()
def cell(name):
    r = runs.get(name)
    if not r:
        return None
    walls = [v[0] for v in r.values()]
    rss = [v[1] / 1024 for v in r.values()]
    return ("%.2f s (%.2f-%.2f)" % (statistics.median(walls), min(walls), max(walls)),
            "%.1f-%.1f MiB" % (min(rss), max(rss)),
            "%.2f / %.2f s" % (statistics.median(v[2] for v in r.values()),
                               statistics.median(v[3] for v in r.values())))
def ratio(a, b):
    if a not in runs or b not in runs:
        return None
    rs = [runs[a][k][0] / runs[b][k][0] for k in runs[a] if k in runs[b]]
    return "%.2f (%.2f-%.2f)" % (statistics.median(rs), min(rs), max(rs))
rows = []
for who in ("callcap", "base", "floor", "rg", "grep", "callcap-after-pause"):
    cells = [cell("%s-%s" % (who, p)) for p in profiles]
    if any(cells):
        rows.append(("%s wall, median (min-max)" % who, [c[0] if c else "-" for c in cells]))
        if who in ("callcap", "base"):
            rows.append(("%s peak RSS" % who, [c[1] if c else "-" for c in cells]))
        rows.append(("%s CPU user / kernel, median" % who, [c[2] if c else "-" for c in cells]))
for a, b in (("callcap", "rg"), ("callcap", "grep"), ("base", "rg"), ("callcap", "base"),
             ("floor", "rg")):
    rs = [ratio("%s-%s" % (a, p), "%s-%s" % (b, p)) for p in profiles]
    if any(rs):
        what = "4 passes" if b in ("rg", "grep") else "per round"
        rows.append(("ratio %s / %s (%s), median" % (a, b, what), [r or "-" for r in rs]))
w = max(len(r[0]) for r in rows)
print("%-*s  %s" % (w, "", "  ".join("%-24s" % p for p in profiles)))
for label, cells in rows:
    print("%-*s  %s" % (w, label, "  ".join("%-24s" % c for c in cells)))
# Per round: a slow round with kernel time far above the others is the
# page-cache effect described above, not slower matching.
for p in profiles:
    r = runs["callcap-%s" % p]
    print("callcap %s rounds (wall s, kernel s):" % p,
          "  ".join("%.2f %.2f" % (r[k][0], r[k][3]) for k in sorted(r, key=int)))
PY
