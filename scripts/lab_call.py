#!/usr/bin/env python3
"""The lab's call driver: two clients (alice, whose device is under
investigation, and her friend bob) use a real Synapse's client-server API the
way matrix-js-sdk and Element Call do, and produce the runbook's fault chain
for real:

  KE-1  alice keeps re-uploading one of its one-time keys with a
        different key (Synapse: 400 "One time key … already exists");
  KE-2  bob sends m.room.encrypted to-device messages (the call's media keys)
        to alice's device, which never syncs, so device_inbox grows;
  KE-3  bob sends an m.room.encrypted room event without `algorithm`;
  KE-4  alice keeps her delayed call-membership alive with MSC4140 restarts
        and a 2 s client timeout, while the homeserver is made slow for real:
        a PostgreSQL lock on delayed_events held for a few seconds (lock), and
        Synapse stopped with SIGSTOP for a few seconds (stall).

Like a browser, it writes alice's client artefacts into the downloads folder:
a lotus-crypto-diag-<ms>.json report built from the real responses and a HAR
of the keys/upload exchanges (with the real access token), each downloaded
under a temporary name and then renamed. A summary (tokens, counts, ids) goes
to <lab>/call-result.json for tests.

Runs with the lab's Synapse virtualenv python (it uses signedjson and PyNaCl
to make real device keys).

usage: lab_call.py --lab LAB/lab.json [--ke4 lock|stall|both] [--seconds N]
       lab_call.py --lab LAB/lab.json --keys
       lab_call.py --lab LAB/lab.json --stall-under-load SECONDS

--stall-under-load stops Synapse (SIGSTOP) for SECONDS while alice restarts
her delayed membership and uploads one-time keys from four connections, each
back to back from half a second before the stop until it ends (once a second
otherwise): the requests Synapse had read when it stopped wait the whole
stop, so its own latency histogram shows the stall, as a real stall under
load shows in Grafana. The client's restart timeouts go into a diag report.

--keys only makes the requests the runbook's DEBUG loggers log on: alice
uploads a fresh one-time key (/keys/upload) and asks for her and bob's
device keys (/keys/query); it prints the request ids Synapse gave them.
"""
import argparse
import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

from nacl.public import PrivateKey
from signedjson.key import generate_signing_key, get_verify_key
from signedjson.sign import sign_json

RESTART_TIMEOUT_S = 2.0
RESTART_EVERY_S = 1.0
MEMBERSHIP = "org.matrix.msc3401.call.member"


def b64(raw):
    return base64.b64encode(raw).decode().rstrip("=")


def now_ms():
    return int(time.time() * 1000)


def iso(ms):
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).isoformat().replace("+00:00", "Z")


class Timeout(Exception):
    pass


class Client:
    """One Matrix client: an access token, a device, and a record of its
    keys/upload exchanges for the HAR."""

    def __init__(self, base, user_id, device_id):
        self.base = base
        self.user_id = user_id
        self.device_id = device_id
        self.token = None
        self.har = []
        self.lock = threading.Lock()
        self.txn = 0

    def request(self, method, path, body=None, timeout=30.0, record=False):
        url = self.base + path
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        started = now_ms()
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                status, text = r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read().decode()
        except (socket.timeout, TimeoutError) as e:
            raise Timeout(str(e))
        except urllib.error.URLError as e:
            if isinstance(e.reason, (socket.timeout, TimeoutError)):
                raise Timeout(str(e.reason))
            raise
        took = now_ms() - started
        if record:
            with self.lock:
                self.har.append(har_entry(method, url, headers, data, status, text, started, took))
        try:
            payload = json.loads(text) if text else {}
        except ValueError:
            payload = {"raw": text}
        return status, payload

    def ok(self, method, path, body=None, **kw):
        status, payload = self.request(method, path, body, **kw)
        if status != 200:
            raise SystemExit("%s %s: %d %s" % (method, path, status, payload))
        return payload

    def next_txn(self):
        self.txn += 1
        return "lab%d.%d" % (now_ms(), self.txn)


def har_entry(method, url, headers, data, status, text, started, took):
    return {
        "startedDateTime": iso(started),
        "time": took,
        "request": {
            "method": method, "url": url, "httpVersion": "HTTP/1.1",
            "headers": [{"name": k, "value": v} for k, v in headers.items()],
            "queryString": [], "cookies": [], "headersSize": -1,
            "bodySize": len(data or b""),
            "postData": {"mimeType": "application/json", "text": (data or b"").decode()},
        },
        "response": {
            "status": status, "statusText": "", "httpVersion": "HTTP/1.1",
            "headers": [{"name": "Content-Type", "value": "application/json"}], "cookies": [],
            "content": {"size": len(text), "mimeType": "application/json", "text": text},
            "redirectURL": "", "headersSize": -1, "bodySize": len(text),
        },
        "cache": {}, "timings": {"send": 0, "wait": took, "receive": 0},
    }


def register(base, secret, localpart, password):
    """Shared-secret registration (Synapse's admin API)."""
    with urllib.request.urlopen(base + "/_synapse/admin/v1/register", timeout=30) as r:
        nonce = json.loads(r.read())["nonce"]
    mac = hmac.new(secret.encode(), digestmod=hashlib.sha1)
    for part in (nonce, localpart, password, "notadmin"):
        mac.update(part.encode())
        if part != "notadmin":
            mac.update(b"\x00")
    body = json.dumps({"nonce": nonce, "username": localpart, "password": password, "admin": False,
                       "mac": mac.hexdigest()}).encode()
    req = urllib.request.Request(base + "/_synapse/admin/v1/register", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        urllib.request.urlopen(req, timeout=30).read()
    except urllib.error.HTTPError as e:
        if e.code != 400 or b"User ID already taken" not in e.read():
            raise


class Device:
    """A device's identity keys, made the way an Olm account makes them."""

    def __init__(self, client):
        self.c = client
        self.signing = generate_signing_key(client.device_id)
        self.curve = PrivateKey.generate()

    def device_keys(self):
        keys = {
            "user_id": self.c.user_id, "device_id": self.c.device_id,
            "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
            "keys": {
                "curve25519:" + self.c.device_id: b64(bytes(self.curve.public_key)),
                "ed25519:" + self.c.device_id: b64(get_verify_key(self.signing).encode()),
            },
        }
        return sign_json(keys, self.c.user_id, self.signing)

    def one_time_key(self):
        return sign_json({"key": b64(bytes(PrivateKey.generate().public_key))}, self.c.user_id, self.signing)

    def fallback_key(self):
        key = b64(bytes(PrivateKey.generate().public_key))
        return sign_json({"key": key, "fallback": True}, self.c.user_id, self.signing)


def login(base, secret, localpart, device_id, server_name):
    password = "lab-" + localpart + "-pw"
    register(base, secret, localpart, password)
    c = Client(base, "@%s:%s" % (localpart, server_name), device_id)
    r = c.ok("POST", "/_matrix/client/v3/login", {
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": localpart},
        "password": password, "device_id": device_id, "initial_device_display_name": "callcap lab " + localpart})
    c.token = r["access_token"]
    return c


class Call:
    def __init__(self, lab, ke4, seconds):
        self.lab = lab
        self.ke4 = ke4
        self.seconds = seconds
        self.entries = []
        self.entries_lock = threading.Lock()
        self.stop = threading.Event()
        self.result = {"ke1_conflicts": 0, "to_device_sent": 0, "restarts": 0,
                       "restart_timeouts": 0, "restart_timeout_at": [], "lock": None, "stall": None}

    def entry(self, level, ke, signature, message, ts=None):
        with self.entries_lock:
            self.entries.append({"ts": ts or now_ms(), "level": level, "ke": ke, "signature": signature,
                                 "message": message})

    # -- set-up ----------------------------------------------------------------
    def setup(self):
        lab = self.lab
        s = lab["synapse"]
        self.alice = login(s["base_url"], s["shared_secret"], "alice", lab["users"]["alice"]["device_id"], s["server_name"])
        self.bob = login(s["base_url"], s["shared_secret"], "bob", lab["users"]["bob"]["device_id"], s["server_name"])
        self.alice_dev = Device(self.alice)
        self.bob_dev = Device(self.bob)
        # Device keys, five one-time keys and a fallback key each, as the
        # SDK uploads them after login.
        # Key ids are fresh for every call, so the driver can run again on
        # the same homeserver.
        prefix = b64(os.urandom(6))[:5].replace("+", "A").replace("/", "B")
        self.conflict_id = prefix + "Q"
        self.result["conflict_key_id"] = self.conflict_id
        for c, d in ((self.alice, self.alice_dev), (self.bob, self.bob_dev)):
            otks = {"signed_curve25519:%s%s" % (prefix, ch): d.one_time_key() for ch in "QRSTU"}
            c.ok("POST", "/_matrix/client/v3/keys/upload", {
                "device_keys": d.device_keys(), "one_time_keys": otks,
                "fallback_keys": {"signed_curve25519:%sA" % prefix: d.fallback_key()}}, record=c is self.alice)
        room = self.bob.ok("POST", "/_matrix/client/v3/createRoom", {
            "preset": "private_chat", "name": "callcap lab call", "invite": [self.alice.user_id],
            # As Element Call's rooms do: anyone may publish call membership.
            "power_level_content_override": {"events": {MEMBERSHIP: 0}}})["room_id"]
        self.alice.ok("POST", "/_matrix/client/v3/join/" + urllib.request.quote(room))
        self.room = room
        q = urllib.request.quote
        state_key = "_%s_%s_m.call" % (self.alice.user_id, self.alice.device_id)
        # MatrixRTC: the leave event is scheduled with a delay and the
        # membership is kept alive by restarting that delay.
        r = self.alice.ok("PUT", "/_matrix/client/v3/rooms/%s/state/%s/%s?org.matrix.msc4140.delay=60000" % (
            q(room), MEMBERSHIP, q(state_key)), {})
        self.delay_id = r["delay_id"]
        self.alice.ok("PUT", "/_matrix/client/v3/rooms/%s/state/%s/%s" % (q(room), MEMBERSHIP, q(state_key)), {
            "application": "m.call", "call_id": "", "scope": "m.room", "device_id": self.alice.device_id,
            "focus_active": {"type": "livekit", "focus_selection": "oldest_membership"},
            "foci_preferred": [{"type": "livekit", "livekit_service_url": "https://livekit.lab.callcap.test"}]})
        self.result.update({"room_id": room, "delay_id": self.delay_id})

    # -- KE-1 ------------------------------------------------------------------
    def ke1(self):
        """The client lost track of one key and keeps uploading a new key under
        the same id."""
        while not self.stop.wait(1.0):
            key = self.alice_dev.one_time_key()
            try:
                status, body = self.alice.request("POST", "/_matrix/client/v3/keys/upload", {
                    "one_time_keys": {"signed_curve25519:" + self.conflict_id: key}}, record=True)
            except Timeout:
                continue
            if status == 400 and "already exists" in body.get("error", ""):
                self.result["ke1_conflicts"] += 1
                msg = "POST /_matrix/client/v3/keys/upload %d %s: %s" % (status, body.get("errcode"), body["error"])
                self.entry("error", "KE-1", "already exists", msg)

    # -- KE-2 and KE-3 ---------------------------------------------------------
    def bob_sends(self):
        q = urllib.request.quote
        sent_ke3 = False
        n = 0
        start = time.time()
        while not self.stop.wait(1.0):
            n += 1
            # The call's media key, Olm-encrypted for alice's device.
            msg = {"algorithm": "m.olm.v1.curve25519-aes-sha2", "sender_key": b64(bytes(self.bob_dev.curve.public_key)),
                   "ciphertext": {b64(bytes(PrivateKey.generate().public_key)): {"type": 0, "body": b64(os.urandom(96))}},
                   "org.matrix.msgid": "lab-%d" % n}
            try:
                self.bob.ok("PUT", "/_matrix/client/v3/sendToDevice/m.room.encrypted/" + self.bob.next_txn(),
                            {"messages": {self.alice.user_id: {self.alice.device_id: msg}}})
                self.result["to_device_sent"] += 1
            except Timeout:
                continue
            if n % 3 == 0:
                # alice never receives them: her device does not sync, so
                # Element Call cannot decrypt bob's media.
                self.entry("error", "KE-2", "MissingKey", "MissingKey: missing key at index %d for participant %s:%s" % (
                    n // 3 - 1, self.bob.user_id, self.bob.device_id))
            if not sent_ke3 and time.time() - start > 4:
                sent_ke3 = True
                content = {"ciphertext": b64(os.urandom(120)), "sender_key": b64(bytes(self.bob_dev.curve.public_key)),
                           "device_id": self.bob.device_id, "session_id": b64(os.urandom(32))}
                r = self.bob.ok("PUT", "/_matrix/client/v3/rooms/%s/send/m.room.encrypted/%s" % (
                    q(self.room), self.bob.next_txn()), content)
                ev = self.alice.ok("GET", "/_matrix/client/v3/rooms/%s/event/%s" % (q(self.room), q(r["event_id"])))
                self.result["ke3_event_id"] = ev["event_id"]
                if "algorithm" not in ev.get("content", {}):
                    self.entry("warn", "KE-3", "DecryptionError",
                               "Error decrypting event (id=%s type=%s sender=%s room=%s ts=%d): DecryptionError[msg: "
                               "missing field `algorithm`, sender_key: undefined, session_id: undefined]" % (
                                   ev["event_id"], ev["type"], ev["sender"], self.room, ev["origin_server_ts"]))

    # -- KE-4 ------------------------------------------------------------------
    def restarts(self):
        path = "/_matrix/client/unstable/org.matrix.msc4140/delayed_events/%s/restart" % self.delay_id
        retry = 0
        while not self.stop.is_set():
            try:
                status, body = self.alice.request("POST", path, {}, timeout=RESTART_TIMEOUT_S)
                self.result["restarts"] += 1
                retry = 0
                if status != 200:
                    self.entry("warn", "KE-4", "delayed event", "[MembershipManager] restart delayed event failed: %d %s" % (status, body))
            except Timeout:
                retry += 1
                self.result["restart_timeouts"] += 1
                at = now_ms()
                self.result["restart_timeout_at"].append(at)
                self.entry("warn", "KE-4", "delayed event",
                           "[MatrixRTCSession %s m.call#] [MembershipManager] Network local timeout error while sending "
                           "event, immediate retry ((%d/10)) AbortError: Restart delayed event timed out before the HS "
                           "responded" % (self.room, retry), ts=at)
                continue  # immediate retry
            self.stop.wait(RESTART_EVERY_S)

    def hold_lock(self, at_s, hold_s):
        """Makes the database slow for real: an EXCLUSIVE lock on
        delayed_events blocks every restart (an UPDATE) until released."""
        if self.stop.wait(at_s):
            return
        pg = self.lab["postgres"]
        t0 = now_ms()
        subprocess.run(["psql", "-X", "-q", "-h", "127.0.0.1", "-p", str(pg["port"]), "-U", pg["user"], "-d", pg["database"],
                        "-c", "BEGIN; LOCK TABLE delayed_events IN EXCLUSIVE MODE; SELECT pg_sleep(%s); COMMIT;" % hold_s],
                       capture_output=True, check=True)
        self.result["lock"] = {"from": iso(t0), "to": iso(now_ms())}

    def stall(self, at_s, hold_s):
        """Stops Synapse's process: it reads nothing, logs nothing."""
        if self.stop.wait(at_s):
            return
        pid = self.lab["synapse"]["pid"]
        t0 = now_ms()
        os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(hold_s)
        finally:
            os.kill(pid, signal.SIGCONT)
        self.result["stall"] = {"from": iso(t0), "to": iso(now_ms())}

    def uploads(self, burst):
        """One-time keys from one connection: once a second, back to back
        while `burst` is set."""
        while not self.stop.is_set():
            try:
                self.alice.request("POST", "/_matrix/client/v3/keys/upload", {
                    "one_time_keys": {"signed_curve25519:U" + b64(os.urandom(6)).replace("+", "A").replace("/", "B"):
                                      self.alice_dev.one_time_key()}}, timeout=30.0)
                self.result["uploads"] = self.result.get("uploads", 0) + 1
            except Timeout:
                pass
            if not burst.is_set():
                burst.wait(1.0)  # wakes at once when the burst starts

    def stall_under_load(self, hold_s):
        self.setup()
        self.result["call_started"] = iso(now_ms())
        burst = threading.Event()
        threads = [threading.Thread(target=self.restarts, daemon=True)]
        threads += [threading.Thread(target=self.uploads, args=(burst,), daemon=True) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(2.0)
        burst.set()
        time.sleep(1.0)
        pid = self.lab["synapse"]["pid"]
        t0 = now_ms()
        os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(hold_s)
        finally:
            os.kill(pid, signal.SIGCONT)
        burst.clear()
        self.result["stall"] = {"from": iso(t0), "to": iso(now_ms())}
        time.sleep(3)
        self.stop.set()
        for t in threads:
            t.join(timeout=35)
        self.result["call_ended"] = iso(now_ms())
        self.write_artefacts()
        return self.result

    def run(self):
        self.setup()
        self.result["call_started"] = iso(now_ms())
        threads = [threading.Thread(target=f, daemon=True) for f in (self.ke1, self.bob_sends, self.restarts)]
        slow = []
        if self.ke4 in ("lock", "both"):
            slow.append(threading.Thread(target=self.hold_lock, args=(8, 5), daemon=True))
        if self.ke4 in ("stall", "both"):
            slow.append(threading.Thread(target=self.stall, args=(20 if self.ke4 == "both" else 8, 5), daemon=True))
        for t in threads + slow:
            t.start()
        for t in slow:
            t.join()
        # A few healthy restarts after the slow phases, then hang up.
        time.sleep(4 + self.seconds)
        self.stop.set()
        for t in threads:
            t.join(timeout=35)
        self.result["call_ended"] = iso(now_ms())
        self.write_artefacts()
        return self.result

    # -- what the browser downloads -----------------------------------------
    def write_artefacts(self):
        downloads = self.lab["downloads"]
        entries = sorted(self.entries, key=lambda e: e["ts"])
        counts = {}
        for e in entries:
            counts[e["ke"]] = counts.get(e["ke"], 0) + 1
        diag = {"sdkVersion": "41.6.0", "deviceId": self.alice.device_id, "userId": self.alice.user_id,
                "syncState": "SYNCING", "cryptoReady": True, "counts": counts, "entries": entries}
        name = "lotus-crypto-diag-%d.json" % now_ms()
        download(os.path.join(downloads, name), json.dumps(diag, indent=2).encode())
        har = {"log": {"version": "1.2", "creator": {"name": "WebInspector", "version": "537.36"}, "pages": [],
                       "entries": self.alice.har}}
        download(os.path.join(downloads, "127.0.0.1.har"), json.dumps(har, indent=2).encode())
        self.result.update({"diag": name, "har": "127.0.0.1.har", "entries": len(entries), "counts": counts,
                            "tokens": [self.alice.token, self.bob.token]})


def download(path, data):
    """As a browser does: write under a temporary name, then rename."""
    part = path + ".crdownload"
    with open(part, "wb") as f:
        half = len(data) // 2
        f.write(data[:half])
        f.flush()
        time.sleep(0.3)
        f.write(data[half:])
    os.rename(part, path)


def keys_only(lab):
    """One /keys/upload and one /keys/query by alice."""
    s = lab["synapse"]
    alice = login(s["base_url"], s["shared_secret"], "alice", lab["users"]["alice"]["device_id"], s["server_name"])
    dev = Device(alice)
    key_id = "signed_curve25519:K" + b64(os.urandom(6)).replace("+", "A").replace("/", "B")
    alice.ok("POST", "/_matrix/client/v3/keys/upload", {"one_time_keys": {key_id: dev.one_time_key()}})
    alice.ok("POST", "/_matrix/client/v3/keys/query",
             {"device_keys": {alice.user_id: [], "@bob:" + s["server_name"]: []}})
    print("keys: uploaded %s and queried device keys" % key_id, flush=True)


def main():
    ap = argparse.ArgumentParser(description="Drive a call with the runbook's fault chain on the lab's Synapse.")
    ap.add_argument("--lab", required=True, help="the lab.json scripts/lab wrote")
    ap.add_argument("--ke4", choices=["lock", "stall", "both"], default="both")
    ap.add_argument("--seconds", type=float, default=0, help="keep the call going this long after the slow phases")
    ap.add_argument("--keys", action="store_true", help="only a /keys/upload and a /keys/query")
    ap.add_argument("--stall-under-load", type=float, metavar="SECONDS",
                    help="only stop Synapse for SECONDS while alice uploads keys and restarts her delayed event")
    args = ap.parse_args()
    with open(args.lab) as f:
        lab = json.load(f)
    if args.keys:
        keys_only(lab)
        return
    if args.stall_under_load:
        call = Call(lab, "stall", 0)
        result = call.stall_under_load(args.stall_under_load)
        with open(os.path.join(lab["root"], "call-result.json"), "w") as f:
            json.dump(result, f, indent=2)
        print("stall: Synapse stopped %s to %s; %d uploads, %d restarts, %d restart timeouts"
              % (result["stall"]["from"], result["stall"]["to"], result.get("uploads", 0), result["restarts"],
                 result["restart_timeouts"]), flush=True)
        return
    call = Call(lab, args.ke4, args.seconds)
    print("call: two clients join, the fault chain runs (about %d s)" % (30 if args.ke4 == "both" else 18), flush=True)
    result = call.run()
    out = os.path.join(lab["root"], "call-result.json")
    with open(out, "w") as f:
        json.dump(result, f, indent=2)
    print("call: %d KE-1 conflicts, %d to-device messages, KE-3 event %s, %d restarts, %d restart timeouts; wrote %s and %s"
          % (result["ke1_conflicts"], result["to_device_sent"], result.get("ke3_event_id"), result["restarts"],
             result["restart_timeouts"], result["diag"], result["har"]), flush=True)


if __name__ == "__main__":
    main()
