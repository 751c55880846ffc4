#!/usr/bin/env python3
"""Writes a lotus-crypto-diag report of about MIB MiB: entries of about
5 KB (a client error and its stack), a third each KE-2 (`MissingKey`),
KE-3 (`Error decrypting event (id=$…)`, every id different) and KE-4
(a delayed-event timeout), each naming the subject's device.

usage: bench/gen_diag.py OUT MIB [START_EPOCH_MS]"""
import json
import sys

out, mib = sys.argv[1], float(sys.argv[2])
start = int(sys.argv[3]) if len(sys.argv) > 3 else 1782842400000
stack = "".join(
    "    at decryptEvent (https://call.lotus.example/assets/index-%08x.js:%d:%d)\n" % (i * 7919, i, i * 3)
    for i in range(64)
)
messages = [
    "MissingKey: missing key at index %d for participant @bob:lotus.example (device RWDSUMBAID)\n",
    "Error decrypting event (id=$%043d type=m.room.encrypted sender=@bob:lotus.example room=!call:lotus.example ts=1782842410000): DecryptionError[msg: missing field `algorithm` at line 1 column 126, session: undefined|undefined]\n",
    "MatrixRTC: delayed event restart timed out after 10000 ms (request %d)\n",
]
target = int(mib * 1024 * 1024)
entries, size, i = [], 0, 0
while size < target:
    m = messages[i % 3]
    msg = (m % i if "%" in m else m) + stack[: 5000 - len(m)]
    e = {"ts": start + i * 50, "level": "error", "message": msg}
    size += len(json.dumps(e)) + 2
    entries.append(e)
    i += 1
with open(out, "w") as f:
    json.dump({"userId": "@alice:lotus.example", "deviceId": "RWDSUMBAID", "entries": entries}, f)
print("%s: %d entries, %d bytes" % (out, len(entries), size), file=sys.stderr)
