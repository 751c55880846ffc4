#!/usr/bin/env python3
"""Write the demo session shipped in assets/demo/: a five-minute Element Call
that goes wrong as the runbook describes (a KE-1 storm, KE-2 misses after it,
one KE-3 event, a few KE-4 timeouts during a homeserver latency spike), with
the client's diag report and two database snapshots. Deterministic (seeded).

usage: scripts/make-demo.py [OUT_DIR]   (default: assets/demo)
"""
import datetime as dt
import json
import os
import random
import sys

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "assets", "demo")
rng = random.Random(151)
USER, FRIEND = "@alice:lotus.example", "@bob:lotus.example"
DEV, FDEV = "RWDSUMBAID", "FRIENDDEV1"
T0 = dt.datetime(2026, 6, 30, 18, 0, 0)
EVENT = "$SASBBzoqjK3demoEvent:lotus.example"
OTK = "AAAAAAAAAFA"
STORED = "Xq3vq0oN1uPlPO2cv0DwzE8vQmT0Q4gHMlZqOJ0b2WI"
UPLOADED = "hT7cP1r6kqF3e2w8yJbQ9m4aZx0sLd5uVnKoRiEgYtA"
UA = '"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/138.0 Safari/537.36"'
lines = []
seq = [5688800]


def ts(t):
    return t.strftime("%Y-%m-%d %H:%M:%S,") + "%03d" % (t.microsecond // 1000)


def nxt():
    seq[0] += 1
    return seq[0]


def access(t, method, path, status, secs, who=USER, nbytes=None):
    n = nxt()
    nbytes = nbytes if nbytes is not None else rng.randint(2, 3000)
    lines.append((t, "%s - synapse.access.http.8008 - 521 - INFO - %s-%d - 192.0.2.10 - 8008 - {%s} Processed request: %.3fsec/0.000sec ru=(%.3fsec, 0.000sec) db=(0.000sec/%.3fsec/3) %dB %s \"%s %s HTTP/1.1\" %s [0 dbevts]"
                  % (ts(t), method, n, who, secs, secs / 3, secs / 2, nbytes, status, method, path, UA)))
    return n


t = T0
end = T0 + dt.timedelta(minutes=5)
lines.append((t, "%s - synapse.handlers.presence - 1150 - INFO - sentinel - Handling presence timeouts" % ts(t)))
while t < end:
    t += dt.timedelta(milliseconds=rng.randint(80, 260))
    s = (t - T0).total_seconds()
    r = rng.random()
    # Background: syncs, state, presence.
    if r < 0.35:
        access(t, "GET", "/_matrix/client/v3/sync?timeout=30000&since=s72_1", 200, rng.uniform(0.02, 30.0), rng.choice([USER, FRIEND]))
    elif r < 0.45:
        access(t, "PUT", "/_matrix/client/v3/rooms/!call:lotus.example/state/org.matrix.msc3401.call.member/_%s_%s_m.call" % (FRIEND, FDEV), 200, rng.uniform(0.01, 0.1), FRIEND)
    elif r < 0.5:
        lines.append((t, "%s - synapse.federation.transport.server.federation - 108 - INFO - PUT-%d - Received txn %d from matrix.org. (PDUs: 1, EDUs: 0)" % (ts(t), nxt(), seq[0])))
    # KE-1 storm from 15 s to 150 s: the client re-uploads a diverged key.
    if 15 <= s <= 150 and rng.random() < 0.35:
        n = nxt()
        lines.append((t, "%s - synapse.handlers.e2e_keys - 955 - INFO - POST-%d - Adding one_time_keys dict_keys(['signed_curve25519:%s']) for device '%s' for user '%s' at %d" % (ts(t), n, OTK, DEV, USER, int(t.timestamp() * 1000))))
        lines.append((t, "%s - synapse.http.server - 131 - INFO - POST-%d - <XForwardedForRequest at 0x7f3a2c1d0e50 method='POST' uri='/_matrix/client/v3/keys/upload' clientproto='HTTP/1.1' site='8008'> SynapseError: 400 - One time key signed_curve25519:%s already exists. Old key: {\"key\":\"%s\",\"signatures\":{\"%s\":{\"ed25519:%s\":\"k2VjT\"}}}; new key: {'key': '%s', 'signatures': {'%s': {'ed25519:%s': 'q9Zx1'}}}" % (ts(t), n, OTK, STORED, USER, DEV, UPLOADED, USER, DEV)))
        access(t, "POST", "/_matrix/client/v3/keys/upload", 400, rng.uniform(0.004, 0.02), USER, 528)
    # KE-2: Bob keeps sending media keys to Alice's device from 30 s.
    if s >= 30 and rng.random() < 0.08:
        n = access(t, "PUT", "/_matrix/client/v3/sendToDevice/m.room.encrypted/m%d.0" % rng.randint(10**9, 10**10), 200, rng.uniform(0.005, 0.03), FRIEND, 2)
        lines.append((t, "%s - synapse.9533_debug - 800 - DEBUG - PUT-%d - Storing to-device messages with stream_id %d: ['%s/%s (msgid m%d.0)']" % (ts(t), n, n * 3, USER, DEV, n)))
    # KE-4: MatrixRTC restarts its delayed leave every 5 s; 200–230 s the DB is slow.
    if int(s * 10) % 50 == 0:
        slow = 200 <= s <= 230
        access(t, "POST", "/_matrix/client/unstable/org.matrix.msc4140/delayed_events/syd_wBpVtqzhXqHkmYcLnRaE/restart", 200, rng.uniform(2.2, 4.8) if slow else rng.uniform(0.01, 0.08), USER, 2)
        if slow:
            for _ in range(12):
                access(t, "PUT", "/_matrix/client/v3/rooms/!call:lotus.example/send/m.room.encrypted/m%d" % rng.randint(1, 10**6), 200, rng.uniform(2.0, 5.0), FRIEND)
    if abs(s - 60) < 0.15:
        lines.append((t, "%s - synapse.handlers.message - 1021 - INFO - PUT-%d - Persisted event %s of type m.room.encrypted in !call:lotus.example" % (ts(t), nxt(), EVENT)))
    if abs(s - 215) < 0.15:
        lines.append((t, "%s - synapse.handlers.delayed_events - 522 - ERROR - sentinel - Failed to send delayed event" % ts(t)))
        lines.append((t, "Traceback (most recent call last):"))
        lines.append((t, '  File "/opt/venvs/matrix-synapse/lib/python3.11/site-packages/synapse/handlers/delayed_events.py", line 518, in _send_event'))
        lines.append((t, "synapse.api.errors.SynapseError: 504: Timed out waiting for the database"))

os.makedirs(OUT, exist_ok=True)
with open(os.path.join(OUT, "homeserver.log"), "w") as f:
    for _, l in lines:
        f.write(l + "\n")


def ms(t):
    return int(t.replace(tzinfo=dt.timezone.utc).timestamp() * 1000)


entries = []
for k in range(6):
    at = T0 + dt.timedelta(seconds=16 + k * 20)
    entries.append({"ts": ms(at), "level": "error", "ke": "KE-1", "signature": "already exists",
                    "message": "POST /_matrix/client/v3/keys/upload 400 M_UNKNOWN: One time key signed_curve25519:%s already exists. Old key: {\"key\":\"%s\"}; new key: {'key': '%s'}" % (OTK, STORED, UPLOADED)})
for k in range(8):
    at = T0 + dt.timedelta(seconds=35 + k * 25)
    entries.append({"ts": ms(at), "level": "warn", "ke": "KE-2", "signature": "io.element.call.encryption_keys",
                    "message": "WARN matrix_sdk_crypto::machine: Received an unexpected encrypted to-device event sender_key=\"dGhpcyBpcyBub3QgYSBrZXk\" event_type=\"io.element.call.encryption_keys\""})
    entries.append({"ts": ms(at + dt.timedelta(seconds=2)), "level": "error", "ke": "KE-2", "signature": "MissingKey",
                    "message": "MissingKey: missing key at index %d for participant %s:%s" % (k % 3, FRIEND, FDEV)})
entries.append({"ts": ms(T0 + dt.timedelta(seconds=61)), "level": "warn", "ke": "KE-3", "signature": "DecryptionError",
                "message": "Error decrypting event (id=%s type=m.room.encrypted sender=%s room=!call:lotus.example ts=%d): DecryptionError[msg: missing field `algorithm` at line 1 column 138, sender_key: undefined, session_id: undefined]" % (EVENT, FRIEND, ms(T0 + dt.timedelta(seconds=60)))})
for k in range(4):
    at = T0 + dt.timedelta(seconds=203 + k * 7)
    entries.append({"ts": ms(at), "level": "warn", "ke": "KE-4", "signature": "delayed event",
                    "message": "[MatrixRTCSession !call:lotus.example m.call#] [MembershipManager] Network local timeout error while sending event, immediate retry ((%d/10)) AbortError: Restart delayed event timed out before the HS responded" % k})
entries.sort(key=lambda e: e["ts"])
diag_at = T0 + dt.timedelta(seconds=280)
diag_name = "lotus-crypto-diag-%d.json" % ms(diag_at)
counts = {}
for e in entries:
    counts[e["ke"]] = counts.get(e["ke"], 0) + 1
with open(os.path.join(OUT, diag_name), "w") as f:
    json.dump({"sdkVersion": "41.6.0-rc.0", "deviceId": DEV, "userId": USER, "syncState": "SYNCING", "cryptoReady": True,
               "counts": counts, "entries": entries}, f, indent=2)


def key_json(k):
    return json.dumps({"key": k, "signatures": {USER: {"ed25519:" + DEV: "k2VjT"}}}, separators=(",", ":"))


inventory = [{"algorithm": "signed_curve25519", "key_id": OTK, "ts_added_ms": ms(T0) - 86400000, "key_json": key_json(STORED)}]
inventory += [{"algorithm": "signed_curve25519", "key_id": "AAAAAAAAAF%d" % i, "ts_added_ms": ms(T0) - 3600000, "key_json": key_json("k%02dZmFrZQ" % i)} for i in range(1, 6)]


def snapshot(pending, otks, lookup):
    return {
        "otk_inventory": otks,
        "otk_counts": [{"algorithm": "signed_curve25519", "count": len(otks)}],
        "fallback_keys": [{"algorithm": "signed_curve25519", "key_id": "AAAAAAAAAAE", "used": False, "key_json": key_json("ZmFsbGJhY2s")}],
        "device_inbox_pending": [{"user_id": USER, "device_id": DEV, "pending": pending}],
        "devices": [{"device_id": DEV, "display_name": "Lotus Chat (Firefox)", "last_seen": ms(T0), "ip": "192.0.2.10", "user_agent": "Mozilla/5.0"}],
        "delayed_events": [{"delay_id": "syd_wBpVtqzhXqHkmYcLnRaE", "user_localpart": "alice", "device_id": DEV, "delay": 8000, "send_ts": ms(T0) + 8000, "event_type": "org.matrix.msc3401.call.member", "is_processed": False}],
        "event_lookup": lookup,
    }


with open(os.path.join(OUT, "db-first.json"), "w") as f:
    json.dump(snapshot(3, inventory, []), f, indent=2)
with open(os.path.join(OUT, "db-last.json"), "w") as f:
    json.dump(snapshot(41, inventory[:4], [{"event_id": EVENT, "type": "m.room.encrypted", "sender": FRIEND, "origin_server_ts": ms(T0 + dt.timedelta(seconds=60)), "found": True, "algorithm_present": False, "algorithm": None}]), f, indent=2)
with open(os.path.join(OUT, "schedule.json"), "w") as f:
    json.dump({"user_id": USER, "device_id": DEV, "participants": [FRIEND + "/" + FDEV], "timezone": "UTC",
               "client": [{"at": diag_at.isoformat() + "Z", "file": diag_name}],
               "db": [{"at": (T0 + dt.timedelta(seconds=5)).isoformat() + "Z", "file": "db-first.json"},
                      {"at": (T0 + dt.timedelta(seconds=290)).isoformat() + "Z", "file": "db-last.json"}]}, f, indent=2)
print("%d lines, diag %s" % (len(lines), diag_name), file=sys.stderr)
