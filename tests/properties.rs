//! Property tests for everything that takes outside input: Synapse log
//! lines, diag reports, HAR files, the config and keymap files, Synapse's
//! metrics page and Prometheus's answers, and redaction. Arbitrary input
//! never panics; redaction keeps every line and redacting twice gives what
//! redacting once gives; well-formed input reads back what was written.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use callcap::bundle::journal::{Journal, SERVER_LOG};
use callcap::capture::Capture;
use callcap::config::Config;
use callcap::config::keymap::{Key, Keymap};
use callcap::domain::diag::parse_diag;
use callcap::domain::har::{redact_har, scan_har};
use callcap::domain::redact::Redactor;
use callcap::domain::signatures::{Matcher, Signatures};
use callcap::domain::synapse_log::{
    LogClock, parse_access_fields, parse_record, parse_timestamp_prefix,
};
use proptest::prelude::*;
use std::io::Write;
use std::path::Path;
use std::sync::LazyLock;

/// Matchers take a while to build: once for all cases. The embedded
/// signatures (a literal search) and a file whose pattern has no literal
/// (a regex search), both with KE-3 event ids.
static MATCHERS: LazyLock<[Matcher; 2]> = LazyLock::new(|| {
    let ids = [
        "$SASBBzoqjEvent1:lotus.example".to_string(),
        "$a".to_string(),
    ];
    let regex_sigs = Signatures::from_toml(
        "[[ke]]\nid = \"KE-1\"\ntitle = \"x\"\nserver = '[0-9]+x|keys/upload'\n",
        Path::new("test.toml"),
    )
    .unwrap();
    [
        Matcher::new(&Signatures::embedded(), &ids).unwrap(),
        Matcher::new(&regex_sigs, &ids).unwrap(),
    ]
});

fn lines(b: &[u8]) -> usize {
    b.iter().filter(|&&c| c == b'\n').count()
}

/// Text that looks like what callcap reads: secrets of every shape the
/// redactor knows, next to ids and keys it must keep, Synapse records,
/// JSON, newlines, and bytes that are not UTF-8.
fn fragment() -> impl Strategy<Value = Vec<u8>> {
    let token = "[A-Za-z0-9_]{1,40}";
    prop_oneof![
        token.prop_map(|t| format!("syt_{t}").into_bytes()),
        token.prop_map(|t| format!("syr_{t}").into_bytes()),
        token.prop_map(|t| format!("access_token={t}&x=1").into_bytes()),
        token.prop_map(|t| format!("?client_secret={t}").into_bytes()),
        token.prop_map(|t| format!("Authorization: Bearer {t}").into_bytes()),
        token.prop_map(|t| format!("{{\"password\": \"{t}\"}}").into_bytes()),
        "([A-Za-z0-9]{4} ){11}[A-Za-z0-9]{4}"
            .prop_map(|k| format!("recovery key {k}").into_bytes()),
        token.prop_map(
            |t| format!("{{\"key\": \"{t}\"}} signed_curve25519:AAAAAAAAAFA").into_bytes()
        ),
        "[a-z]{1,8}".prop_map(|w| format!(
            "2026-06-30 18:00:01,234 - synapse.{w} - 12 - INFO - POST-7 - @alice:hs {w}\n"
        )
        .into_bytes()),
        "(sync\\?since=s1|keys/upload|sendToDevice/m.room.encrypted/1|unstable/org.matrix.msc4140/delayed_events/syd_1/restart)".prop_map(|p| format!(
            "2026-06-30 18:00:02,000 - synapse.access.http.8008 - 521 - INFO - POST-9 - 192.0.2.10 - 8008 - {{@bob:hs}} \
             Processed request: 0.004sec/0.000sec (0.001sec, 0.000sec) (0.000sec/0.001sec/1) 2B 200 \"POST /_matrix/client/v3/{p} HTTP/1.1\" \"Mozilla/5.0\" [0 dbevts]\n"
        )
        .into_bytes()),
        Just(b"2026-06-30 18:00:03,000 - synapse.http.server - 130 - INFO - POST-9 - <XForwardedForRequest at 0x7f method='POST' uri='/_matrix/client/v3/keys/upload' clientproto='HTTP/1.1' site='8008'> SynapseError: 400 - One time key signed_curve25519:AAAAAAAAAFA already exists. Old key: {\"key\": \"a\"}; new key: {'key': 'b'}\n".to_vec()),
        Just(b"Error decrypting event $SASBBzoqjEvent1:lotus.example".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r\n".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..40),
        "\\PC{0,40}".prop_map(String::into_bytes),
    ]
}

fn text() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(fragment(), 0..24).prop_map(|v| v.concat())
}

proptest! {
    #[test]
    fn redaction_keeps_every_line_and_redacting_twice_changes_nothing(input in text()) {
        let r = Redactor::new();
        let (once, _) = r.redact_bytes(&input);
        prop_assert_eq!(lines(&once), lines(&input));
        let (twice, _) = r.redact_bytes(&once);
        prop_assert_eq!(&*twice, &*once);
        // The capture's variant (which also says where secrets may be)
        // redacts the same.
        let (noting, n, _) = r.redact_bytes_noting(&input);
        prop_assert_eq!(&*noting, &*once);
        prop_assert_eq!(n, r.redact_bytes(&input).1);
    }

    #[test]
    fn redacting_text_keeps_every_line_and_is_idempotent(input in "\\PC{0,200}(\n\\PC{0,80}){0,4}") {
        let r = Redactor::new();
        let (once, _) = r.redact_str(&input);
        prop_assert_eq!(once.matches('\n').count(), input.matches('\n').count());
        prop_assert_eq!(&*r.redact_str(&once).0, &*once);
    }

    #[test]
    fn the_redacting_writer_writes_what_redacting_at_once_gives(
        input in text(),
        cuts in proptest::collection::vec(0usize..4096, 0..8),
    ) {
        let r = Redactor::new();
        let mut w = r.writer(Vec::new());
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (input.len() + 1)).collect();
        cuts.sort_unstable();
        let mut from = 0;
        for c in cuts.into_iter().chain([input.len()]) {
            w.write_all(&input[from..c]).unwrap();
            from = c;
        }
        let (out, _) = w.finish().unwrap();
        prop_assert_eq!(&out[..], &*r.redact_bytes(&input).0);
    }

    #[test]
    fn a_har_file_keeps_its_lines_whatever_it_holds(input in text()) {
        let r = Redactor::new();
        let mut out = Vec::new();
        // Not JSON: copied with the text redactor; never a panic.
        redact_har(&input[..], &mut out, &r).unwrap();
        prop_assert_eq!(lines(&out), lines(&input));
        let _ = scan_har(&input[..]);
    }
}

/// A HAR-like JSON document with secrets in the places HAR files keep them.
fn har() -> impl Strategy<Value = String> {
    let value = "[A-Za-z0-9_ .:/=?&-]{0,30}";
    let entry = (value, value, value, value, 100u16..600).prop_map(|(url, auth, cookie, body, status)| {
        serde_json::json!({
            "startedDateTime": "2026-06-30T18:00:01.000Z",
            "request": {
                "method": "POST",
                "url": format!("https://hs.example/_matrix/client/v3/keys/upload?access_token=syt_{url}"),
                "headers": [
                    {"name": "Authorization", "value": format!("Bearer {auth}")},
                    {"name": "Cookie", "value": cookie},
                ],
                "cookies": [{"name": "session", "value": cookie}],
                "postData": {"mimeType": "application/json", "text": format!("{{\"one_time_keys\": {{}}, \"password\": \"{body}\"}}")},
            },
            "response": {
                "status": status,
                "headers": [{"name": "Set-Cookie", "value": format!("s={cookie}")}],
                "content": {"mimeType": "application/json", "text": format!("{{\"errcode\": \"M_UNKNOWN\", \"error\": \"One time key signed_curve25519:AAAAAAAAAFA already exists. Old key: {{\\\"key\\\": \\\"{body}\\\"}}; new key: {{'key': '{url}'}}\"}}")},
            },
        })
    });
    (proptest::collection::vec(entry, 0..6), any::<bool>()).prop_map(|(entries, pretty)| {
        let doc = serde_json::json!({"log": {"version": "1.2", "entries": entries}});
        if pretty {
            serde_json::to_string_pretty(&doc).unwrap()
        } else {
            doc.to_string()
        }
    })
}

proptest! {
    #[test]
    fn a_har_stays_json_with_its_lines_and_redacting_it_again_changes_nothing(doc in har()) {
        let r = Redactor::new();
        let mut once = Vec::new();
        redact_har(doc.as_bytes(), &mut once, &r).unwrap();
        prop_assert_eq!(lines(&once), lines(doc.as_bytes()));
        let a: serde_json::Value = serde_json::from_slice(&once).unwrap();
        let b: serde_json::Value = serde_json::from_str(&doc).unwrap();
        prop_assert_eq!(
            a["log"]["entries"].as_array().map(Vec::len),
            b["log"]["entries"].as_array().map(Vec::len)
        );
        let mut twice = Vec::new();
        redact_har(&once[..], &mut twice, &r).unwrap();
        prop_assert_eq!(twice, once);
        let summary = scan_har(doc.as_bytes()).unwrap();
        prop_assert!(summary.keys_upload.len() <= a["log"]["entries"].as_array().map_or(0, Vec::len));
    }

    #[test]
    fn diag_reports_of_any_shape_never_panic(input in text(), json in json_value()) {
        let m = &MATCHERS[0];
        let _ = parse_diag(&input, m);
        let _ = parse_diag(json.to_string().as_bytes(), m);
        let report = serde_json::json!({"userId": "@a:hs", "deviceId": "D", "entries": [json.clone()], "logs": json});
        let _ = parse_diag(report.to_string().as_bytes(), m);
    }
}

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        "\\PC{0,30}".prop_map(serde_json::Value::from),
        "(MissingKey|already exists|Error decrypting event \\(id=\\$[a-z]{4}\\)|timeout)"
            .prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            proptest::collection::btree_map(
                "(message|msg|level|ts|timestamp|entries|logs|userId|deviceId|sdkVersion|[a-z]{1,6})",
                inner,
                0..6
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A Synapse record's fields, as Synapse's default format writes them.
fn record() -> impl Strategy<Value = (chrono::NaiveDateTime, String, String, String, String)> {
    (
        0i64..4_000_000_000,
        0u32..1000,
        "synapse(\\.[a-z_0-9]{1,12}){0,3}",
        "(DEBUG|INFO|WARNING|ERROR|CRITICAL)",
        "(sentinel|[A-Z]{3,6}-[0-9]{1,8}|[a-z_]{1,12}-[0-9]{1,4})",
        "[^\n\r]{0,120}",
    )
        .prop_map(|(secs, ms, logger, level, request, message)| {
            let at = chrono::DateTime::from_timestamp(secs, ms * 1_000_000)
                .unwrap()
                .naive_utc();
            (at, logger, level, request, message)
        })
}

proptest! {
    #[test]
    fn a_synapse_record_reads_back_what_was_written((at, logger, level, request, message) in record()) {
        let line = format!(
            "{} - {logger} - 123 - {level} - {request} - {message}",
            at.format("%Y-%m-%d %H:%M:%S,%3f")
        );
        let head = parse_record(line.as_bytes()).unwrap();
        prop_assert_eq!(head.at, at);
        prop_assert_eq!(head.logger, logger.as_str());
        prop_assert_eq!(head.level, level.as_str());
        prop_assert_eq!(head.request, request.as_str());
        prop_assert_eq!(head.message, message.as_bytes());
        prop_assert_eq!(parse_timestamp_prefix(line.as_bytes()), Some(at));
    }

    #[test]
    fn an_access_line_reads_back_what_was_written(
        requester in "(None|@[a-z]{1,8}:[a-z]{1,8}\\.example)",
        ms in 0u32..100_000,
        status in 100u16..600,
        method in "(GET|PUT|POST|DELETE|OPTIONS)",
        path in "/[A-Za-z0-9_/.%!$:?=&-]{0,60}",
        agent in "[^\"\n]{0,40}",
    ) {
        let message = format!(
            "192.0.2.10 - 8008 - {{{requester}}} Processed request: {}.{:03}sec/0.000sec \
             (0.001sec, 0.000sec) (0.000sec/0.001sec/1) 42B {status} \"{method} {path} HTTP/1.1\" \"{agent}\" [0 dbevts]",
            ms / 1000,
            ms % 1000
        );
        let a = parse_access_fields(&message).unwrap();
        prop_assert_eq!(a.method, method.as_str());
        prop_assert_eq!(a.path, path.as_str());
        prop_assert_eq!(a.status, status);
        prop_assert_eq!(a.requester, (requester != "None").then_some(requester.as_str()));
        prop_assert!((a.processing_s * 1000.0 - f64::from(ms)).abs() < 0.5);
        prop_assert_eq!(a.user_agent(), agent.as_str());
    }

    #[test]
    fn any_log_line_is_read_without_panicking(line in text()) {
        let _ = parse_record(&line);
        let _ = parse_timestamp_prefix(&line);
        let _ = parse_access_fields(&String::from_utf8_lossy(&line));
        if let Some(h) = parse_record(&line) {
            let _ = h.nested();
        }
    }

    /// The matcher's lines are real lines of the buffer, in order.
    #[test]
    fn the_matcher_reports_whole_lines_in_order(input in text()) {
        for m in MATCHERS.iter() {
            let mut last_end = None;
            m.scan(&input, |s, e, _| {
                assert!(s <= e && e <= input.len());
                assert!(s == 0 || input[s - 1] == b'\n');
                assert!(e == input.len() || input[e] == b'\n');
                assert!(last_end.is_none_or(|l| s > l));
                last_end = Some(e);
            });
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// However the log arrives, every line is captured once: the journal's
    /// server log has as many lines as the input.
    #[test]
    fn the_capture_keeps_every_line_however_the_bytes_arrive(
        input in text(),
        cuts in proptest::collection::vec(0usize..4096, 0..10),
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let journal = Journal::create(&tmp.path().join("j")).unwrap();
        let mut c = Capture::new(journal, Signatures::embedded(), LogClock::utc(), Vec::new(), 2000).unwrap();
        let mut cuts: Vec<usize> = cuts.into_iter().map(|x| x % (input.len() + 1)).collect();
        cuts.sort_unstable();
        let mut from = 0;
        for to in cuts.into_iter().chain([input.len()]) {
            c.server_chunk("server-log", &input[from..to]).unwrap();
            from = to;
        }
        c.end_of_input("server-log", false).unwrap();
        let want = lines(&input) + usize::from(!input.is_empty() && !input.ends_with(b"\n"));
        prop_assert_eq!(c.lines(), want as u64);
        c.journal.flush().unwrap();
        let facts = c.journal.facts();
        // The journal's server log is the input, redacted, byte for byte.
        let written = std::fs::read(tmp.path().join("j").join(SERVER_LOG)).unwrap();
        prop_assert_eq!(&written[..], &*Redactor::new().redact_bytes(&input).0);
        prop_assert_eq!(facts[SERVER_LOG].bytes, written.len() as u64);
    }
}

/// Config text built from the real sections and keys, with values of any
/// type, and plain garbage.
fn config_text() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("[ssh]\nhost"),
        Just("[ssh]\nport"),
        Just("[ssh]\njump"),
        Just("[ssh]\nhost-key-check"),
        Just("[server-log]\npath"),
        Just("[server-log]\nexec-prefix"),
        Just("[server-log]\ntimezone"),
        Just("[server-log]\nbackfill"),
        Just("[client]\ndownloads"),
        Just("[call]\nuser-id"),
        Just("[call]\nparticipants"),
        Just("[database]\nurl"),
        Just("[database]\npoll-interval"),
        Just("[database]\nstatement-timeout"),
        Just("[analysis]\nrestart-timeout"),
        Just("[bundle]\nout"),
        Just("[signatures]\nfile"),
        Just("[nonsense]\nkey"),
    ];
    let value = prop_oneof![
        "\"[^\"\\\\\n]{0,20}\"",
        "-?[0-9]{1,12}",
        Just("true".to_string()),
        Just("[]".to_string()),
        Just("[\"@a:hs/D\", 3]".to_string()),
        Just("\"5s\"".to_string()),
        Just("\"-1ms\"".to_string()),
        Just("\"Mars/Olympus\"".to_string()),
    ];
    prop_oneof![
        proptest::collection::vec((key, value), 0..8).prop_map(|kv| {
            kv.into_iter()
                .map(|(k, v)| format!("{k} = {v}\n"))
                .collect()
        }),
        "\\PC{0,200}",
    ]
}

proptest! {
    #[test]
    fn any_config_is_read_or_refused_with_a_message(text in config_text()) {
        match Config::parse(&text, Path::new("config.toml")) {
            Ok(_) => {}
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn any_keymap_is_read_or_refused_with_a_message(
        text in prop_oneof![
            proptest::collection::vec(
                ("(quit|mark-fault|zoom|scroll-up|help|no-such-action)", "(ctrl-|alt-|shift-){0,2}([a-z0-9]|f[0-9]{1,2}|pageup|space|tab|\\PC{0,4})"),
                0..6
            )
            .prop_map(|kv| kv.into_iter().map(|(a, k)| format!("{a} = [\"{}\"]\n", k.replace(['"', '\\'], ""))).collect::<String>()),
            "\\PC{0,200}",
        ]
    ) {
        match Keymap::with_overrides(&text, Path::new("keymap.toml")) {
            Ok(km) => prop_assert!(!km.bindings().is_empty()),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    /// A key as a keymap file spells it reads back as the same key.
    #[test]
    fn a_key_reads_back_as_it_is_written(s in "(ctrl-|alt-|shift-){0,3}(\\PC|f[0-9]{1,2}|[a-z]{2,9})") {
        if let Ok(k) = Key::parse(&s) {
            prop_assert_eq!(Key::parse(&k.to_string()), Ok(k));
        }
    }
}

// ---------------------------------------------------------------------------
// Synapse's latency metrics: its metrics page and Prometheus's answers.

/// Synapse's default buckets.
const SYNAPSE_LE: [&str; 15] = [
    "0.005", "0.01", "0.025", "0.05", "0.075", "0.1", "0.25", "0.5", "0.75", "1", "2.5", "5",
    "7.5", "10", "+Inf",
];

/// A page as Synapse's metrics listener serves it: one servlet's
/// histogram from the requests per bucket, beside other metrics.
fn metrics_page(servlet: &str, per_bucket: &[u32]) -> String {
    let name = "synapse_http_server_response_time_seconds";
    let mut page = format!(
        "# HELP python_gc_objects_collected_total x\n# TYPE python_gc_objects_collected_total counter\npython_gc_objects_collected_total{{generation=\"0\"}} 12.0\n# HELP {name} Time taken\n# TYPE {name} histogram\n"
    );
    let labels = format!("code=\"200\",method=\"POST\",servlet=\"{servlet}\",tag=\"\"");
    let mut c = 0u64;
    for (le, n) in SYNAPSE_LE.iter().zip(per_bucket) {
        c += u64::from(*n);
        page.push_str(&format!("{name}_bucket{{{labels},le=\"{le}\"}} {c}.0\n"));
    }
    page.push_str(&format!(
        "{name}_count{{{labels}}} {c}.0\n{name}_sum{{{labels}}} 1.5\n"
    ));
    page
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn any_metrics_page_is_read_or_refused_without_panicking(input in text()) {
        let text = String::from_utf8_lossy(&input);
        let _ = callcap::domain::synapse_metrics::parse(&text);
        let with_type = format!("# TYPE synapse_http_server_response_time_seconds histogram\n{text}");
        let _ = callcap::domain::synapse_metrics::parse(&with_type);
    }

    #[test]
    fn a_synapse_page_reads_back_its_requests_and_a_p99_within_the_buckets(
        per_bucket in proptest::collection::vec(0u32..50, 15),
        restarted in proptest::collection::vec(0u32..5, 15),
    ) {
        use callcap::domain::synapse_metrics::{increase, parse};
        let page = metrics_page("KeyUploadServlet", &per_bucket);
        let s = parse(&page).unwrap();
        let (servlet, h) = s.series.values().next().unwrap();
        prop_assert_eq!(servlet.as_str(), "KeyUploadServlet");
        let total: u32 = per_bucket.iter().sum();
        prop_assert_eq!(h.total, f64::from(total));
        match h.quantile(0.99) {
            None => prop_assert_eq!(total, 0),
            Some(q) => {
                prop_assert!((0.0..=10.0).contains(&q.seconds), "{:?}", q);
                prop_assert_eq!(q.capped, f64::from(per_bucket[14]) > f64::from(total) * 0.01 && q.seconds == 10.0);
            }
        }
        // A later page with fewer requests (Synapse restarted): never a
        // negative count.
        let later = parse(&metrics_page("KeyUploadServlet", &restarted)).unwrap();
        let inc = increase(&s, &later);
        for h in inc.servlets.values() {
            prop_assert!(h.total >= 0.0);
            prop_assert!(h.cumulative.iter().all(|c| *c >= 0.0 && *c <= h.total));
        }
    }

    #[test]
    fn any_query_range_answer_is_read_or_refused_and_gives_no_negative_or_nan(
        input in text(),
        json in json_value(),
        points in proptest::collection::vec(
            (prop_oneof![any::<i64>(), Just(i64::MIN), Just(i64::MAX), 1_782_842_400i64..1_782_846_000], prop_oneof![
                Just("NaN".to_string()), Just("+Inf".to_string()), Just("-Inf".to_string()),
                Just("-3".to_string()), "[0-9]{1,4}(\\.[0-9]{1,3})?", "\\PC{0,6}",
            ]),
            0..6,
        ),
        le in prop_oneof![Just("+Inf".to_string()), Just("2.5".to_string()), "\\PC{0,4}"],
    ) {
        use callcap::domain::prometheus_api::{minutes_from_buckets, parse_matrix};
        let _ = parse_matrix(&input);
        let _ = parse_matrix(json.to_string().as_bytes());
        let values: Vec<serde_json::Value> = points
            .iter()
            .map(|(t, v)| serde_json::json!([*t as f64, v]))
            .collect();
        let answer = serde_json::json!({"status": "success", "data": {"resultType": "matrix", "result": [
            {"metric": {"le": le, "servlet": "KeyUploadServlet"}, "values": values},
            {"metric": {"le": "+Inf", "servlet": "KeyUploadServlet"}, "values": values},
        ]}});
        let series = parse_matrix(answer.to_string().as_bytes()).unwrap();
        let m = minutes_from_buckets(&series, 60);
        for servlets in m.minutes.values() {
            for h in servlets.values() {
                prop_assert!(h.total.is_finite() && h.total >= 0.0);
                if let Some(q) = h.quantile(0.99) {
                    prop_assert!(q.seconds.is_finite() && q.seconds >= 0.0, "{:?}", q);
                }
            }
        }
    }
}

/// A log line in any of the formats callcap reads: arbitrary input never
/// panics; a Synapse record wrapped by docker, journald or written by
/// Synapse's JSON formatters reads back its message, logger, level,
/// request and time.
mod log_formats {
    use super::*;
    use callcap::domain::log_format::{
        Body, Format, JsonRecord, decode, docker_time, inner_head, journal_cursor, one_line, sniff,
    };

    const FORMATS: [Format; 4] = [
        Format::Text,
        Format::SynapseJson,
        Format::Journal,
        Format::Docker,
    ];

    fn micros() -> impl Strategy<Value = i64> {
        1_000_000_000_000_000i64..4_000_000_000_000_000
    }

    proptest! {
        #[test]
        fn any_line_in_any_format_is_read_without_panicking(line in text()) {
            let _ = sniff(&line);
            for f in FORMATS {
                for l in line.split(|b| *b == b'\n') {
                    let r = decode(f, l);
                    if let Body::Text(t) = &r.body {
                        let _ = inner_head(t);
                        let mut out = Vec::new();
                        one_line(t, &mut out);
                        prop_assert!(!out.contains(&b'\n'));
                    }
                }
            }
            let _ = docker_time(&line);
            let _ = journal_cursor(&line);
            let _ = JsonRecord::parse(&line);
        }

        #[test]
        fn a_record_reads_back_inside_docker_journald_and_json(
            (at, logger, level, request, message) in record(),
            wrapper_us in micros(),
            nanos in 0u32..1000,
            bytes in any::<bool>(),
        ) {
            let line = format!(
                "{} - {logger} - 123 - {level} - {request} - {message}",
                at.format("%Y-%m-%d %H:%M:%S,%3f")
            );
            let wrapper = chrono::DateTime::from_timestamp_micros(wrapper_us).unwrap()
                + chrono::Duration::nanoseconds(i64::from(nanos));

            // docker logs --timestamps
            let docker = format!(
                "{} {line}",
                wrapper.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
            );
            prop_assert_eq!(sniff(docker.as_bytes()), Format::Docker);
            let r = decode(Format::Docker, docker.as_bytes());
            prop_assert_eq!(r.wrapper_at, Some(wrapper));
            prop_assert!(matches!(&r.body, Body::Text(t) if &t[..] == line.as_bytes()));

            // journalctl -o json: MESSAGE a string, or bytes (as journalctl
            // writes a message that is not UTF-8; here with a line break)
            let msg = if bytes {
                let mut b = line.clone().into_bytes();
                b.extend_from_slice(b"\n\xff tail");
                serde_json::json!(b)
            } else {
                serde_json::json!(line)
            };
            let rec = serde_json::json!({
                "__CURSOR": format!("s=1;i={wrapper_us:x}"),
                "__REALTIME_TIMESTAMP": wrapper_us.to_string(),
                "PRIORITY": "6",
                "MESSAGE": msg,
            })
            .to_string();
            prop_assert_eq!(sniff(rec.as_bytes()), Format::Journal);
            let r = decode(Format::Journal, rec.as_bytes());
            prop_assert_eq!(r.wrapper_at.map(|t| t.timestamp_micros()), Some(wrapper_us));
            let Body::Text(t) = &r.body else { panic!("{rec}") };
            prop_assert!(t.starts_with(line.as_bytes()));
            prop_assert_eq!(t.len(), line.len() + if bytes { 7 } else { 0 });
            let c = format!("s=1;i={wrapper_us:x}");
            let cursor = journal_cursor(rec.as_bytes());
            prop_assert_eq!(cursor.as_deref(), Some(c.as_str()));

            // Synapse's TerseJsonFormatter: time to 2 decimals
            let secs = at.and_utc().timestamp_millis() as f64 / 1000.0;
            let terse = serde_json::json!({
                "log": message,
                "namespace": logger,
                "level": level,
                "time": (secs * 100.0).round() / 100.0,
                "request": request,
            })
            .to_string();
            prop_assert_eq!(sniff(terse.as_bytes()), Format::SynapseJson);
            let r = decode(Format::SynapseJson, terse.as_bytes());
            let Body::Json(j) = &r.body else { panic!("{terse}") };
            prop_assert_eq!(&j.message, &message);
            prop_assert_eq!(j.namespace.as_deref(), Some(logger.as_str()));
            prop_assert_eq!(j.level.as_deref(), Some(level.as_str()));
            prop_assert_eq!(j.request.as_deref(), Some(request.as_str()));
            let t = j.time.unwrap().timestamp_millis();
            prop_assert!((t - at.and_utc().timestamp_millis()).abs() <= 5, "{t} {at}");
        }
    }
}

proptest! {
    /// Element Web's console log: any text splits into entries without
    /// loss (every line is in exactly one entry, in order), and an entry
    /// written in its `ConsoleLogger` format reads back with its time,
    /// level and message.
    #[test]
    fn an_element_console_log_keeps_every_line_and_reads_back_its_entries(
        input in "\\PC{0,60}(\n\\PC{0,60}){0,6}",
        ms in 0i64..4_000_000_000_000,
        level in "[IWED]",
        message in "[^\n\r]{0,60}",
    ) {
        use callcap::domain::element_log::{parse_console, parse_metadata};
        let log = parse_console(&input);
        // Each entry is its first line and its continuation lines.
        let kept: usize = log.entries.iter().map(|e| 1 + e.message.matches('\n').count()).sum();
        prop_assert_eq!(kept, input.lines().count());
        prop_assert_eq!(log.lines as usize, input.lines().count());
        let _ = parse_metadata(&input);

        let at = chrono::DateTime::from_timestamp_millis(ms).unwrap();
        let line = format!("{} {level} {message}\nError: x\n    at f (a.js:1:2)", at.format("%Y-%m-%dT%H:%M:%S%.3fZ"));
        let log = parse_console(&line);
        prop_assert_eq!(log.entries.len(), 1);
        let e = &log.entries[0];
        prop_assert_eq!(e.at, Some(at));
        prop_assert_eq!(e.message.clone(), format!("{message}\nError: x\n    at f (a.js:1:2)"));
    }
}

proptest! {
    /// livekit-server's and lk-jwt-service's parsers read any line without
    /// panicking, and a zap JSON line with any field values reads back.
    #[test]
    fn sfu_lines_of_any_shape_never_panic(
        line in "\\PC{0,200}",
        ident in "[@a-zA-Z0-9:._=+/-]{0,50}",
        reason in "[A-Z_]{0,30}",
    ) {
        use callcap::domain::sfu_log::{identity_of, parse_livekit, parse_lkjwt, sfu_event};
        if let Some(l) = parse_livekit(&line) {
            let _ = sfu_event(&l);
        }
        let _ = parse_lkjwt(&line);
        let _ = identity_of(&line);
        let json = serde_json::json!({
            "level": "info", "ts": 1782842592.5, "logger": "livekit", "caller": "rtc/participant.go:1",
            "msg": "participant closing", "participant": ident, "participantID": "PA_1", "reason": reason,
        }).to_string();
        let e = sfu_event(&parse_livekit(&json).unwrap()).unwrap();
        prop_assert_eq!(e.identity.unwrap_or_default(), ident);
        prop_assert_eq!(e.reason.unwrap_or_default(), reason);
    }
}
