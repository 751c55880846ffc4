#![allow(clippy::unwrap_used)]

use super::*;
use crate::domain::signatures::Signatures;

fn matcher() -> Matcher {
    Matcher::new(&Signatures::embedded(), &[]).unwrap()
}

fn parse(json: &str) -> Result<DiagReport, DiagError> {
    parse_diag(json.as_bytes(), &matcher())
}

const CAMEL: &str = r#"{
  "sdkVersion": "41.6.0-rc.0",
  "deviceId": "RWDSUMBAID",
  "userId": "@alice:matrix.lotusguild.org",
  "syncState": "SYNCING",
  "cryptoReady": true,
  "counts": {"KE-1": 12, "KE-2": 3, "KE-3": 1, "KE-4": 0},
  "generatedAt": "2026-06-30T14:05:00Z",
  "entries": [
    {"ts": 1782828131123, "level": "error", "ke": "KE-1", "signature": "already exists",
     "message": "POST /_matrix/client/v3/keys/upload 400 M_UNKNOWN: One time key signed_curve25519:AAAAAAAAAJ4 already exists."},
    {"ts": "2026-06-30T14:02:12.500Z", "level": "warn", "ke": "ke3",
     "message": "Error decrypting event (id=$SASBBzoqjAbC:matrix.lotusguild.org type=m.room.encrypted sender=@bob:hs room=!r:hs ts=1): DecryptionError[msg: missing field `algorithm` at line 1 column 138, session: undefined|undefined]",
     "tab": 2}
  ]
}"#;

#[test]
fn camel_case_report_parses_with_unknown_fields_kept() {
    let r = parse(CAMEL).unwrap();
    assert_eq!(r.sdk_version.as_deref(), Some("41.6.0-rc.0"));
    assert_eq!(r.device_id.as_deref(), Some("RWDSUMBAID"));
    assert_eq!(r.user_id.as_deref(), Some("@alice:matrix.lotusguild.org"));
    assert_eq!(r.sync_state.as_deref(), Some("SYNCING"));
    assert_eq!(r.crypto_ready, Some(true));
    assert_eq!(
        r.counts,
        vec![(Ke::Ke1, 12), (Ke::Ke2, 3), (Ke::Ke3, 1), (Ke::Ke4, 0)]
    );
    assert_eq!(
        r.extra.get("generatedAt").and_then(Value::as_str),
        Some("2026-06-30T14:05:00Z")
    );
    assert_eq!(r.entries.len(), 2);
    let e = &r.entries[0];
    assert_eq!(e.ts.unwrap().to_rfc3339(), "2026-06-30T14:02:11.123+00:00");
    assert_eq!((e.ke, e.ke_derived), (Some(Ke::Ke1), false));
    assert_eq!(e.signature.as_deref(), Some("already exists"));
    let e = &r.entries[1];
    assert_eq!((e.index, e.ke), (1, Some(Ke::Ke3)));
    assert_eq!(e.ts.unwrap().to_rfc3339(), "2026-06-30T14:02:12.500+00:00");
    assert_eq!(e.extra.get("tab"), Some(&Value::from(2)));
}

#[test]
fn snake_case_report_with_per_ke_and_string_numbers() {
    let json = r#"{"sdk_version": "41.6.0", "device_id": "DEV", "user_id": "@a:hs",
        "sync_state": null, "crypto_ready": "false", "per_ke": {"ke1": "4", "2": 1},
        "entries": [{"ts": "1782828131123", "ke": 4, "message": "delayed event timed out"}]}"#;
    let r = parse(json).unwrap();
    assert_eq!(r.sdk_version.as_deref(), Some("41.6.0"));
    assert_eq!(r.sync_state, None);
    assert_eq!(r.crypto_ready, Some(false));
    assert_eq!(r.counts, vec![(Ke::Ke1, 4), (Ke::Ke2, 1)]);
    assert_eq!(r.entries[0].ke, Some(Ke::Ke4));
    assert_eq!(
        r.entries[0].ts.unwrap().timestamp_millis(),
        1_782_828_131_123
    );
}

#[test]
fn nested_and_listed_counts_are_read() {
    let r = parse(r#"{"counts": {"total": 5, "perKe": {"KE-2": 5}}}"#).unwrap();
    assert_eq!(r.counts, vec![(Ke::Ke2, 5)]);
    let r = parse(r#"{"counts": [{"ke": "KE-4", "count": 2}]}"#).unwrap();
    assert_eq!(r.counts, vec![(Ke::Ke4, 2)]);
}

#[test]
fn missing_ke_is_derived_from_the_message() {
    let json = r#"{"entries": [
        {"ts": 1782828131, "message": "MissingKey: missing key at index 7 for participant @bob:hs"},
        {"message": "something unrelated"},
        {"ke": "KE-9", "message": "Restart delayed event timed out before the HS responded"}
    ]}"#;
    let r = parse(json).unwrap();
    let e = &r.entries[0];
    assert_eq!((e.ke, e.ke_derived), (Some(Ke::Ke2), true));
    assert_eq!(e.signature.as_deref(), Some("missing key at index"));
    // Epoch seconds are recognised.
    assert_eq!(e.ts.unwrap().timestamp(), 1_782_828_131);
    assert_eq!((r.entries[1].ke, r.entries[1].ke_derived), (None, false));
    let e = &r.entries[2];
    assert_eq!((e.ke, e.ke_derived), (Some(Ke::Ke4), true));
    assert_eq!(e.extra.get("ke"), Some(&Value::from("KE-9")));
}

#[test]
fn a_bare_array_of_entries_is_accepted() {
    let r = parse(r#"[{"ts": "2026-06-30 14:02:11.123", "message": "DecryptionError[msg: x]"}, "already exists"]"#).unwrap();
    assert_eq!(r.entries.len(), 2);
    assert_eq!(r.entries[0].ke, Some(Ke::Ke3));
    assert_eq!(
        r.entries[0].ts.unwrap().to_rfc3339(),
        "2026-06-30T14:02:11.123+00:00"
    );
    assert_eq!(
        (r.entries[1].ke, r.entries[1].message.as_str()),
        (Some(Ke::Ke1), "already exists")
    );
}

#[test]
fn truncated_or_not_json_is_not_json() {
    let cut = &CAMEL[..CAMEL.len() / 2];
    assert!(matches!(parse(cut), Err(DiagError::NotJson(_))));
    assert!(matches!(
        parse("not json at all"),
        Err(DiagError::NotJson(_))
    ));
    assert!(matches!(parse(""), Err(DiagError::NotJson(_))));
    assert!(matches!(
        parse_diag(b"\xff\xfe{", &matcher()),
        Err(DiagError::NotJson(_))
    ));
}

#[test]
fn json_that_is_not_a_report_says_so() {
    assert!(matches!(parse("42"), Err(DiagError::NotAReport(_))));
    assert!(matches!(
        parse(r#"{"log": {"entries": []}}"#),
        Err(DiagError::NotAReport(_))
    ));
}

#[test]
fn the_streamed_reading_keeps_what_the_whole_tree_gave() {
    // Each kind of top level is named; `entries` that is not an array is
    // kept in `extra` and is no report field; fields after the entries
    // and trailing blanks are read; trailing garbage is not JSON.
    for (json, kind) in [
        ("true", "a boolean"),
        ("-1.5", "a number"),
        ("\"x\"", "a string"),
        ("null", "null"),
    ] {
        match parse(json) {
            Err(DiagError::NotAReport(m)) => assert!(m.contains(kind), "{json}: {m}"),
            other => panic!("{json}: {other:?}"),
        }
    }
    assert!(matches!(
        parse(r#"{"entries": {"a": [1, {"b": null}]}}"#),
        Err(DiagError::NotAReport(_))
    ));
    let r = parse(r#"{"entries": "none", "deviceId": "D"}"#).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.extra.get("entries"), Some(&Value::from("none")));
    assert!(r.entries.is_empty());
    let r = parse(
        r#"{"entries": [{"message": "MissingKey at index 3", "ts": 1767225600000}, "plain"], "userId": "@u:hs"} "#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.user_id.as_deref(), Some("@u:hs"));
    assert_eq!(r.entries.len(), 2);
    assert_eq!((r.entries[0].index, r.entries[1].index), (0, 1));
    assert_eq!(r.entries[1].message, "plain");
    assert!(r.entries[0].ts.is_some());
    assert!(matches!(
        parse(r#"{"userId": "@u:hs"} x"#),
        Err(DiagError::NotJson(_))
    ));
}

#[test]
fn ke3_event_id_is_taken_from_the_error_details() {
    let m = "W Error decrypting event (id=$SASBBzoqjAbC:server type=m.room.encrypted sender=@b:hs): DecryptionError[…]";
    assert_eq!(ke3_event_id(m).as_deref(), Some("$SASBBzoqjAbC:server"));
    assert_eq!(
        ke3_event_id("Error decrypting event (id=$abc)").as_deref(),
        Some("$abc")
    );
    assert_eq!(
        ke3_event_id("Error decrypting event (id=$abc").as_deref(),
        Some("$abc")
    );
    assert_eq!(ke3_event_id("no id here"), None);
    assert_eq!(ke3_event_id("id=$ type"), None);
}
