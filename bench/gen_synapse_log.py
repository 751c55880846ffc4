#!/usr/bin/env python3
"""Generate a Synapse-shaped homeserver.log for tests and benchmarks.

The lines follow Synapse's default format and the real shapes in
shared/reference (access lines in both the >=1.150 and the older form, the
OTK conflict, to-device tracing, delayed-event restarts, tracebacks, Twisted
nested lines), with a seeded random mix so runs are reproducible.

Two profiles: `sparse` (the default; about 14 % of the lines match one of
the runbook's four KE patterns) and `storm`, a log written while a fault
storms (the client re-uploads keys, to-device traffic piles up, call members
restart their delayed leave events): of every 100 lines about 18 match KE-1's
pattern, 13 KE-2's, 10 KE-4's and 8 the client patterns (41 lines match one of
them; the client patterns only lines that match another too), 51 are plain
access lines (sync, state, federation) and 8 are the records around the KE
lines (the "Adding one_time_keys" before each conflict, the to-device
tracing of synapse.9533_debug, a traceback's lines).

usage: gen_synapse_log.py OUT (--lines N | --bytes N) [--profile sparse|storm]
                          [--seed S] [--crlf] [--garbage] [--tokens]
                          [--event-id ID ...]
"""
import argparse
import datetime as dt
import random
import sys

USER = "@alice:lotus.example"
FRIEND = "@bob:lotus.example"
DEVICE = "RWDSUMBAID"
FRIEND_DEVICE = "FRIENDDEV1"
UA = '"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/138.0 Safari/537.36"'


def ts(t):
    return t.strftime("%Y-%m-%d %H:%M:%S,") + "%03d" % (t.microsecond // 1000)


def access(rng, t, seq, method, path, status, secs, new_format, requester=USER, nbytes=None):
    ru = "ru=(%.3fsec, %.3fsec) db=(%.3fsec/%.3fsec/%d)" if new_format else "(%.3fsec, %.3fsec) (%.3fsec/%.3fsec/%d)"
    ru = ru % (secs / 3, 0.0, 0.0, secs / 2, rng.randint(1, 9))
    nbytes = nbytes if nbytes is not None else rng.randint(2, 4000)
    return (
        "%s - synapse.access.http.8008 - 521 - INFO - %s-%d - 192.0.2.10 - 8008 - {%s} "
        "Processed request: %.3fsec/%.3fsec %s %dB %s \"%s %s HTTP/1.1\" %s [0 dbevts]"
        % (ts(t), method, seq, requester, secs, 0.0, ru, nbytes, status, method, path, UA)
    )


def key(rng):
    return "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") for _ in range(43))


def conflict(rng, t, seq, otk_id, stored, uploaded, new_format):
    """A KE-1 one-time-key conflict as Synapse logs it: the upload's
    "Adding one_time_keys", the SynapseError, the 400 access line."""
    return [
        "%s - synapse.handlers.e2e_keys - 955 - INFO - POST-%d - Adding one_time_keys dict_keys(['signed_curve25519:%s']) for device '%s' for user '%s' at %d"
        % (ts(t), seq, otk_id, DEVICE, USER, int(t.timestamp() * 1000)),
        "%s - synapse.http.server - 131 - INFO - POST-%d - <XForwardedForRequest at 0x7f3a2c1d0e50 method='POST' uri='/_matrix/client/v3/keys/upload' clientproto='HTTP/1.1' site='8008'> SynapseError: 400 - One time key signed_curve25519:%s already exists. Old key: {\"key\":\"%s\",\"signatures\":{\"%s\":{\"ed25519:%s\":\"sig\"}}}; new key: {'key': '%s', 'signatures': {'%s': {'ed25519:%s': 'sig2'}}}"
        % (ts(t), seq, otk_id, stored, USER, DEVICE, uploaded, USER, DEVICE),
        access(rng, t, seq, "POST", "/_matrix/client/v3/keys/upload", 400, rng.uniform(0.003, 0.02), new_format, nbytes=528),
    ]


def delayed_failure(t):
    """Synapse's logger.exception("Failed to send delayed event") with its traceback."""
    return ["%s - synapse.handlers.delayed_events - 522 - ERROR - sentinel - Failed to send delayed event" % ts(t),
            "Traceback (most recent call last):",
            '  File "/opt/venvs/matrix-synapse/lib/python3.11/site-packages/synapse/handlers/delayed_events.py", line 518, in _send_event',
            "    await self._send(event)",
            "synapse.api.errors.SynapseError: 500: delayed_event could not be sent"]


def delay_id(rng):
    return "syd_" + "".join(rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(20))


def plain_access(rng, t, seq, new_format):
    """An access line no KE pattern matches (sync long-polls, room state, profiles)."""
    r = rng.random()
    if r < 0.6:
        path = rng.choice(["/_matrix/client/v3/sync?timeout=30000&since=s1_2", "/_matrix/client/v3/sync"])
        return access(rng, t, seq, "GET", path, 200, rng.uniform(0.01, 30.0), new_format)
    if r < 0.85:
        return access(rng, t, seq, rng.choice(["GET", "PUT"]), "/_matrix/client/v3/rooms/!r:lotus.example/state/m.room.member/x", 200, rng.uniform(0.001, 0.2), new_format, FRIEND)
    return access(rng, t, seq, "GET", "/_matrix/client/v3/profile/%s/displayname" % FRIEND, 200, rng.uniform(0.001, 0.05), new_format)


# The storm: (weight per 100 lines, event). Lines per event and the
# patterns they match (KE-1 / KE-2 / KE-4 / client) are in the comments.
STORM = [
    (4, "conflict"),      # 3 lines: none / KE-1+client / KE-1
    (10, "upload"),       # 1: KE-1 (a key upload that succeeded)
    (10, "to_device"),    # 1.2: KE-2 (+ the 9533 DEBUG trace, none, one in five)
    (3, "call_keys"),     # 1: KE-2+client (call keys sent as a room event)
    (7, "restart"),       # 1: KE-4 (MatrixRTC restarts its delayed leave)
    (1, "delayed_fail"),  # 5: KE-4+client, none, KE-4, none, KE-4
    (51, "access"),       # 1: none
]


def storm_event(rng, t, seq, ctx, new_format):
    kind = rng.choices([k for _, k in STORM], weights=[w for w, _ in STORM])[0]
    if kind == "conflict":
        return conflict(rng, t, seq, ctx["otk_id"], ctx["stored"], ctx["uploaded"], new_format)
    if kind == "upload":
        return [access(rng, t, seq, "POST", "/_matrix/client/v3/keys/upload", 200, rng.uniform(0.003, 0.05), new_format, nbytes=rng.randint(40, 90))]
    if kind == "to_device":
        sender, device = rng.choice([(USER, DEVICE), (FRIEND, FRIEND_DEVICE)])
        out = [access(rng, t, seq, "PUT", "/_matrix/client/v3/sendToDevice/m.room.encrypted/m%d.%d" % (seq, rng.randint(0, 9)), 200, rng.uniform(0.005, 0.05), new_format, sender, 2)]
        if rng.random() < 0.2:
            out.append("%s - synapse.9533_debug - 800 - DEBUG - PUT-%d - Storing to-device messages with stream_id %d: ['%s/%s (msgid m%d)']"
                       % (ts(t), seq, seq * 3, FRIEND if sender == USER else USER, FRIEND_DEVICE if sender == USER else DEVICE, seq))
        return out
    if kind == "call_keys":
        return [access(rng, t, seq, "PUT", "/_matrix/client/v3/rooms/!r:lotus.example/send/io.element.call.encryption_keys/m%d.%d" % (seq, rng.randint(0, 9)), 200, rng.uniform(0.005, 0.08), new_format, rng.choice([USER, FRIEND]), 2)]
    if kind == "restart":
        secs = rng.uniform(0.005, 0.3) if rng.random() < 0.9 else rng.uniform(2.0, 4.5)
        return [access(rng, t, seq, "POST", "/_matrix/client/unstable/org.matrix.msc4140/delayed_events/%s/restart" % delay_id(rng), 200, secs, new_format, rng.choice([USER, FRIEND]), 2)]
    if kind == "delayed_fail":
        return delayed_failure(t)
    return [plain_access(rng, t, seq, new_format)]


def generate(out, lines, nbytes, seed, crlf, garbage, tokens, event_ids, profile="sparse"):
    rng = random.Random(seed)
    t = dt.datetime(2026, 6, 30, 18, 0, 0)
    seq = 1000
    new_format = True
    written = 0
    count = 0
    eol = b"\r\n" if crlf else b"\n"
    otk_id = "AAAAAAAAAFA"
    stored, uploaded = key(rng), key(rng)
    with open(out, "wb") as f:
        while (lines is None or count < lines) and (nbytes is None or written < nbytes):
            # A storm is dense in time too: a few ms between requests.
            t += dt.timedelta(milliseconds=rng.randint(0, 8 if profile == "storm" else 40))
            seq += 1
            r = rng.random()
            if profile == "storm":
                ctx = {"otk_id": otk_id, "stored": stored, "uploaded": uploaded}
                out_lines = storm_event(rng, t, seq, ctx, new_format)
            elif r < 0.30:
                path = rng.choice(["/_matrix/client/v3/sync?timeout=30000&since=s1_2", "/_matrix/client/v3/sync"])
                out_lines = [access(rng, t, seq, "GET", path, 200, rng.uniform(0.01, 30.0), new_format)]
            elif r < 0.40:
                out_lines = [access(rng, t, seq, rng.choice(["GET", "PUT"]), "/_matrix/client/v3/rooms/!r:lotus.example/state/m.room.member/x", 200, rng.uniform(0.001, 0.2), new_format, FRIEND)]
            elif r < 0.44:
                seq2 = seq
                out_lines = [
                    "%s - synapse.handlers.e2e_keys - 955 - INFO - POST-%d - Adding one_time_keys dict_keys(['signed_curve25519:%s']) for device '%s' for user '%s' at %d"
                    % (ts(t), seq2, otk_id, DEVICE, USER, int(t.timestamp() * 1000)),
                    "%s - synapse.http.server - 131 - INFO - POST-%d - <XForwardedForRequest at 0x7f3a2c1d0e50 method='POST' uri='/_matrix/client/v3/keys/upload' clientproto='HTTP/1.1' site='8008'> SynapseError: 400 - One time key signed_curve25519:%s already exists. Old key: {\"key\":\"%s\",\"signatures\":{\"%s\":{\"ed25519:%s\":\"sig\"}}}; new key: {'key': '%s', 'signatures': {'%s': {'ed25519:%s': 'sig2'}}}"
                    % (ts(t), seq2, otk_id, stored, USER, DEVICE, uploaded, USER, DEVICE),
                    access(rng, t, seq2, "POST", "/_matrix/client/v3/keys/upload", 400, rng.uniform(0.003, 0.02), new_format, nbytes=528),
                ]
            elif r < 0.48:
                out_lines = [
                    access(rng, t, seq, "PUT", "/_matrix/client/v3/sendToDevice/m.room.encrypted/m%d.%d" % (seq, rng.randint(0, 9)), 200, rng.uniform(0.005, 0.05), new_format, FRIEND, 2),
                    "%s - synapse.9533_debug - 800 - DEBUG - PUT-%d - Storing to-device messages with stream_id %d: ['%s/%s (msgid m%d)']"
                    % (ts(t), seq, seq * 3, USER, DEVICE, seq),
                ]
            elif r < 0.51:
                secs = rng.uniform(0.005, 0.3) if rng.random() < 0.9 else rng.uniform(2.0, 4.5)
                out_lines = [access(rng, t, seq, "POST", "/_matrix/client/unstable/org.matrix.msc4140/delayed_events/syd_%s/restart" % "".join(rng.choice("abcdefghij") for _ in range(20)), 200, secs, new_format, USER, 2)]
            elif r < 0.515:
                out_lines = ["%s - synapse.handlers.delayed_events - 522 - ERROR - sentinel - Failed to send delayed event" % ts(t),
                             "Traceback (most recent call last):",
                             '  File "/opt/venvs/matrix-synapse/lib/python3.11/site-packages/synapse/handlers/delayed_events.py", line 518, in _send_event',
                             "    await self._send(event)",
                             "synapse.api.errors.SynapseError: 500: delayed_event could not be sent"]
            elif r < 0.53:
                out_lines = ["%s - twisted - 273 - INFO - POST-%d - %s - synapse.handlers.e2e_keys - 955 - INFO - POST-%d - Adding one_time_keys dict_keys(['signed_curve25519:AAAAAAAAAE0']) for device 'OTHERDEV' for user '@carol:lotus.example' at 1782850449989" % (ts(t), seq, ts(t), seq)]
            elif r < 0.54 and event_ids:
                out_lines = ["%s - synapse.handlers.message - 1021 - INFO - PUT-%d - Persisted event %s in room !r:lotus.example" % (ts(t), seq, rng.choice(event_ids))]
            elif r < 0.545:
                new_format = not new_format
                out_lines = ["%s - synapse.storage.background_updates - 300 - INFO - background_updates-0 - No more background updates to do. Unscheduling background update task." % ts(t)]
            else:
                out_lines = [rng.choice([
                    "%s - synapse.federation.transport.server.federation - 108 - INFO - PUT-%d - Received txn %d from matrix.org. (PDUs: 1, EDUs: 0)" % (ts(t), seq, seq),
                    "%s - synapse.handlers.presence - 1150 - INFO - sentinel - Handling presence timeouts" % ts(t),
                    "%s - synapse.util.caches.lrucache - 222 - INFO - LruCache._expire_old_entries-%d - Dropped 0 items from caches" % (ts(t), seq),
                    "%s - synapse.metrics - 439 - INFO - sentinel - Collecting gc 1" % ts(t),
                    "%s - synapse.storage.txn - 812 - DEBUG - GET-%d - [TXN START] {get_e2e_unused_fallback_key_types-%d}" % (ts(t), seq, seq),
                    "%s - synapse.http.matrixfederationclient - 673 - INFO - federation_transaction_transmission_loop-%d - {PUT-O-%d} [matrix.org] Completed request: 200 OK in 0.12 secs, got 11 bytes - PUT matrix-federation://matrix.org/_matrix/federation/v1/send/%d" % (ts(t), seq, seq, seq),
                ])]
            if tokens and rng.random() < 0.01:
                out_lines.append("%s - synapse.http.client - 460 - INFO - GET-%d - Sending request GET https://lotus.example/_matrix/client/v3/account/whoami?access_token=syt_YWxpY2U_PlantedTokenAbc123_0aBcDe" % (ts(t), seq))
            if garbage and rng.random() < 0.002:
                out_lines.append(bytes(rng.randint(0, 255) for _ in range(rng.randint(1, 80))).replace(b"\n", b" ").replace(b"\r", b" "))
            for ln in out_lines:
                if lines is not None and count >= lines:
                    break
                b = ln if isinstance(ln, bytes) else ln.encode()
                f.write(b)
                f.write(eol)
                written += len(b) + len(eol)
                count += 1
    return count, written


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--lines", type=int)
    ap.add_argument("--bytes", type=int)
    ap.add_argument("--profile", choices=["sparse", "storm"], default="sparse")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--crlf", action="store_true")
    ap.add_argument("--garbage", action="store_true")
    ap.add_argument("--tokens", action="store_true")
    ap.add_argument("--event-id", action="append", default=[])
    a = ap.parse_args()
    if a.lines is None and a.bytes is None:
        ap.error("give --lines or --bytes")
    n, b = generate(a.out, a.lines, a.bytes, a.seed, a.crlf, a.garbage, a.tokens, a.event_id, a.profile)
    print("%d lines, %d bytes" % (n, b), file=sys.stderr)


if __name__ == "__main__":
    main()
