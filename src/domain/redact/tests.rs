#![allow(clippy::unwrap_used)]

use super::*;

const TOKEN: &str = "syt_YWxpY2U_ZmRrSmtRbGZqY2Fnc3dO_0jT0Ab";
const REFRESH: &str = "syr_YWxpY2U_cXdlcnR5dWlvcGFzZGZn_2Kd9Xq";
const RECOVERY: &str = "EsTc LW2K PGiF wKEA 3As5 aX4G gAXn q5Hb bzMF CFx7 9KXU Kd5N";

fn r(s: &str) -> (String, usize) {
    let (out, n) = Redactor::new().redact_str(s);
    (out.into_owned(), n)
}

fn lines(s: &str) -> usize {
    s.split('\n').count()
}

#[test]
fn clean_text_is_borrowed_and_counts_zero() {
    let text = "2026-06-30 14:02:11,123 - synapse.handlers.presence - 1234 - INFO - sentinel - Handling presence\n";
    let (out, n) = Redactor::new().redact_bytes(text.as_bytes());
    assert!(matches!(out, Cow::Borrowed(_)));
    assert_eq!(n.total(), 0);
}

#[test]
fn matrix_access_and_refresh_tokens_are_replaced() {
    let (out, n) = r(&format!("token {TOKEN} and {REFRESH}\nnext"));
    assert_eq!(out, "token <redacted> and <redacted>\nnext");
    assert_eq!(n, 2);
}

#[test]
fn tokens_with_base64_plus_and_slash_are_replaced_whole() {
    let (out, n) = r("x syt_a+b/c_d=_e-f y");
    assert_eq!((out.as_str(), n), ("x <redacted> y", 1));
}

#[test]
fn query_values_are_replaced_unless_already_redacted() {
    let (out, n) = r(
        "GET /_matrix/client/v3/sync?access_token=abc123&since=s1 client_secret=xyz access%5Ftoken=q&a=1",
    );
    assert_eq!(
        out,
        "GET /_matrix/client/v3/sync?access_token=<redacted>&since=s1 client_secret=<redacted> access%5Ftoken=<redacted>&a=1"
    );
    assert_eq!(n, 3);
    let already = "\"GET /_matrix/client/v3/sync?access_token=<redacted>&since=s1 HTTP/1.1\"";
    assert_eq!(r(already), (already.to_string(), 0));
}

#[test]
fn bearer_values_are_replaced_and_quotes_survive() {
    let (out, n) = r(r#"{"name": "Authorization", "value": "Bearer opaque.tok-EN~1/="}"#);
    assert_eq!(
        out,
        r#"{"name": "Authorization", "value": "Bearer <redacted>"}"#
    );
    assert_eq!(n, 1);
    assert_eq!(r("Authorization: Bearer <redacted>").1, 0);
}

#[test]
fn json_token_and_password_values_are_replaced_plain_and_escaped() {
    let (out, n) = r(r#"{"access_token": "opaque-1", "device_id": "ABC", "password":"p\"w\\d"}"#);
    assert_eq!(
        out,
        r#"{"access_token": "<redacted>", "device_id": "ABC", "password":"<redacted>"}"#
    );
    assert_eq!(n, 2);
    let (out, n) = r(r#""text": "{\"type\":\"m.login.password\",\"password\":\"hunter2\"}""#);
    assert_eq!(
        out,
        r#""text": "{\"type\":\"m.login.password\",\"password\":\"<redacted>\"}""#
    );
    assert_eq!(n, 1);
    assert_eq!(r(r#"{"access_token": "<redacted>"}"#).1, 0);
}

#[test]
fn recovery_keys_are_replaced() {
    let (out, n) = r(&format!("recovery key: {RECOVERY}.\n"));
    assert_eq!((out.as_str(), n), ("recovery key: <redacted>.\n", 1));
    // Eleven groups are not a key; nor is a key glued to a word.
    let eleven = &RECOVERY[..RECOVERY.len() - 5];
    assert_eq!(r(eleven).1, 0);
    assert_eq!(r(&format!("x{RECOVERY}")).1, 0);
    // Found wherever it sits in a long buffer.
    let filler = "2026-06-30 14:02:11,123 - synapse.x - 1 - INFO - sentinel - Handling presence\n"
        .repeat(50);
    let (out, n) = r(&format!("{filler}{RECOVERY}\n{filler}"));
    assert_eq!(n, 1);
    assert!(!out.contains(RECOVERY));
}

#[test]
fn a_recovery_key_is_found_at_every_offset_among_words_and_digits() {
    // Text with spaces five apart, base58 runs and bytes outside base58
    // around the key at each possible position relative to the probes.
    let filler = "POST /keys/upload 200 for user @al1ce:hs abcd efgh ijkl 0 mnop qrst ";
    for before in 0..130 {
        let head: String = filler.chars().cycle().take(before).collect();
        let text = format!("{head}:{RECOVERY}.tail text\n");
        let (out, n) = r(&text);
        assert_eq!(n, 1, "key after {before} bytes: {out}");
        assert!(!out.contains(RECOVERY));
        // Also as the very end of the text (probes near the buffer's end).
        let (out, n) = r(&format!("{head}:{RECOVERY}"));
        assert_eq!(n, 1, "key ending the text after {before} bytes: {out}");
    }
}

#[test]
fn never_crosses_a_newline() {
    // A key split over two lines is not a key; a token value stops at the line end.
    let split = RECOVERY.replacen(' ', "\n", 1);
    assert_eq!(r(&split).1, 0);
    let (out, _) = r("access_token=abc\ndef\n\"password\":\n\"x\"");
    assert_eq!(out, "access_token=<redacted>\ndef\n\"password\":\n\"x\"");
}

#[test]
fn planted_secrets_of_every_kind_are_gone_and_lines_kept() {
    let text = format!(
        "a {TOKEN}\r\nb ?access_token={REFRESH}&x=1\nc Bearer abcdef123\n{{\"refresh_token\": \"opaque\"}}\nd {RECOVERY}\nclient%5Fsecret=s3cr3t\n"
    );
    let (out, n) = r(&text);
    assert_eq!(n, 6);
    assert_eq!(lines(&out), lines(&text));
    for secret in [TOKEN, REFRESH, "abcdef123", "opaque", RECOVERY, "s3cr3t"] {
        assert!(!out.contains(secret), "{secret} in {out}");
    }
    assert!(out.contains("\r\n"));
}

#[test]
fn every_secret_is_on_a_noted_line_and_other_lines_redact_to_themselves() {
    let text = format!(
        "clean 1\na {TOKEN}\nclean 2\nb ?access_token={REFRESH}&x=1\nc Bearer abcdef123\nd {RECOVERY}\nclean 3 access_token=<redacted>\nclean 4"
    );
    let red = Redactor::new();
    let (out, n, noted) = red.redact_bytes_noting(text.as_bytes());
    assert_eq!((out, n), red.redact_bytes(text.as_bytes()));
    let mut start = 0;
    for line in text.split('\n') {
        let range = start..start + line.len();
        start = range.end + 1;
        let is_noted = noted.contains(&range);
        let (_, found) = red.redact_str(line);
        assert!(
            is_noted || found == 0,
            "{line:?} holds a secret but is not noted"
        );
        if line.starts_with("clean") {
            assert_eq!(found, 0, "{line:?}");
        } else {
            assert!(is_noted, "{line:?}");
        }
    }
}

#[test]
fn invalid_utf8_is_kept() {
    let buf = b"\xff\xfe syt_abc \xc3\x28\n";
    let (out, n) = Redactor::new().redact_bytes(buf);
    assert_eq!(&*out, b"\xff\xfe <redacted> \xc3\x28\n");
    assert_eq!(n.total(), 1);
}

#[test]
fn writer_redacts_across_write_boundaries() {
    let text = format!("line one {TOKEN}\nline two access_token=abc&b=1\n{RECOVERY}");
    for step in [1, 3, 7, 64] {
        let mut w = Redactor::new().writer(Vec::new());
        for chunk in text.as_bytes().chunks(step) {
            w.write_all(chunk).unwrap();
        }
        let (out, n) = w.finish().unwrap();
        assert_eq!(n.total(), 3, "step {step}");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "line one <redacted>\nline two access_token=<redacted>&b=1\n<redacted>"
        );
    }
}

#[test]
fn writer_cuts_very_long_lines_clear_of_secrets() {
    // One 3 MiB line with secrets spread over it, written in odd chunks.
    let mut text = String::new();
    let mut planted = 0;
    while text.len() < 3 << 20 {
        text.push_str(&"abcdefghij".repeat(997));
        text.push_str(&format!(" {TOKEN} "));
        planted += 1;
    }
    let mut w = Redactor::new().writer(Vec::new());
    for chunk in text.as_bytes().chunks(65_521) {
        w.write_all(chunk).unwrap();
    }
    let (out, n) = w.finish().unwrap();
    let out = String::from_utf8(out).unwrap();
    assert_eq!(n.total(), planted);
    assert!(!out.contains("syt_"));
    assert!(!out.contains('\n'));
}

/// Throughput on a Synapse-shaped buffer; run with
/// `cargo test --release --lib redaction_throughput -- --ignored --nocapture`.
#[test]
#[ignore]
fn redaction_throughput() {
    let line = "2026-06-30 14:02:11,123 - synapse.access.http.8008 - 643 - INFO - GET-1 - 10.0.0.1 - 8008 - {@a:hs} Processed request: 0.003sec/0.001sec ru=(0.001sec, 0.000sec) db=(0.000sec/0.000sec/1) 64B 200 \"GET /_matrix/client/v3/sync?since=s1 HTTP/1.1\" \"Mozilla/5.0\" [0 dbevts]\n";
    let info = "2026-06-30 14:02:11,123 - synapse.handlers.presence - 1234 - INFO - sentinel - Handling presence update for @alice:hs (online)\n";
    let mut buf = String::new();
    while buf.len() < 128 << 20 {
        buf.push_str(line);
        for _ in 0..9 {
            buf.push_str(info);
        }
    }
    let t = std::time::Instant::now();
    let (_, n) = Redactor::new().redact_bytes(buf.as_bytes());
    let dt = t.elapsed().as_secs_f64();
    println!(
        "redact: {:.0} MB/s ({} secrets)",
        buf.len() as f64 / dt / 1e6,
        n.total()
    );
}
