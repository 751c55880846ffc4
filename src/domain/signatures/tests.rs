#![allow(clippy::unwrap_used)]

use super::search::Finder;
use super::*;
use std::path::Path;

fn matcher(ids: &[&str]) -> Matcher {
    let ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    Matcher::new(&Signatures::embedded(), &ids).unwrap()
}

const KE1_ACCESS: &str = r#"2026-01-11 00:02:01,294 - synapse.access.http.8008 - 521 - INFO - POST-9160055 - [client_ip] - 8008 - {[user_redacted]} Processed request: 0.006sec/0.000sec (0.002sec, 0.000sec) (0.000sec/0.004sec/3) 528B 400 "POST /_matrix/client/v3/keys/upload HTTP/1.0" "Mozilla/5.0 (...) Element/1.12.7 ..." [0 dbevts]"#;
const KE1_ADD: &str = "2026-01-19 12:34:51,034 - synapse.handlers.e2e_keys - 955 - INFO - POST-5688811 - Adding one_time_keys dict_keys(['signed_curve25519:AAAAAAAAAE0', ...]) for device 'RWDSUMBAID' for user '[user_redacted]' at 1768822491032";
const TO_DEVICE: &str = r#"2023-06-14 08:50:55,553 - synapse.access.http.8008 - 461 - INFO - PUT-9496 - 183.82.43.178 - 8008 - {@naresh.mm:chat-server.intellaire.com} Processed request: 0.013sec/0.004sec (0.002sec, 0.000sec) (0.001sec/0.007sec/3) 2B 200 "PUT /_matrix/client/r0/sendToDevice/m.room_key_request/m1686732654881.3 HTTP/1.0" "Mozilla/5.0""#;
const PLAIN: &str = "2026-06-30 14:02:11,123 - synapse.handlers.presence - 1234 - INFO - sentinel - Handling presence update";

#[test]
fn embedded_file_parses_with_all_four_kes() {
    let s = Signatures::from_toml(EMBEDDED, Path::new("signatures.toml")).unwrap();
    assert_eq!(s.title(Ke::Ke1), "OTK upload conflicts");
    assert_eq!(s.server_pattern(Ke::Ke3), None);
    assert!(s.server_pattern(Ke::Ke2).unwrap().contains("to_device"));
    assert_eq!(s.client_signatures(Ke::Ke2).len(), 3);
    assert_eq!(Signatures::embedded().source(), "embedded");
    assert_eq!(Signatures::default().get(Ke::Ke4).server_errors.len(), 3);
}

#[test]
fn user_file_errors_name_the_file_key_and_value() {
    let p = Path::new("/etc/callcap/sig.toml");
    let bad_regex = "[[ke]]\nid = \"KE-1\"\nserver = 'keys/(upload'\n";
    let e = Signatures::from_toml(bad_regex, p).unwrap_err().to_string();
    assert!(
        e.contains("/etc/callcap/sig.toml")
            && e.contains("'server'")
            && e.contains("'keys/(upload'"),
        "{e}"
    );

    let unknown = "[[ke]]\nid = \"KE-1\"\nsever = 'x'\n";
    let e = Signatures::from_toml(unknown, p).unwrap_err().to_string();
    assert!(e.contains("sig.toml") && e.contains("sever"), "{e}");

    let bad_id = "[[ke]]\nid = \"KE-9\"\n";
    let e = Signatures::from_toml(bad_id, p).unwrap_err().to_string();
    assert!(e.contains("'id'") && e.contains("'KE-9'"), "{e}");

    let dup = "[[ke]]\nid = \"KE-1\"\n[[ke]]\nid = \"ke1\"\n";
    assert!(
        Signatures::from_toml(dup, p)
            .unwrap_err()
            .to_string()
            .contains("more than once")
    );

    let empty_err = "[[ke]]\nid = \"KE-2\"\nserver-errors = ['']\n";
    assert!(
        Signatures::from_toml(empty_err, p)
            .unwrap_err()
            .to_string()
            .contains("server-errors")
    );

    let backref = "[[ke]]\nid = \"KE-2\"\nserver = '(a)\\1'\n";
    assert!(
        Signatures::from_toml(backref, p)
            .unwrap_err()
            .to_string()
            .contains("backreference")
    );
}

#[test]
fn user_file_may_leave_kes_out() {
    let s = Signatures::from_toml(
        "[[ke]]\nid = \"KE-4\"\nserver = 'delayed'\n",
        Path::new("x.toml"),
    )
    .unwrap();
    assert_eq!(s.title(Ke::Ke4), Ke::Ke4.meaning());
    assert_eq!(s.server_pattern(Ke::Ke1), None);
    let m = Matcher::new(&s, &[]).unwrap();
    assert_eq!(m.match_line(b"restart delayed event").kes, {
        let mut k = KeSet::default();
        k.insert(Ke::Ke4);
        k
    });
    assert!(m.match_line(KE1_ADD.as_bytes()).kes.is_empty());
}

#[test]
fn access_line_for_failed_keys_upload_is_ke1_error_and_access() {
    let m = matcher(&[]).match_line(KE1_ACCESS.as_bytes());
    assert!(m.kes.contains(Ke::Ke1));
    assert!(m.access);
    assert!(m.error);
}

#[test]
fn adding_one_time_keys_line_is_not_ke1_because_grep_would_not_match_it() {
    // The runbook's KE-1 pattern has `OneTimeKey` and `keys/upload`, not
    // `one_time_keys`; grep -E does not match this line, so neither do we.
    let m = matcher(&[]).match_line(KE1_ADD.as_bytes());
    assert!(m.kes.is_empty() && !m.error && !m.access);
    // It is found all the same: it says whose keys/upload the request is.
    assert!(m.otk_upload && !m.to_device_trace);
    let err = b"2026-06-30 14:00:00,000 - synapse.http.server - 131 - INFO - POST-7 - <SynapseRequest at 0x7f method='POST' uri='/_matrix/client/v3/keys/upload' clientproto='HTTP/1.1' site='8008'> SynapseError: 400 - One time key signed_curve25519:AAAAAAAAAFA already exists. Old key: {}; new key: {}";
    let m = matcher(&[]).match_line(err);
    assert!(m.kes.contains(Ke::Ke1) && m.error && !m.access);
}

#[test]
fn to_device_access_line_is_ke2() {
    let m = matcher(&[]).match_line(TO_DEVICE.as_bytes());
    assert!(m.kes.contains(Ke::Ke2) && m.access && !m.error);
    assert!(!m.kes.contains(Ke::Ke1));
}

#[test]
fn dot_in_server_pattern_matches_any_byte_like_grep() {
    let m = matcher(&[]);
    assert!(
        m.match_line(b"type io-element-call-encryption_keys")
            .kes
            .contains(Ke::Ke2)
    );
    assert!(
        m.match_line(b"m\xffroom\xffencrypted")
            .kes
            .contains(Ke::Ke2)
    );
    assert!(
        m.match_line(b"One time key X already exists")
            .kes
            .contains(Ke::Ke1)
    );
    // Case-sensitive.
    assert!(
        m.match_line(b"ONE TIME KEY X ALREADY EXISTS")
            .kes
            .is_empty()
    );
}

#[test]
fn ke3_never_matches_without_ids_and_matches_ids_literally() {
    let line =
        b"2026-06-30 14:00:00,000 - synapse.x - 1 - INFO - GET-1 - fetching $SASBBzoqj+x:server";
    assert!(!matcher(&[]).match_line(line).kes.contains(Ke::Ke3));
    let m = matcher(&["$SASBBzoqj+x:server"]);
    assert!(m.match_line(line).kes.contains(Ke::Ke3));
    // `+` and `$` are literal, not regex operators.
    assert!(!m.match_line(b"$SASBBzoqjjx:server").kes.contains(Ke::Ke3));
}

#[test]
fn adding_ke3_ids_rebuilds_and_ignores_duplicates() {
    let mut m = matcher(&["$a"]);
    assert_eq!(m.add_ke3_ids(["$a", " ", "$b", "$b"]).unwrap(), 1);
    assert_eq!(m.ke3_ids(), ["$a".to_string(), "$b".to_string()]);
    assert!(m.match_line(b"x $b y").kes.contains(Ke::Ke3));
    assert_eq!(m.add_ke3_ids(["$b"]).unwrap(), 0);
}

#[test]
fn scan_reports_interesting_lines_in_order_including_an_unterminated_last_line() {
    let m = matcher(&[]);
    let buf = format!("{PLAIN}\n{KE1_ACCESS}\n{PLAIN}\r\n{TO_DEVICE}\n\n{PLAIN}\nlast to_device");
    let mut got = Vec::new();
    m.scan(buf.as_bytes(), |s, e, lm| {
        got.push((buf[s..e].to_string(), lm))
    });
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].0, KE1_ACCESS);
    assert_eq!(got[1].0, TO_DEVICE);
    assert_eq!(got[2].0, "last to_device");
    assert!(got[2].1.kes.contains(Ke::Ke2));
}

#[test]
fn scan_agrees_with_match_line_on_every_line() {
    let m = matcher(&["$ev1:hs"]);
    let lines = [
        PLAIN,
        KE1_ACCESS,
        KE1_ADD,
        TO_DEVICE,
        "keys/upload",
        "kkeys/uploadd $ev1:hs",
        "msc4140",
        "Processed request",
        "Processed  request",
        "delayed_even",
        "",
        "One time key \n already exists",
        // Several literals on one line, the next interesting line right
        // after it, then one two lines on.
        "keys/upload to_device msc4140 delayed_event m.room.encrypted $ev1:hs",
        "One time key x already exists OneTimeKey Processed request",
        "to_device",
        PLAIN,
        "update_delayed_event delayed_events",
        // Secret literals (their own search): alone, before and after a KE
        // literal, cut by a newline, on the line after a KE line and on the
        // last line.
        "GET /x?access_token=abc",
        "syt_abc keys/upload",
        "keys/upload Bearer syt_abc",
        "pass",
        "to",
        "ken",
        "to_device",
        "secret",
        "password PASSWORD",
    ];
    let buf = lines.join("\n");
    let mut from_scan = Vec::new();
    m.scan(buf.as_bytes(), |s, e, lm| from_scan.push((s, e, lm)));
    let mut expected = Vec::new();
    let mut off = 0;
    for l in buf.split('\n') {
        let lm = m.match_line(l.as_bytes());
        if lm.is_interesting() {
            expected.push((off, off + l.len(), lm));
        }
        off += l.len() + 1;
    }
    assert_eq!(from_scan, expected);
    let secret_lines = expected
        .iter()
        .filter(|(_, _, lm)| lm.secret_literal)
        .count();
    assert_eq!(secret_lines, 6, "{expected:?}");
}

#[test]
fn patterns_without_literals_fall_back_to_one_regex_pass() {
    let toml = "[[ke]]\nid = \"KE-1\"\nserver = '^[0-9]+$|zz'\n";
    let s = Signatures::from_toml(toml, Path::new("x.toml")).unwrap();
    let m = Matcher::new(&s, &[]).unwrap();
    assert!(matches!(m.compiled.prefilter, Prefilter::Regex(_)));
    let buf = b"abc\n123\nxzzx\n12a\n";
    let mut got = Vec::new();
    m.scan(buf, |s, e, _| got.push(&buf[s..e]));
    assert_eq!(got, vec![&b"123"[..], &b"xzzx"[..]]);
}

#[test]
fn literals_sharing_a_start_or_overlapping_all_count() {
    // Leftmost-longest reports `abcdef` where `abc` starts too, and a
    // literal inside another (`cde`) starts after the first match.
    let toml = "[[ke]]\nid = \"KE-1\"\nserver = 'abc'\n\
                [[ke]]\nid = \"KE-2\"\nserver = 'abcdef'\n\
                [[ke]]\nid = \"KE-4\"\nserver = 'cde|x.yz'\n";
    let s = Signatures::from_toml(toml, Path::new("x.toml")).unwrap();
    let m = Matcher::new(&s, &[]).unwrap();
    let kes = |l: &str| m.match_line(l.as_bytes()).kes.iter().collect::<Vec<_>>();
    assert_eq!(kes("..abcdef.."), vec![Ke::Ke1, Ke::Ke2, Ke::Ke4]);
    assert_eq!(kes("abcde"), vec![Ke::Ke1, Ke::Ke4]);
    assert_eq!(kes("abc xzzy"), vec![Ke::Ke1]);
    assert_eq!(kes("abxqyzcd"), vec![Ke::Ke4]);
    let buf = b"abcdef\nnone\nabcde\n";
    let mut got = Vec::new();
    m.scan(buf, |s, e, lm| {
        got.push((&buf[s..e], lm.kes.iter().count()))
    });
    assert_eq!(got, vec![(&b"abcdef"[..], 3), (&b"abcde"[..], 2)]);
}

#[test]
fn classify_client_returns_first_signature_in_ke_order() {
    let m = matcher(&[]);
    let c = m
        .classify_client("MissingKey: missing key at index 3 for participant @bob:hs")
        .unwrap();
    assert_eq!(
        (c.ke, c.signature.as_str(), c.error),
        (Ke::Ke2, "missing key at index", true)
    );
    let c = m
        .classify_client("W Error decrypting event (id=$x type=m.room.encrypted): DecryptionError[msg: missing field `algorithm`]")
        .unwrap();
    assert_eq!(c.ke, Ke::Ke3);
    let c = m
        .classify_client("[MembershipManager] Network local timeout error while sending event, immediate retry ((0/10)) AbortError: Restart delayed event timed out before the HS responded")
        .unwrap();
    assert_eq!((c.ke, c.signature.as_str()), (Ke::Ke4, "delayed event"));
    assert!(m.classify_client("sync ok").is_none());
}

/// `grep -cE` is the oracle: same counts on the same lines.
#[test]
fn counts_agree_with_grep() {
    use std::io::Write;
    let Ok(out) = std::process::Command::new("grep").arg("--version").output() else {
        return;
    };
    if !out.status.success() {
        return;
    }
    let lines: Vec<String> = {
        let mut v = vec![
            PLAIN.to_string(),
            KE1_ACCESS.to_string(),
            KE1_ADD.to_string(),
            TO_DEVICE.to_string(),
            "One time key signed_curve25519:AAAA already exists. Old key".into(),
            "OneTimeKey".into(),
            "io.element.call.encryption_keys".into(),
            "ioXelementXcallXencryption_keys\r".into(),
            "m.room.encrypted".into(),
            "POST /_matrix/client/unstable/org.matrix.msc4140/delayed_events/syd_x/restart".into(),
            "update_delayed".into(),
            "Failed to send delayed event".into(),
            " 500! \"POST /x/delayed_events".into(),
            " 413 \"PUT /_matrix/client/v3/sendToDevice/m.room.encrypted/1".into(),
            "".into(),
            "one time key x already exists".into(),
        ];
        for i in 0..200 {
            v.push(format!("{PLAIN} {i} to_devic keys/uploa msc414"));
        }
        v
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let mut f = std::fs::File::create(&path).unwrap();
    for l in &lines {
        writeln!(f, "{l}").unwrap();
    }
    drop(f);
    let sigs = Signatures::embedded();
    let m = Matcher::new(&sigs, &[]).unwrap();
    let buf = std::fs::read(&path).unwrap();
    let mut counts = [0usize; 4];
    let mut errors = 0usize;
    m.scan(&buf, |_, _, lm| {
        for k in lm.kes.iter() {
            counts[k.index()] += 1;
        }
        errors += usize::from(lm.error);
    });
    for ke in [Ke::Ke1, Ke::Ke2, Ke::Ke4] {
        let p = sigs.server_pattern(ke).unwrap();
        let out = std::process::Command::new("grep")
            .env("LC_ALL", "C")
            .args(["-cE", p])
            .arg(&path)
            .output()
            .unwrap();
        let n: usize = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        assert_eq!(counts[ke.index()], n, "{ke} pattern {p}");
    }
    assert!(errors >= 4);
}

/// Throughput on a Synapse-shaped buffer (mostly INFO lines, ~10% access
/// lines, ~1% KE lines); run with
/// `cargo test --release --lib scan_throughput -- --ignored --nocapture`.
#[test]
#[ignore]
fn scan_throughput() {
    let info = [
        "synapse.handlers.presence - 1234 - INFO - sentinel - Handling presence update for @alice:hs (online)",
        "synapse.federation.transport.server.federation - 110 - INFO - PUT-88 - Received txn 1718033411234 from matrix.org. (PDUs: 2, EDUs: 1)",
        "synapse.handlers.sync - 980 - INFO - GET-12 - Returning sync for @bob:hs since s12345_678_0_90_12 with 3 rooms",
        "synapse.util.caches.lrucache - 230 - INFO - sentinel - Evicting 120 entries from cache get_users_in_room",
    ];
    let access = "synapse.access.http.8008 - 643 - INFO - GET-7 - 10.10.10.4 - 8008 - {@alice:hs} Processed request: 0.003sec/0.001sec ru=(0.001sec, 0.000sec) db=(0.000sec/0.000sec/1) 64B 200 \"GET /_matrix/client/v3/rooms/!r:hs/messages?dir=b HTTP/1.1\" \"Mozilla/5.0\" [0 dbevts]";
    let mut buf = String::new();
    let mut i = 0u64;
    while buf.len() < 256 << 20 {
        i += 1;
        let body = match i % 100 {
            0..=9 => access.to_string(),
            10 => KE1_ACCESS[26..].to_string(),
            n => info[(n % 4) as usize].to_string(),
        };
        buf.push_str(&format!(
            "2026-06-30 14:{:02}:{:02},{:03} - {body}\n",
            (i / 60000) % 60,
            (i / 1000) % 60,
            i % 1000
        ));
    }
    let m = matcher(&["$SASBBzoqjabcdefghijklmnopqrstuvwxyz0123456"]);
    let t = std::time::Instant::now();
    let mut hits = 0usize;
    m.scan(buf.as_bytes(), |_, _, _| hits += 1);
    let dt = t.elapsed().as_secs_f64();
    println!(
        "scan: {:.0} MB/s ({hits} interesting lines)",
        buf.len() as f64 / dt / 1e6
    );
}

#[test]
fn the_embedded_signatures_and_the_secrets_keep_the_fast_literal_search() {
    // The literal search fingerprints the first four bytes of each literal
    // only when none is shorter, and gives up fingerprinting past 64
    // literals: either made a whole analysis several times slower. The
    // search that runs on every line takes Teddy's faster form, which
    // holds at most 32.
    let m = matcher(&[]);
    let Prefilter::Literals(search) = &m.compiled.prefilter else {
        panic!("no literal search");
    };
    let (Some(main), Some(secrets)) = (&search.main, &search.secrets) else {
        panic!("not two searches: {search:?}");
    };
    for (g, most) in [(main, 32), (secrets, 64)] {
        assert!(g.literals.len() <= most, "{} literals", g.literals.len());
        let shortest = g.literals.iter().map(Vec::len).min().unwrap_or(0);
        assert!(shortest >= 4, "a literal of {shortest} bytes");
    }
    assert!(
        main.literals.iter().any(|l| l == b"Processed request")
            && secrets.literals.iter().any(|l| l == b"syt_"),
        "{search:?}"
    );
}

#[test]
fn the_vector_search_finds_what_the_automaton_finds() {
    // Every literal of the search, at every offset against a vector's
    // width, packed tight, cut by newlines and alone on a line: the
    // searcher called directly and the automaton give the same lines.
    let m = matcher(&["$SASBBzoqjEvent1:lotus.example"]);
    let c = &*m.compiled;
    let Prefilter::Literals(packed) = &c.prefilter else {
        panic!("no literal search");
    };
    let Some(LiteralGroup {
        finder: Finder::Packed(_),
        ..
    }) = &packed.main
    else {
        // No AVX2 here: there is only the automaton.
        return;
    };
    let words = [
        "keys/upload",
        " already exists",
        "One time key",
        "OneTimeKey",
        "to_device",
        "/sendToDevice/m.room.encrypted",
        "io.element.call.encryption_keys",
        "org.matrix.msc4140/delayed_events",
        "update_delayed_event",
        "Processed request",
        "Storing to-device messages",
        "Adding one_time_keys ",
        "syt_",
        "mct_",
        ".eyJ",
        "eyJhbGci",
        "MDAx",
        "Bearer",
        "PASSWORD",
        "Password",
        "access_token",
        "Token",
        "code",
        "Secret",
        "CSRF",
        "Authorization",
        "Cookie",
        "$SASBBzoqjEvent1:lotus.example",
        "Failed to send delayed event",
        "Delayed event not found",
        "is too large to send",
        "x",
        "\n",
        " ",
        "\n\n",
    ];
    let mut rng = 7u64;
    let mut buf = String::new();
    for _ in 0..40_000 {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let w = words[(rng >> 33) as usize % words.len()];
        // Sometimes only a piece of it: literals cut short must not count.
        let cut = if (rng >> 20).is_multiple_of(5) {
            w.len() / 2
        } else {
            w.len()
        };
        buf.push_str(&w[..cut.max(1).min(w.len())]);
    }
    let mut starts = Vec::new();
    crate::domain::stall::for_each_line(buf.as_bytes(), |s, _| starts.push(s));
    let lines = Lines {
        buf: buf.as_bytes(),
        starts: &starts,
    };
    let scan = |search: &LiteralSearch| {
        let mut out = Vec::new();
        c.scan_literals(search, &lines, |i, s, e, lm| out.push((i, s, e, lm)));
        out
    };
    let by_automaton = |g: &Option<LiteralGroup>| {
        g.as_ref().map(|g| LiteralGroup {
            finder: Finder::Automaton(automaton(&g.literals).unwrap_or_else(|e| panic!("{e}"))),
            literals: g.literals.clone(),
            ids: g.ids.clone(),
        })
    };
    let automaton = scan(&LiteralSearch {
        main: by_automaton(&packed.main),
        secrets: by_automaton(&packed.secrets),
    });
    let packed = scan(packed.as_ref());
    assert!(automaton.len() > 1_000, "{} lines", automaton.len());
    assert_eq!(packed, automaton);
}

#[test]
fn lines_the_literals_decide_alone_get_what_each_pattern_gives() {
    // `decide` answers from the literals' bits when no regex is needed;
    // pattern by pattern, every regex it may run, the answer is the same.
    let m = matcher(&["$ev1:hs"]);
    let c = &*m.compiled;
    assert!(c.bits.complete && c.bits.regex != 0, "{:?}", c.bits);
    let lines = [
        PLAIN,
        KE1_ACCESS,
        KE1_ADD,
        TO_DEVICE,
        "One time key signed_curve25519:AAAAHQ already exists. Old key: x",
        "One time key already exists",
        "keys/upload 400 \"POST /_matrix/client/v3/keys/upload HTTP/1.1\"",
        "Processed request: 0.1sec/0.0sec 2B 500 \"PUT /_matrix/client/v3/sendToDevice/m.room.encrypted/1 HTTP/1.1\"",
        "Dropping to-device messages for unknown devices",
        "Failed to send delayed event msc4140",
        "Delayed event not found",
        "delayed_event access_token=syt_x",
        "Storing to-device messages for @a:hs D1",
        "Adding one_time_keys dict_keys([]) for device 'D' for user '@a:hs'",
        "$ev1:hs to_device",
        "password",
    ];
    let mut fast = 0;
    for l in lines {
        let masks = c.masks_of(l.as_bytes());
        let needs_regex = c.bits.regex & !masks.certain & (masks.possible | c.bits.no_literals);
        fast += usize::from(needs_regex == 0);
        assert_eq!(
            c.decide(l.as_bytes(), masks),
            c.decide_by_pattern(l.as_bytes(), masks),
            "{l}"
        );
    }
    // Both ways are taken.
    assert!(
        fast > 3 && fast < lines.len(),
        "{fast} of {} decided by bits",
        lines.len()
    );
}

/// The literal search split in two against one search of every literal,
/// on a real-shaped log: `CALLCAP_SCAN_LOG=PATH cargo test --release --lib
/// literal_search_split_throughput -- --ignored --nocapture` (the README's
/// figures: the storm profile of `bench/gen_synapse_log.py`, cut to 0.3 GB).
/// Without the variable it times 200,000 generated lines, most of them KE
/// lines, instead.
#[test]
#[ignore]
fn literal_search_split_throughput() {
    let buf = crate::domain::bench_log_or(|| {
        let mut b = String::new();
        for i in 0..200_000u32 {
            let line = match i % 5 {
                0 | 1 => KE1_ACCESS,
                2 => TO_DEVICE,
                3 => KE1_ADD,
                _ => PLAIN,
            };
            b.push_str(line);
            b.push('\n');
        }
        b.into_bytes()
    });
    let mut starts = Vec::new();
    crate::domain::stall::for_each_line(&buf, |s, _| starts.push(s));
    let lines = Lines {
        buf: &buf,
        starts: &starts,
    };
    let m = matcher(&[]);
    let c = &*m.compiled;
    let Prefilter::Literals(split) = &c.prefilter else {
        panic!("no literal search");
    };
    // The same literals, as one search and as each half alone.
    let groups: Vec<&LiteralGroup> = split.main.iter().chain(split.secrets.iter()).collect();
    let literals: Vec<Vec<u8>> = groups.iter().flat_map(|g| g.literals.clone()).collect();
    let ids: Vec<usize> = groups.iter().flat_map(|g| g.ids.clone()).collect();
    let mut by_id = vec![Vec::new(); ids.iter().max().map_or(0, |m| m + 1)];
    for (l, &id) in literals.iter().zip(&ids) {
        by_id[id] = l.clone();
    }
    let one =
        LiteralSearch::new(&by_id, &vec![false; by_id.len()]).unwrap_or_else(|e| panic!("{e}"));
    let half = |g: &Option<LiteralGroup>| {
        g.as_ref().map(|g| LiteralGroup {
            finder: Finder::build(&g.literals).unwrap_or_else(|e| panic!("{e}")),
            literals: g.literals.clone(),
            ids: g.ids.clone(),
        })
    };
    let main_only = LiteralSearch {
        main: half(&split.main),
        secrets: None,
    };
    let secrets_only = LiteralSearch {
        main: None,
        secrets: half(&split.secrets),
    };
    for round in 0..3 {
        let mut landed = Vec::new();
        for (name, search) in [
            ("split", split.as_ref()),
            ("one search", &one),
            ("frequent literals alone", &main_only),
            ("secret literals alone", &secrets_only),
        ] {
            let t = std::time::Instant::now();
            let mut n = 0usize;
            c.scan_literals(search, &lines, |_, _, _, _| n += 1);
            println!(
                "round {round}: {name}: {:.3} s for {} MB ({n} lines)",
                t.elapsed().as_secs_f64(),
                buf.len() / 1_000_000
            );
            landed.push(n);
        }
        // The split lands on the lines one search does, and on some.
        assert!(landed[0] > 0 && landed[0] == landed[1], "{landed:?}");
    }
}
