#![allow(clippy::unwrap_used)]

use super::*;
use serde_json::json;

const TOKEN: &str = "syt_YWxpY2U_ZmRrSmtRbGZqY2Fnc3dO_0jT0Ab";
const OPAQUE: &str = "mat_OpaqueAccessToken123";
const COOKIE: &str = "session=c00k1e-v4lue";

const HOOKSHOT_BODY: &str = r#"{"errcode":"M_UNKNOWN","error":"One time key signed_curve25519:AAAAAAAAAJ4 already exists. Old key: {\"key\":\"oldKEYbase64\",\"signatures\":{\"@bot:hs\":{\"ed25519:DEV\":\"sig1\"}}}; new key: {'key': 'newKEYbase64', 'signatures': {'@bot:hs': {'ed25519:DEV': 'sig2'}}, 'fallback': False}"}"#;

#[test]
fn otk_conflict_from_a_response_body() {
    let k = parse_otk_conflict(HOOKSHOT_BODY).unwrap();
    assert_eq!(
        (k.algorithm.as_str(), k.key_id.as_str()),
        ("signed_curve25519", "AAAAAAAAAJ4")
    );
    assert_eq!(
        k.old_key,
        Some(json!({"key": "oldKEYbase64", "signatures": {"@bot:hs": {"ed25519:DEV": "sig1"}}}))
    );
    assert_eq!(
        k.new_key,
        Some(
            json!({"key": "newKEYbase64", "signatures": {"@bot:hs": {"ed25519:DEV": "sig2"}}, "fallback": false})
        )
    );
}

#[test]
fn the_conflict_memo_gives_what_parsing_gives_and_shares_repeats() {
    let line = |req: &str, id: &str, new: &str| {
        format!(
            "{req} server: POST /_matrix/client/v3/keys/upload SynapseError: 400 - One time key signed_curve25519:{id} already exists. Old key: {{\"key\":\"a\"}}; new key: {{'key': '{new}'}}"
        )
    };
    let texts = [
        line("POST-1", "AAAAAAAAAFA", "b"),
        line("POST-2", "AAAAAAAAAFA", "b"), // same conflict, another request
        line("POST-3", "AAAAAAAAAFA", "c"), // same id, another new key
        line("POST-4", "AAAAAAAAAJ4", "c"),
        "no conflict here".to_string(),
        line("POST-5", "AAAAAAAAAJ4", "c"),
        HOOKSHOT_BODY.to_string(), // JSON: never memoised by its tail
        HOOKSHOT_BODY.to_string(),
        "One time key already exists".to_string(),
    ];
    let mut memo = ConflictMemo::default();
    let got: Vec<_> = texts.iter().map(|t| memo.parse(t)).collect();
    for (t, g) in texts.iter().zip(&got) {
        assert_eq!(g.as_deref(), parse_otk_conflict(t).as_ref(), "{t}");
    }
    let shared = |a: usize, b: usize| match (&got[a], &got[b]) {
        (Some(x), Some(y)) => Arc::ptr_eq(x, y),
        _ => false,
    };
    assert!(shared(0, 1), "a repeated conflict is parsed once");
    assert!(!shared(1, 2) && !shared(2, 3));
    // Only the last conflict is remembered, across lines without one.
    assert!(shared(3, 5));
    assert!(!shared(6, 7));
}

#[test]
fn otk_conflict_from_a_server_line_and_a_client_message() {
    let line = r#"2026-06-30 14:00:00,000 - synapse.http.server - 131 - INFO - POST-7 - <SynapseRequest at 0x7f method='POST' uri='/_matrix/client/v3/keys/upload' clientproto='HTTP/1.1' site='8008'> SynapseError: 400 - One time key signed_curve25519:AAAAAAAAAFA already exists. Old key: {"key":"a"}; new key: {'key': 'b'}"#;
    let k = parse_otk_conflict(line).unwrap();
    assert_eq!(k.key_id, "AAAAAAAAAFA");
    assert_eq!(
        (k.old_key, k.new_key),
        (Some(json!({"key": "a"})), Some(json!({"key": "b"})))
    );

    let msg = r#"POST /_matrix/client/v3/keys/upload 400 M_UNKNOWN: One time key signed_curve25519:AAAAAAAAAJ4 already exists. Old key: {\"key\":\"a\"}; new key: {'key': 'b'} (rate 3/sec)"#;
    let k = parse_otk_conflict(msg).unwrap();
    assert_eq!(
        (k.old_key, k.new_key),
        (Some(json!({"key": "a"})), Some(json!({"key": "b"})))
    );

    // Cut short: the id is still there, the keys are not.
    let k = parse_otk_conflict(
        "One time key signed_curve25519:AAAB already exists. Old key: {\"key\":",
    )
    .unwrap();
    assert_eq!(
        (k.key_id.as_str(), k.old_key, k.new_key),
        ("AAAB", None, None)
    );
    assert!(parse_otk_conflict("One time key already exists").is_none());
    assert!(parse_otk_conflict("nothing").is_none());
}

/// A Chrome-shaped HAR with `n` filler entries carrying `body` each, plus
/// two keys/upload exchanges (a 400 in plain text, a 200 in base64).
fn har(n: usize, body: &str) -> String {
    let mut entries = Vec::new();
    let headers = json!([
        {"name": "Authorization", "value": format!("Bearer {TOKEN}")},
        {"name": "accept", "value": "application/json"},
        {"value": COOKIE, "name": "cookie"},
        {"name": "X-Trace", "value": "abc"}
    ]);
    for i in 0..n {
        entries.push(json!({
            "startedDateTime": "2026-06-30T14:02:00.000Z",
            "request": {"method": "GET",
                "url": format!("https://matrix.example/_matrix/client/v3/sync?since=s{i}&access_token={OPAQUE}"),
                "headers": headers,
                "queryString": [{"name": "since", "value": format!("s{i}")}, {"name": "access_token", "value": OPAQUE}],
                "cookies": [{"name": "session", "value": "c00k1e-v4lue"}]},
            "response": {"status": 200, "headers": [{"name": "Set-Cookie", "value": COOKIE}],
                "content": {"mimeType": "application/json", "text": body}}
        }));
        if i == n / 2 {
            entries.push(json!({
                "startedDateTime": "2026-06-30T14:02:11.123Z",
                "request": {"method": "POST", "url": "https://matrix.example/_matrix/client/v3/keys/upload",
                    "headers": headers,
                    "postData": {"mimeType": "application/json", "text": json!({
                        "one_time_keys": {
                            "signed_curve25519:AAAAAAAAAJ4": {"key": "newKEYbase64", "signatures": {}},
                            "signed_curve25519:AAAAAAAAAJ5": {"key": "other", "signatures": {}}
                        }}).to_string()}},
                "response": {"status": 400, "content": {"mimeType": "application/json", "text": HOOKSHOT_BODY}}
            }));
            entries.push(json!({
                "startedDateTime": "2026-06-30T14:02:12Z",
                "request": {"method": "POST", "url": "https://matrix.example/_matrix/client/v3/keys/upload",
                    "postData": {"text": "{\"device_keys\": {}}"}},
                "response": {"status": 200, "content": {"encoding": "base64",
                    "text": base64::engine::general_purpose::STANDARD.encode(r#"{"one_time_key_counts":{"signed_curve25519":50}}"#)}}
            }));
        }
    }
    serde_json::to_string_pretty(
        &json!({"log": {"version": "1.2", "creator": {"name": "WebInspector"},
        "pages": [], "entries": entries}}),
    )
    .unwrap()
}

#[test]
fn scan_finds_keys_upload_exchanges_in_a_multi_megabyte_har() {
    let text = har(400, &"x".repeat(10_000));
    assert!(text.len() > 4 << 20);
    let s = scan_har(text.as_bytes()).unwrap();
    assert_eq!(s.entries, 402);
    assert_eq!(s.keys_upload.len(), 2);
    let x = &s.keys_upload[0];
    assert_eq!((x.entry_index, x.status), (201, 400));
    assert!(x.url.ends_with("/keys/upload"));
    assert_eq!(
        x.started.unwrap().to_rfc3339(),
        "2026-06-30T14:02:11.123+00:00"
    );
    assert_eq!(x.request_keys.len(), 2);
    assert_eq!(x.request_keys[0].0, "signed_curve25519:AAAAAAAAAJ4");
    let off = x.offending.as_ref().unwrap();
    assert_eq!(off.key_id, "AAAAAAAAAJ4");
    // The smoking gun: the request's key for that id is the server's "new key".
    assert_eq!(
        off.new_key.as_ref().unwrap()["key"],
        x.request_keys[0].1["key"]
    );
    let y = &s.keys_upload[1];
    assert_eq!(y.status, 200);
    assert_eq!(
        y.response_body.as_deref(),
        Some(r#"{"one_time_key_counts":{"signed_curve25519":50}}"#)
    );
    assert!(y.request_keys.is_empty() && y.offending.is_none());
}

#[test]
fn truncated_har_is_an_error_but_keeps_what_came_before() {
    let text = har(50, "body");
    let cut = &text.as_bytes()[..text.len() * 3 / 4];
    assert!(matches!(scan_har(cut), Err(HarError::Json(_))));
    let (s, e) = scan_har_partial(cut);
    assert!(e.is_some());
    assert_eq!(s.keys_upload.len(), 2);
    assert!(matches!(scan_har(&b"not json"[..]), Err(HarError::Json(_))));
    assert_eq!(scan_har(&b"{}"[..]).unwrap(), HarSummary::default());
}

#[test]
fn redacted_copy_keeps_the_json_and_drops_every_credential() {
    let text = har(
        300,
        &format!(
            "{{\"access_token\": \"{OPAQUE}\", \"pad\": \"{}\"}}",
            "y".repeat(5_000)
        ),
    );
    let mut out = Vec::new();
    let n = redact_har(text.as_bytes(), &mut out, &Redactor::new()).unwrap();
    let out = String::from_utf8(out).unwrap();
    for secret in [TOKEN, OPAQUE, "c00k1e-v4lue"] {
        assert!(!out.contains(secret), "{secret} survived");
    }
    assert_eq!(out.lines().count(), text.lines().count());
    let v: Value = serde_json::from_str(&out).unwrap();
    let first = &v["log"]["entries"][0];
    assert_eq!(first["request"]["headers"][0]["value"], "<redacted>");
    assert_eq!(first["request"]["headers"][2]["value"], "<redacted>");
    assert_eq!(first["request"]["headers"][3]["value"], "abc");
    assert_eq!(first["request"]["queryString"][0]["value"], "s0");
    assert_eq!(first["request"]["queryString"][1]["value"], "<redacted>");
    assert_eq!(first["response"]["headers"][0]["value"], "<redacted>");
    // The evidence survives.
    let s = scan_har(out.as_bytes()).unwrap();
    assert_eq!(
        s.keys_upload[0].offending.as_ref().unwrap().key_id,
        "AAAAAAAAAJ4"
    );
    // Per filler entry: Authorization, Cookie, URL token, query token, cookie,
    // Set-Cookie, body token; the two uploads carry the two headers once.
    assert_eq!(n.total(), 300 * 7 + 2);
    // Redacting again finds nothing.
    let mut again = Vec::new();
    assert_eq!(
        redact_har(out.as_bytes(), &mut again, &Redactor::new())
            .unwrap()
            .total(),
        0
    );
    assert_eq!(again, out.as_bytes());
}

#[test]
fn truncated_or_garbage_har_is_copied_with_text_redaction() {
    let text = har(20, "body");
    // Cut inside the Cookie header value of some entry.
    let at = text.match_indices(COOKIE).nth(7).unwrap().0 + 10;
    let cut = &text[..at];
    let mut out = Vec::new();
    let n = redact_har(cut.as_bytes(), &mut out, &Redactor::new()).unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(n.total() > 0);
    assert!(!out.contains(TOKEN) && !out.contains(OPAQUE) && !out.contains(&COOKIE[..10]));
    assert_eq!(out.lines().count(), cut.lines().count());

    let garbage = format!(
        "]]]\n{{\"headers\": [{{\"name\": \"Authorization\", \"value\": \"Bearer {TOKEN}\"}}\n\u{1}\u{2}"
    );
    let mut out = Vec::new();
    redact_har(garbage.as_bytes(), &mut out, &Redactor::new()).unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(!out.contains(TOKEN));
    assert_eq!(out.lines().count(), garbage.lines().count());
}

#[test]
fn redaction_does_not_depend_on_how_the_input_is_chunked() {
    struct Trickle<'a>(&'a [u8], usize);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.1.min(buf.len()).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    let text = har(5, "body with Bearer abc.def");
    let mut whole = Vec::new();
    let n = redact_har(text.as_bytes(), &mut whole, &Redactor::new()).unwrap();
    for step in [1, 2, 5, 13] {
        let mut out = Vec::new();
        let m = redact_har(Trickle(text.as_bytes(), step), &mut out, &Redactor::new()).unwrap();
        assert_eq!((&m, &out), (&n, &whole), "step {step}");
    }
}

/// Every key path of a JSON value (array indexes included), in order.
fn shape(v: &Value, at: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                let p = format!("{at}.{k}");
                out.push(p.clone());
                shape(x, &p, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                shape(x, &format!("{at}[{i}]"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_carrier_of_a_har_is_redacted_and_the_har_keeps_its_entries_and_keys() {
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJAYWxpY2U6aHMiLCJ2aWRlbyI6e319.c2lnbmF0dXJlLWJ5dGVz";
    let secrets = [
        "hunter2",
        "c5rfVal",
        "L0ginT0ken",
        "AuthC0de",
        "S3ssionCookie",
        "0paqueBearer",
        "XAccessTok",
        "deepSecret",
        "Ws0paque",
        jwt,
    ];
    let entries = json!([
        {"startedDateTime": "2026-06-30T18:00:00Z",
         "request": {"method": "POST", "url": "https://auth.lotus.example/login?next=%2F",
            "headers": [
                {"name": "Cookie", "value": "mas-session=S3ssionCookie"},
                {"name": "Referer", "value": "https://app.lotus.example/?loginToken=L0ginT0ken&x=1"},
                {"name": "X-Access-Token", "value": "XAccessTok"}],
            "cookies": [{"name": "mas-session", "value": "S3ssionCookie"}],
            "queryString": [{"name": "next", "value": "/"}],
            "postData": {"mimeType": "application/x-www-form-urlencoded",
                "text": "csrf=c5rfVal&username=alice&password=hunter2",
                "params": [{"name": "csrf", "value": "c5rfVal"}, {"name": "password", "value": "hunter2"}]}},
         "response": {"status": 302, "redirectURL": "https://app.lotus.example/cb?code=AuthC0de&state=s1",
            "headers": [{"name": "Location", "value": "https://app.lotus.example/cb?code=AuthC0de&state=s1"},
                        {"name": "Set-Cookie", "value": "mas-session=S3ssionCookie; HttpOnly"}],
            "content": {"mimeType": "text/html", "text": ""}}},
        {"startedDateTime": "2026-06-30T18:00:01Z",
         "request": {"method": "GET", "url": "https://app.lotus.example/?loginToken=L0ginT0ken",
            "headers": [{"name": "authorization", "value": "Bearer 0paqueBearer"}],
            "queryString": [{"name": "loginToken", "value": "L0ginT0ken"}]},
         "response": {"status": 200, "headers": [],
            "content": {"mimeType": "application/json", "encoding": "base64",
                "text": base64::engine::general_purpose::STANDARD.encode(
                    json!({"url": "wss://sfu.lotus.example", "jwt": jwt, "deep": [{"x": {"secret": "deepSecret"}}]}).to_string())}},
         "_webSocketMessages": [
            {"type": "send", "time": 1.0, "opcode": 1, "data": "{\"access_token\": \"Ws0paque\"}"},
            {"type": "receive", "time": 1.1, "opcode": 2, "data": "AAEC/w=="}]},
        {"startedDateTime": "2026-06-30T18:00:02Z",
         "request": {"method": "POST", "url": "https://matrix.lotus.example/_matrix/client/v3/keys/upload",
            "postData": {"mimeType": "application/json", "text": json!({"one_time_keys": {
                "signed_curve25519:AAAAAAAAAJ4": {"key": "newKEY+base64/pub", "signatures": {"@alice:lotus.example": {"ed25519:RWDSUMBAID": "sig"}}}}}).to_string()}},
         "response": {"status": 400, "content": {"mimeType": "application/json", "text": HOOKSHOT_BODY}}}
    ]);
    let text =
        serde_json::to_string_pretty(&json!({"log": {"version": "1.2", "entries": entries}}))
            .unwrap();
    let mut out = Vec::new();
    let n = redact_har(text.as_bytes(), &mut out, &Redactor::new()).unwrap();
    let out = String::from_utf8(out).unwrap();
    let v: Value = serde_json::from_str(&out).unwrap();
    let flat = out.clone()
        + &base64::engine::general_purpose::STANDARD
            .decode(
                v["log"]["entries"][1]["response"]["content"]["text"]
                    .as_str()
                    .unwrap(),
            )
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
    for s in secrets {
        assert!(!flat.contains(s), "{s} survived in {flat}");
    }
    // Same entries, same keys, in the same order.
    let (mut before, mut after) = (Vec::new(), Vec::new());
    shape(
        &serde_json::from_str::<Value>(&text).unwrap(),
        "",
        &mut before,
    );
    shape(&v, "", &mut after);
    assert_eq!(before, after);
    // The evidence survives: the keys/upload exchange still parses.
    let s = scan_har(out.as_bytes()).unwrap();
    assert_eq!(
        s.keys_upload[0].request_keys[0].0,
        "signed_curve25519:AAAAAAAAAJ4"
    );
    assert_eq!(
        s.keys_upload[0].offending.as_ref().unwrap().key_id,
        "AAAAAAAAAJ4"
    );
    assert!(out.contains("newKEY+base64/pub"));
    assert!(out.contains("state=s1") && out.contains("username=alice"));
    // Cookie and Set-Cookie headers and the cookies[] entry.
    assert_eq!(n.get(crate::domain::redact::Rule::Cookie), 3, "{n:?}");
    assert_eq!(n.get(crate::domain::redact::Rule::Body), 1);
}
