#![allow(clippy::unwrap_used)]
use super::*;

// Written by Synapse 1.163.2's own formatters (`synapse.logging._terse_json`
// with `LoggingContextFilter`), copied here verbatim.
const TERSE: &str = r#"{"log":"Adding one_time_keys {'a': 1}","namespace":"synapse.handlers.e2e_keys","level":"INFO","time":1796546094.65,"server_name":"hs","request":"POST-5"}"#;
const TERSE_MULTILINE: &str = r#"{"log":"Hello x é \"q\"\nline2","namespace":"synapse.handlers.e2e_keys","level":"INFO","time":1796546094.64,"server_name":"unknown_server_from_sentinel_context","request":"sentinel"}"#;
const PLAIN_JSON_EXC: &str = r#"{"log":"oops","namespace":"synapse.handlers.e2e_keys","level":"ERROR","server_name":"unknown_server_from_sentinel_context","request":"sentinel","exc_type":"ValueError","exc_value":"bad"}"#;
const GCP: &str = r#"{"severity":"INFO","message":"Adding one_time_keys {'a': 1}","logger":"synapse.x","time":"2026-12-06T08:34:57.903Z"}"#;
// `journalctl -o json` of records written by systemd-journal-remote.
const JOURNAL_TEXT: &str = r#"{"_BOOT_ID":"0123456789abcdef0123456789abcdef","__MONOTONIC_TIMESTAMP":"1000","_SYSTEMD_UNIT":"matrix-synapse-worker@generic1.service","SYSLOG_IDENTIFIER":"python","__REALTIME_TIMESTAMP":"1782842400000000","MESSAGE":"2026-06-30 18:00:00,000 - synapse.x - 1 - INFO - GET-1 - hello","__CURSOR":"s=93c8c09fe87a474d916c753617dd3601;i=1;b=0123456789abcdef0123456789abcdef;m=3e8;t=6557c57f14800;x=c5a9c2bec4906166","PRIORITY":"6"}"#;
const JOURNAL_BYTES: &str = r#"{"PRIORITY":"3","__MONOTONIC_TIMESTAMP":"1005","MESSAGE":[108,105,110,101,32,111,110,101,10,108,105,110,101,32,116,119,111,32,255,254,32,98,97,100],"_BOOT_ID":"0123456789abcdef0123456789abcdef","__REALTIME_TIMESTAMP":"1782842400005000","__CURSOR":"s=93c8c09fe87a474d916c753617dd3601;i=3;b=0123456789abcdef0123456789abcdef;m=3ed;t=6557c57f15b88;x=cc5faaeb68a316c0","_SYSTEMD_UNIT":"matrix-synapse-worker@generic1.service"}"#;
const DOCKER: &str =
    "2026-12-06T08:43:22.093800858Z 2026-12-06 08:43:22,093 - synapse.x - 1 - INFO - GET-1 - out 0";

fn ms(at: Option<DateTime<Utc>>) -> Option<i64> {
    at.map(|t| t.timestamp_millis())
}

#[test]
fn each_format_is_told_by_its_first_lines() {
    assert_eq!(sniff(TERSE.as_bytes()), Format::SynapseJson);
    assert_eq!(sniff(GCP.as_bytes()), Format::SynapseJson);
    assert_eq!(sniff(JOURNAL_TEXT.as_bytes()), Format::Journal);
    assert_eq!(sniff(DOCKER.as_bytes()), Format::Docker);
    let text =
        "\n  File \"x.py\", line 1\n2026-06-30 18:00:00,000 - synapse.x - 1 - INFO - GET-1 - x\n";
    assert_eq!(sniff(text.as_bytes()), Format::Text);
    assert_eq!(sniff(b""), Format::Text);
    // JSON that is neither Synapse's nor journald's is text.
    assert_eq!(sniff(br#"{"a": 1}"#), Format::Text);
}

#[test]
fn terse_json_gives_its_fields_and_time() {
    let r = decode(Format::SynapseJson, TERSE.as_bytes());
    let Body::Json(j) = r.body else {
        panic!("{r:?}")
    };
    assert_eq!(j.message, "Adding one_time_keys {'a': 1}");
    assert_eq!(j.namespace.as_deref(), Some("synapse.handlers.e2e_keys"));
    assert_eq!(j.level.as_deref(), Some("INFO"));
    assert_eq!(j.request.as_deref(), Some("POST-5"));
    assert_eq!(ms(j.time), Some(1_796_546_094_650));
    let mut out = Vec::new();
    j.render(&mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "2026-12-06 08:34:54,650 - synapse.handlers.e2e_keys - INFO - POST-5 - Adding one_time_keys {'a': 1}"
    );
}

#[test]
fn json_without_time_and_with_an_exception_and_gcp() {
    let Body::Json(j) = decode(Format::SynapseJson, PLAIN_JSON_EXC.as_bytes()).body else {
        panic!()
    };
    assert_eq!(j.time, None);
    assert_eq!(j.exception.as_deref(), Some("ValueError: bad"));
    let mut out = Vec::new();
    j.render(&mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "synapse.handlers.e2e_keys - ERROR - sentinel - oops [ValueError: bad]"
    );
    let Body::Json(g) = decode(Format::SynapseJson, GCP.as_bytes()).body else {
        panic!()
    };
    assert_eq!(
        (g.namespace.as_deref(), g.level.as_deref(), ms(g.time)),
        (Some("synapse.x"), Some("INFO"), Some(1_796_546_097_903))
    );
}

#[test]
fn a_multi_line_message_is_one_line_with_escaped_breaks() {
    let Body::Json(j) = decode(Format::SynapseJson, TERSE_MULTILINE.as_bytes()).body else {
        panic!()
    };
    let mut out = Vec::new();
    one_line(j.message.as_bytes(), &mut out);
    assert_eq!(out, "Hello x é \"q\"\\nline2".as_bytes());
}

#[test]
fn journal_records_keep_realtime_priority_and_bytes() {
    let r = decode(Format::Journal, JOURNAL_TEXT.as_bytes());
    assert_eq!(ms(r.wrapper_at), Some(1_782_842_400_000));
    assert_eq!(r.priority, Some(6));
    let Body::Text(t) = &r.body else { panic!() };
    assert_eq!(
        &t[..],
        b"2026-06-30 18:00:00,000 - synapse.x - 1 - INFO - GET-1 - hello"
    );
    let r = decode(Format::Journal, JOURNAL_BYTES.as_bytes());
    let Body::Text(t) = &r.body else { panic!() };
    assert_eq!(&t[..], b"line one\nline two \xff\xfe bad");
    assert_eq!(
        journal_cursor(JOURNAL_BYTES.as_bytes()).as_deref(),
        Some(
            "s=93c8c09fe87a474d916c753617dd3601;i=3;b=0123456789abcdef0123456789abcdef;m=3ed;t=6557c57f15b88;x=cc5faaeb68a316c0"
        )
    );
    // Written with spaces (pretty), the cursor is still found.
    let spaced = r#"{ "__CURSOR" : "s=1;i=2", "MESSAGE" : "x" }"#;
    assert_eq!(
        journal_cursor(spaced.as_bytes()).as_deref(),
        Some("s=1;i=2")
    );
    // A record whose MESSAGE is a Synapse JSON record.
    let inner = format!(
        r#"{{"__CURSOR":"s=1","__REALTIME_TIMESTAMP":"1","MESSAGE":{}}}"#,
        serde_json::to_string(TERSE).unwrap()
    );
    assert!(matches!(
        decode(Format::Journal, inner.as_bytes()).body,
        Body::Json(_)
    ));
    // journalctl's own complaint is kept as a foreign line.
    let r = decode(Format::Journal, b"-- No entries --");
    assert!(r.foreign);
}

#[test]
fn docker_lines_keep_docker_time_and_the_line() {
    let r = decode(Format::Docker, DOCKER.as_bytes());
    assert_eq!(
        r.wrapper_at.map(|t| t.timestamp_nanos_opt()),
        Some(Some(1_796_546_602_093_800_858))
    );
    let Body::Text(t) = &r.body else { panic!() };
    assert!(t.starts_with(b"2026-12-06 08:43:22,093 - synapse.x"));
    let json = format!("2026-12-06T08:43:22.5+01:00 {TERSE}");
    let r = decode(Format::Docker, json.as_bytes());
    assert!(matches!(r.body, Body::Json(_)));
    assert_eq!(ms(r.wrapper_at), Some(1_796_543_002_500));
    assert!(decode(Format::Docker, b"Error: No such container: x").foreign);
}

#[test]
fn inner_heads_of_every_text_shape() {
    let h = inner_head(b"2026-06-30 18:00:00,000 - synapse.x - 1 - INFO - GET-1 - hello").unwrap();
    assert_eq!(
        (h.logger, h.level, h.request, h.message),
        ("synapse.x", Some("INFO"), "GET-1", &b"hello"[..])
    );
    let h = inner_head(b"generic1 | 2026-06-30 18:00:00,000 - synapse.x - 1 - INFO - GET-1 - hi")
        .unwrap();
    assert_eq!((h.request, h.message), ("GET-1", &b"hi"[..]));
    let h = inner_head(b"synapse.handlers.e2e_keys: [POST-5] Adding one_time_keys").unwrap();
    assert_eq!(
        (h.at, h.logger, h.level, h.request, h.message),
        (
            None,
            "synapse.handlers.e2e_keys",
            None,
            "POST-5",
            &b"Adding one_time_keys"[..]
        )
    );
    assert_eq!(inner_head(b"Traceback (most recent call last):"), None);
    assert_eq!(inner_head(b"  File \"x.py\": [1] no"), None);
    assert_eq!(level_of_priority(3), "ERROR");
}
