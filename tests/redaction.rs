//! Redaction end to end. A property test plants generated credentials of
//! every rule in every carrier (log line, diag message, HAR header, cookie,
//! query string, form body, JSON body at depth, URL) and checks that no
//! file of the bundle holds one (raw, URL-encoded or inside a base64 body)
//! while the public keys and ids planted beside them are all there.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/bundle.rs"]
mod support;

#[path = "support/secrets.rs"]
mod secrets;

use base64::Engine;
use secrets::*;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use support::*;

/// How a rule's secret is written.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// Recognisable by itself.
    Shape,
    /// The value of one of the rule's names.
    Named,
    Bearer,
    /// `Authorization: Basic <secret>`.
    Authorization,
    /// `Cookie: session=<secret>`.
    Cookie,
    Recovery,
    /// Matched by the site rule `--redact 'ACME-[0-9]{8}'`.
    Site,
    /// OAuth's authorization code, in a URL.
    Code,
    /// A binary HAR body or WebSocket frame holding the secret.
    Body,
}

struct Gen {
    rule: &'static str,
    kind: Kind,
    names: &'static [&'static str],
    make: fn(&mut Rng) -> String,
}

const SITE_RULE: &str = "ACME-[0-9]{8}";

const RULES: &[Gen] = &[
    Gen {
        rule: "synapse-token",
        kind: Kind::Shape,
        names: &[],
        make: synapse_token,
    },
    Gen {
        rule: "mas-token",
        kind: Kind::Shape,
        names: &[],
        make: mas_token,
    },
    Gen {
        rule: "jwt",
        kind: Kind::Shape,
        names: &[],
        make: jwt,
    },
    Gen {
        rule: "macaroon",
        kind: Kind::Shape,
        names: &[],
        make: macaroon,
    },
    Gen {
        rule: "bearer",
        kind: Kind::Bearer,
        names: &[],
        make: opaque,
    },
    Gen {
        rule: "password",
        kind: Kind::Named,
        names: &[
            "password",
            "new_password",
            "passwd",
            "Password",
            "PASSWORD",
            "newPassword",
            "passphrase",
            "credential",
        ],
        make: password,
    },
    Gen {
        rule: "token",
        kind: Kind::Named,
        names: &[
            "access_token",
            "refresh_token",
            "id_token",
            "login_token",
            "loginToken",
            "token",
            "registration_token",
            "ACCESS_TOKEN",
            "accessToken",
            "device_code",
        ],
        make: opaque,
    },
    Gen {
        rule: "token",
        kind: Kind::Code,
        names: &["code"],
        make: opaque,
    },
    Gen {
        rule: "secret",
        kind: Kind::Named,
        names: &[
            "client_secret",
            "secret",
            "code_verifier",
            "csrf",
            "clientSecret",
            "CLIENT_SECRET",
            "codeVerifier",
        ],
        make: opaque,
    },
    Gen {
        rule: "authorization",
        kind: Kind::Authorization,
        names: &["Authorization"],
        make: basic_credentials,
    },
    Gen {
        rule: "cookie",
        kind: Kind::Cookie,
        names: &["Cookie"],
        make: opaque,
    },
    Gen {
        rule: "recovery-key",
        kind: Kind::Recovery,
        names: &[],
        make: recovery_key,
    },
    Gen {
        rule: "site-1",
        kind: Kind::Site,
        names: &[],
        make: acme,
    },
    Gen {
        rule: "unreadable-body",
        kind: Kind::Body,
        names: &[],
        make: opaque,
    },
];

fn basic_credentials(rng: &mut Rng) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("alice:{}", password(rng)))
}

fn acme(rng: &mut Rng) -> String {
    format!("ACME-{}", rng.from("0123456789", 8))
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Carrier {
    LogLine,
    DiagMessage,
    HarHeader,
    Cookie,
    QueryString,
    FormBody,
    JsonBody,
    Url,
}

const CARRIERS: [Carrier; 8] = [
    Carrier::LogLine,
    Carrier::DiagMessage,
    Carrier::HarHeader,
    Carrier::Cookie,
    Carrier::QueryString,
    Carrier::FormBody,
    Carrier::JsonBody,
    Carrier::Url,
];

struct Planted {
    rule: &'static str,
    carrier: Carrier,
    secret: String,
    evidence: Evidence,
}

/// A generated capture: log lines, diag entries, HAR entries.
#[derive(Default)]
struct Generated {
    log: Vec<String>,
    diag: Vec<Value>,
    har: Vec<Value>,
    planted: Vec<Planted>,
}

/// The secret as it is written: (name it goes under, value as written).
fn written(g: &Gen, rng: &mut Rng, secret: &str) -> (String, String) {
    match g.kind {
        Kind::Named | Kind::Code => (rng.pick(g.names).to_string(), secret.to_string()),
        Kind::Authorization => ("Authorization".into(), format!("Basic {secret}")),
        Kind::Cookie => ("Cookie".into(), format!("session={secret}; theme=dark")),
        Kind::Bearer => ("X-Note".into(), format!("Bearer {secret}")),
        _ => ("x".into(), secret.to_string()),
    }
}

/// The secret in free text, in one of the forms it takes there.
fn free_text(g: &Gen, rng: &mut Rng, name: &str, value: &str) -> String {
    match g.kind {
        Kind::Named => match rng.below(7) {
            0 => format!("{name}={value}"),
            1 => format!("{name}: {value}"),
            2 => format!("{{\"{name}\": \"{value}\", \"type\": \"m.login.password\"}}"),
            3 => format!("{{'type': 'm.login.password', '{name}': '{value}', 'session': 'S'}}"),
            4 => format!("{name}=\"{value}\""),
            5 => format!(
                "\"GET /_matrix/client/v3/x?since=s1&{name}={} HTTP/1.1\"",
                url_encode(value)
            ),
            _ => format!("{{'{name}': \"{value}\"}}"),
        },
        Kind::Shape => match rng.below(4) {
            0 => value.to_string(),
            1 => format!("{{\"x\": \"{value}\"}}"),
            2 => format!("\"GET /x?a=1&x={value}&b=2 HTTP/1.1\""),
            _ => format!("using {value}."),
        },
        Kind::Code => format!("redirect to https://app.lotus.example/cb?code={value}&state=s1"),
        Kind::Authorization | Kind::Cookie => format!("{name}: {value}"),
        Kind::Recovery => format!("recovery key {value}"),
        _ => value.to_string(),
    }
}

fn plant(rng: &mut Rng, g: &Gen, carrier: Carrier, n: usize, out: &mut Generated) {
    let secret = (g.make)(rng);
    let evidence = Evidence::new(rng, n);
    let (name, value) = written(g, rng, &secret);
    let text = free_text(g, rng, &name, &value);
    let at = format!(
        "2026-06-30 18:{:02}:{:02},{:03}",
        n / 3600 % 60,
        n / 60 % 60,
        n % 1000
    );
    let ev = evidence.text();
    // The query parameter or form field it goes in.
    let (qn, qv) = match g.kind {
        Kind::Named | Kind::Code => (name.clone(), value.clone()),
        Kind::Authorization => ("authorization".into(), value.clone()),
        Kind::Cookie => ("cookie".into(), format!("session={secret}")),
        _ => ("x".into(), value.clone()),
    };
    let evidence_params = json!([
        {"name": "key", "value": evidence.key},
        {"name": "event_id", "value": evidence.event_id},
        {"name": "device_id", "value": evidence.device_id},
    ]);
    let evidence_headers = json!([{"name": "X-Evidence", "value": ev}]);
    let mut entry = json!({
        "startedDateTime": "2026-06-30T18:00:00.000Z",
        "request": {"method": "POST", "url": format!("https://matrix.lotus.example/_matrix/client/v3/r{n}"),
            "headers": evidence_headers.clone(), "cookies": [], "queryString": []},
        "response": {"status": 200, "headers": [], "content": {"mimeType": "text/plain", "text": "ok"}},
    });
    match (carrier, g.kind) {
        (_, Kind::Body) if carrier != Carrier::JsonBody => return,
        (Carrier::LogLine, _) => out.log.push(format!(
            "{at} - synapse.handlers.x - 1 - INFO - {} - {text} {ev}",
            evidence.request_id
        )),
        (Carrier::DiagMessage, _) => out.diag.push(json!({
            "ts": 1_782_842_400_000i64 + n as i64, "level": "info",
            "message": format!("{text} {ev}"),
        })),
        (Carrier::HarHeader, _) => {
            let header = match g.kind {
                Kind::Named | Kind::Authorization | Kind::Cookie | Kind::Bearer => {
                    json!({"name": name, "value": value})
                }
                _ => json!({"name": "X-Debug", "value": text}),
            };
            entry["request"]["headers"]
                .as_array_mut()
                .unwrap()
                .push(header);
        }
        (Carrier::Cookie, _) => {
            entry["request"]["cookies"] =
                json!([{"name": "c", "value": value}, {"name": "theme", "value": "dark"}]);
        }
        (Carrier::QueryString, _) => {
            entry["request"]["url"] = json!(format!(
                "https://h.example/p?{}={}",
                url_encode(&qn),
                url_encode(&qv)
            ));
            let mut qs = evidence_params.clone();
            qs.as_array_mut()
                .unwrap()
                .push(json!({"name": qn, "value": qv}));
            entry["request"]["queryString"] = qs;
        }
        (Carrier::FormBody, _) => {
            let mut params = evidence_params.clone();
            params
                .as_array_mut()
                .unwrap()
                .push(json!({"name": qn, "value": qv}));
            let text = params
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    format!(
                        "{}={}",
                        url_encode(p["name"].as_str().unwrap()),
                        url_encode(p["value"].as_str().unwrap())
                    )
                })
                .collect::<Vec<_>>()
                .join("&");
            entry["request"]["postData"] = json!({"mimeType": "application/x-www-form-urlencoded", "text": text, "params": params});
        }
        (Carrier::JsonBody, Kind::Body) => {
            // A binary body (not UTF-8) holding the secret's bytes.
            let mut bytes = vec![0xff, 0xfe, 0x00];
            bytes.extend_from_slice(secret.as_bytes());
            entry["response"]["content"] = json!({"mimeType": "application/octet-stream", "encoding": "base64",
                "text": base64::engine::general_purpose::STANDARD.encode(&bytes)});
            entry["request"]["url"] =
                json!(format!("https://h.example/p?device={}", evidence.device_id));
            entry["_webSocketMessages"] = json!([
                {"type": "receive", "time": 1.0, "opcode": 2, "data": base64::engine::general_purpose::STANDARD.encode(&bytes)},
                {"type": "send", "time": 1.1, "opcode": 1, "data": ev},
            ]);
        }
        (Carrier::JsonBody, _) => {
            let (key, value) = match g.kind {
                Kind::Named | Kind::Authorization | Kind::Cookie => (name.clone(), value.clone()),
                _ => ("x".to_string(), text.clone()),
            };
            let body =
                json!({"data": {"items": [{"id": 1}, {(key): value, "evidence": ev}]}}).to_string();
            entry["response"]["content"] = if rng.below(2) == 0 {
                json!({"mimeType": "application/json", "text": body})
            } else {
                json!({"mimeType": "application/json", "encoding": "base64",
                    "text": base64::engine::general_purpose::STANDARD.encode(&body)})
            };
        }
        (Carrier::Url, _) => {
            let url = format!(
                "https://app.lotus.example/cb?{}={}&event={}&key={}",
                url_encode(&qn),
                url_encode(&qv),
                url_encode(&evidence.event_id),
                url_encode(&evidence.key)
            );
            entry["request"]["url"] = json!(url);
            entry["response"]["redirectURL"] = json!(url);
            entry["response"]["headers"] =
                json!([{"name": "Location", "value": url}, {"name": "Referer", "value": url}]);
        }
    }
    if carrier != Carrier::LogLine && carrier != Carrier::DiagMessage {
        out.har.push(entry);
    }
    out.planted.push(Planted {
        rule: g.rule,
        carrier,
        secret,
        evidence,
    });
}

fn generate(seed: u64) -> Generated {
    let mut rng = Rng::new(seed);
    let mut out = Generated::default();
    let mut n = 0;
    for g in RULES {
        for &c in &CARRIERS {
            n += 1;
            plant(&mut rng, g, c, n, &mut out);
            // Clean lines between the planted ones.
            out.log.push(format!(
                "2026-06-30 18:00:00,{:03} - synapse.handlers.presence - 1 - INFO - sentinel - Handling presence timeouts",
                n % 1000
            ));
        }
    }
    out
}

/// Writes the capture and runs `analyze` on it in this process; returns
/// the bundle.
fn analyze(dir: &Path, g: &Generated) -> PathBuf {
    let log = dir.join("homeserver.log");
    std::fs::write(&log, g.log.join("\n") + "\n").unwrap();
    let diag = dir.join("lotus-crypto-diag-1782842500000.json");
    let report = json!({"sdkVersion": "41.6.0", "deviceId": "RWDSUMBAID", "userId": "@alice:lotus.example", "entries": g.diag});
    std::fs::write(&diag, serde_json::to_vec_pretty(&report).unwrap()).unwrap();
    let har = dir.join("capture.har");
    let h = json!({"log": {"version": "1.2", "creator": {"name": "WebInspector", "version": "537.36"}, "pages": [], "entries": g.har}});
    std::fs::write(&har, serde_json::to_vec_pretty(&h).unwrap()).unwrap();
    let out = dir.join("out");
    let args = [
        "callcap",
        "analyze",
        "--log",
        log.to_str().unwrap(),
        "--diag",
        diag.to_str().unwrap(),
        "--har",
        har.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--redact",
        SITE_RULE,
    ];
    let cli = <callcap::cli::Cli as clap::Parser>::try_parse_from(args).unwrap();
    let Some(callcap::cli::Cmd::Analyze(a)) = cli.command else {
        panic!("not analyze")
    };
    callcap::analyze::run(&a).unwrap()
}

fn leaks(files: &[(String, String)], secret: &str) -> Vec<String> {
    let forms = [
        secret.to_string(),
        url_encode(secret),
        url_encode(secret).replace("%20", "+"),
        // As report.html writes text (HTML-escaped) and its JSON block.
        secret
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;"),
        secret
            .replace('<', "\\u003c")
            .replace('>', "\\u003e")
            .replace('&', "\\u0026"),
    ];
    files
        .iter()
        .filter(|(_, text)| forms.iter().any(|f| text.contains(f.as_str())))
        .map(|(p, _)| p.clone())
        .collect()
}

#[test]
fn generated_secrets_in_every_carrier_never_reach_the_bundle_and_the_evidence_beside_them_does() {
    for seed in 1..=10u64 {
        let tmp = tempfile::tempdir().unwrap();
        let g = generate(seed);
        let bundle = analyze(tmp.path(), &g);
        let files = bundle_text(&bundle);
        let in_file = |name: &str| -> String {
            files
                .iter()
                .filter(|(p, _)| p.ends_with(name))
                .map(|(_, t)| t.as_str())
                .collect()
        };
        let (log, diag, har) = (
            in_file("server/homeserver.log"),
            in_file(".json"),
            in_file("capture.har"),
        );
        let mut failures = Vec::new();
        for p in &g.planted {
            let where_ = leaks(&files, &p.secret);
            if !where_.is_empty() {
                failures.push(format!(
                    "seed {seed}: {} secret {:?} in {:?} survived in {where_:?}",
                    p.rule, p.secret, p.carrier
                ));
            }
            let home = match p.carrier {
                Carrier::LogLine => &log,
                Carrier::DiagMessage => &diag,
                _ => &har,
            };
            for e in p.evidence.all() {
                // A form body holds the evidence URL-encoded.
                if !home.contains(e) && !home.contains(&url_encode(e)) {
                    failures.push(format!(
                        "seed {seed}: evidence {e:?} beside a {} secret in {:?} was lost",
                        p.rule, p.carrier
                    ));
                }
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        // Every line is kept, and every rule is counted.
        let kept = std::fs::read(bundle.join("server/homeserver.log")).unwrap();
        assert_eq!(count_lines(&kept), g.log.len());
        let m = manifest(&bundle);
        for g in RULES {
            let n = m["redactions_by_rule"][g.rule]["count"]
                .as_u64()
                .unwrap_or(0);
            assert!(n > 0, "seed {seed}: nothing counted for {}", g.rule);
        }
        assert_eq!(m["redactions_by_rule"]["site-1"]["origin"], "--redact #1");
        verify_checksums(&bundle);
        // The HAR copy is still a HAR with every entry.
        let raw = std::fs::read(bundle.join("client/capture.har")).unwrap();
        let copy: Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(
            copy["log"]["entries"].as_array().unwrap().len(),
            g.har.len()
        );
    }
}

// ---------------------------------------------------------------------------
// A capture of a deployment that signs in through MAS and calls through
// Element Call, with every credential the bundle used to leak and those it
// already kept out, beside a real KE-1 conflict.

const STORED_KEY: &str = "ZmRrSmtRbGZq+2Fnc3dOb2xL/0jT0AbPq9cT3bE4WfM";
const UPLOADED_KEY: &str = "cXdlcnR5dWlv+GFzZGZnaGpr/2Kd9XqLm3nB4vC5xZa";
const KEY_ID: &str = "signed_curve25519:AAAAAAAAAFA";
const EVENT_ID: &str = "$SASBBzoqjKaSXyzT3dGXoeyJ1EXHr8-cmYpAWTQDMeE";

struct Credentials {
    log_password: String,
    diag_password: String,
    uia_password: String,
    form_password: String,
    form_csrf: String,
    mat: String,
    mct: String,
    mar: String,
    login_token: String,
    livekit_jwt: String,
    id_token: String,
    syt: String,
    syr: String,
    query_access_token: String,
    client_secret: String,
    bearer: String,
    cookie: String,
    set_cookie: String,
    login_password: String,
    turn_password: String,
    openid_token: String,
    recovery_key: String,
    oauth_code: String,
    code_verifier: String,
}

impl Credentials {
    fn new(rng: &mut Rng) -> Credentials {
        let mut mas = |prefix: &str| loop {
            let t = mas_token(rng);
            if t.starts_with(prefix) {
                return t;
            }
        };
        let (mat, mct, mar) = (mas("mat_"), mas("mct_"), mas("mar_"));
        let mut syn = |prefix: &str| loop {
            let t = synapse_token(rng);
            if t.starts_with(prefix) {
                return t;
            }
        };
        let (syt, syr) = (syn("syt_"), syn("syr_"));
        Credentials {
            log_password: password(rng),
            diag_password: password(rng),
            uia_password: password(rng),
            form_password: password(rng),
            form_csrf: opaque(rng),
            mat,
            mct,
            mar,
            login_token: opaque(rng),
            livekit_jwt: jwt(rng),
            id_token: jwt(rng),
            syt,
            syr,
            query_access_token: opaque(rng),
            client_secret: opaque(rng),
            bearer: opaque(rng),
            cookie: opaque(rng),
            set_cookie: opaque(rng),
            login_password: password(rng),
            turn_password: opaque(rng),
            openid_token: opaque(rng),
            recovery_key: recovery_key(rng),
            oauth_code: opaque(rng),
            code_verifier: opaque(rng),
        }
    }

    fn all(&self) -> Vec<&str> {
        vec![
            &self.log_password,
            &self.diag_password,
            &self.uia_password,
            &self.form_password,
            &self.form_csrf,
            &self.mat,
            &self.mct,
            &self.mar,
            &self.login_token,
            &self.livekit_jwt,
            &self.id_token,
            &self.syt,
            &self.syr,
            &self.query_access_token,
            &self.client_secret,
            &self.bearer,
            &self.cookie,
            &self.set_cookie,
            &self.login_password,
            &self.turn_password,
            &self.openid_token,
            &self.recovery_key,
            &self.oauth_code,
            &self.code_verifier,
        ]
    }
}

fn server_log(c: &Credentials) -> Vec<String> {
    let t = |s: u32| format!("2026-06-30 18:00:{s:02},000");
    vec![
        format!(
            "{} - synapse.handlers.e2e_keys - 955 - INFO - POST-5001 - Adding one_time_keys dict_keys(['{KEY_ID}']) for device 'RWDSUMBAID' for user '@alice:lotus.example' at 1782842401000",
            t(1)
        ),
        format!(
            "{} - synapse.http.server - 131 - INFO - POST-5001 - <XForwardedForRequest at 0x7f3a2c1d0e50 method='POST' uri='/_matrix/client/v3/keys/upload' clientproto='HTTP/1.1' site='8008'> SynapseError: 400 - One time key {KEY_ID} already exists. Old key: {{\"key\":\"{STORED_KEY}\",\"signatures\":{{\"@alice:lotus.example\":{{\"ed25519:RWDSUMBAID\":\"c2lnMQ\"}}}}}}; new key: {{'key': '{UPLOADED_KEY}', 'signatures': {{'@alice:lotus.example': {{'ed25519:RWDSUMBAID': 'c2lnMg'}}}}}}",
            t(1)
        ),
        format!(
            "{} - synapse.access.http.8008 - 521 - INFO - POST-5001 - 192.0.2.10 - 8008 - {{@alice:lotus.example}} Processed request: 0.006sec/0.000sec ru=(0.002sec, 0.000sec) db=(0.000sec/0.004sec/3) 528B 400 \"POST /_matrix/client/v3/keys/upload HTTP/1.1\" \"Mozilla/5.0\" [0 dbevts]",
            t(1)
        ),
        format!(
            "{} - synapse.rest.admin.users - 1 - INFO - POST-5002 - registering @bob:lotus.example password={} admin=false",
            t(2),
            c.log_password
        ),
        format!(
            "{} - synapse.handlers.ui_auth - 1 - DEBUG - POST-5003 - auth dict {{'type': 'm.login.password', 'identifier': {{'type': 'm.id.user', 'user': 'alice'}}, 'password': '{}', 'session': 'xKQmSession'}}",
            t(3),
            c.uia_password
        ),
        format!(
            "{} - synapse.api.auth.msc3861_delegated - 1 - WARNING - GET-5004 - Failed to introspect {}: 503 Service Unavailable",
            t(4),
            c.mat
        ),
        format!(
            "{} - synapse.access.http.8008 - 521 - INFO - GET-5005 - 192.0.2.10 - 8008 - {{None}} Processed request: 0.002sec/0.000sec ru=(0.001sec, 0.000sec) db=(0.000sec/0.000sec/0) 0B 302 \"GET /_synapse/client/sso_complete?redirectUrl=https%3A%2F%2Fapp.lotus.example%2F&loginToken={} HTTP/1.1\" \"Mozilla/5.0\" [0 dbevts]",
            t(5),
            c.login_token
        ),
        format!(
            "{} - synapse.access.http.8008 - 521 - INFO - GET-5006 - 192.0.2.10 - 8008 - {{None}} Processed request: 0.002sec/0.000sec ru=(0.001sec, 0.000sec) db=(0.000sec/0.000sec/0) 0B 200 \"GET /_synapse/client/oidc/callback?code={}&state=s1 HTTP/1.1\" \"Mozilla/5.0\" [0 dbevts]",
            t(6),
            c.oauth_code
        ),
        format!(
            "{} - synapse.storage.SQL - 1 - DEBUG - GET-5007 - [SQL values] {{get_user_by_access_token-123}} ('{}',)",
            t(7),
            c.syt
        ),
        format!(
            "{} - synapse.handlers.auth - 1 - DEBUG - POST-5008 - refreshing with {}",
            t(8),
            c.syr
        ),
        format!(
            "{} - synapse.http.client - 460 - INFO - GET-5009 - Sending request GET https://lotus.example/_matrix/client/v3/account/whoami?access_token={}&client_secret={}",
            t(9),
            c.query_access_token,
            c.client_secret
        ),
        format!(
            "{} - synapse.http.client - 1 - DEBUG - GET-5010 - headers: Authorization: Bearer {}",
            t(10),
            c.bearer
        ),
        format!(
            "{} - synapse.handlers.message - 1 - INFO - PUT-5011 - Persisted event {EVENT_ID} in !call:lotus.example",
            t(11)
        ),
        format!(
            "{} - synapse.rest.client.keys - 1 - DEBUG - PUT-5012 - backup recovery key {}",
            t(12),
            c.recovery_key
        ),
    ]
}

fn diag(c: &Credentials) -> Value {
    json!({
        "sdkVersion": "41.6.0", "deviceId": "RWDSUMBAID", "userId": "@alice:lotus.example",
        "entries": [
            {"ts": 1782842401000i64, "level": "error", "ke": "KE-1",
             "message": format!("POST /_matrix/client/v3/keys/upload 400 M_UNKNOWN: One time key {KEY_ID} already exists. Old key: {{\"key\":\"{STORED_KEY}\"}}; new key: {{'key': '{UPLOADED_KEY}'}}")},
            {"ts": 1782842402000i64, "level": "info", "message": format!("retrying login password={} for RWDSUMBAID", c.diag_password)},
            {"ts": 1782842403000i64, "level": "info", "message": format!("[MatrixClient] compat session {} for RWDSUMBAID", c.mct)},
            {"ts": 1782842404000i64, "level": "info", "message": format!("[LiveKit] connecting to wss://sfu.lotus.example with {}", c.livekit_jwt)},
            {"ts": 1782842405000i64, "level": "warn", "ke": "KE-3",
             "message": format!("Error decrypting event (id={EVENT_ID} type=m.room.encrypted sender=@bob:lotus.example room=!call:lotus.example ts=1782842405000): DecryptionError[msg: missing field `algorithm` at line 1 column 138, sender_key: undefined, session_id: undefined]")},
        ]
    })
}

fn har(c: &Credentials) -> Value {
    let b64 = |v: &Value| base64::engine::general_purpose::STANDARD.encode(v.to_string());
    let entry = |method: &str,
                 url: String,
                 headers: Value,
                 post: Value,
                 status: u16,
                 resp_headers: Value,
                 content: Value| {
        json!({"startedDateTime": "2026-06-30T18:00:01.000Z", "time": 12,
            "request": {"method": method, "url": url, "headers": headers, "cookies": [], "queryString": [], "postData": post},
            "response": {"status": status, "headers": resp_headers, "cookies": [], "content": content, "redirectURL": ""}})
    };
    let text = |mime: &str, t: String| json!({"mimeType": mime, "text": t});
    let mut entries = vec![
        // The MAS login form.
        entry("POST", "https://auth.lotus.example/login".into(),
            json!([{"name": "Cookie", "value": format!("mas-session={}", c.cookie)}]),
            json!({"mimeType": "application/x-www-form-urlencoded",
                "text": format!("csrf={}&username=alice&password={}", c.form_csrf, url_encode(&c.form_password)),
                "params": [{"name": "csrf", "value": c.form_csrf}, {"name": "username", "value": "alice"}, {"name": "password", "value": c.form_password}]}),
            302, json!([{"name": "Set-Cookie", "value": format!("mas-session={}; Path=/; HttpOnly", c.set_cookie)},
                         {"name": "Location", "value": format!("https://app.lotus.example/?loginToken={}", c.login_token)}]),
            text("text/html", String::new())),
        // Back to the client with a loginToken.
        entry("GET", format!("https://app.lotus.example/?loginToken={}", c.login_token),
            json!([{"name": "Referer", "value": "https://auth.lotus.example/login"}]), Value::Null, 200, json!([]),
            text("text/html", "<html></html>".into())),
        // The OAuth code exchange with MAS (tokens in a base64 body).
        entry("POST", "https://auth.lotus.example/oauth2/token".into(), json!([]),
            text("application/x-www-form-urlencoded", format!("grant_type=authorization_code&code={}&code_verifier={}&client_id=01J", c.oauth_code, c.code_verifier)),
            200, json!([]),
            json!({"mimeType": "application/json", "encoding": "base64", "text": b64(&json!({
                "access_token": c.mat, "refresh_token": c.mar, "id_token": c.id_token, "token_type": "Bearer", "expires_in": 300}))})),
        // Password login (JSON body), and its access token.
        entry("POST", "https://matrix.lotus.example/_matrix/client/v3/login".into(), json!([]),
            text("application/json", json!({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "alice"}, "password": c.login_password}).to_string()),
            200, json!([]), text("application/json", json!({"access_token": c.syt, "device_id": "RWDSUMBAID", "user_id": "@alice:lotus.example"}).to_string())),
        // TURN credentials.
        entry("GET", "https://matrix.lotus.example/_matrix/client/v3/voip/turnServer".into(),
            json!([{"name": "Authorization", "value": format!("Bearer {}", c.syt)}]), Value::Null, 200, json!([]),
            text("application/json", json!({"username": "1782846000:@alice:lotus.example", "password": c.turn_password, "uris": ["turn:turn.lotus.example"], "ttl": 86400}).to_string())),
        // The OpenID token, then the LiveKit token from lk-jwt-service.
        entry("POST", "https://matrix.lotus.example/_matrix/client/v3/user/@alice:lotus.example/openid/request_token".into(),
            json!([{"name": "Authorization", "value": format!("Bearer {}", c.syt)}]), text("application/json", "{}".into()), 200, json!([]),
            text("application/json", json!({"access_token": c.openid_token, "token_type": "Bearer", "matrix_server_name": "lotus.example", "expires_in": 3600}).to_string())),
        entry("POST", "https://jwt.lotus.example/sfu/get".into(), json!([]),
            text("application/json", json!({"room": "!call:lotus.example", "openid_token": {"access_token": c.openid_token, "token_type": "Bearer", "matrix_server_name": "lotus.example"}, "device_id": "RWDSUMBAID"}).to_string()),
            200, json!([]), text("application/json", json!({"url": "wss://sfu.lotus.example", "jwt": c.livekit_jwt}).to_string())),
        // The refused keys/upload (the Q1 smoking gun).
        entry("POST", "https://matrix.lotus.example/_matrix/client/v3/keys/upload".into(),
            json!([{"name": "Authorization", "value": format!("Bearer {}", c.syt)}]),
            text("application/json", json!({"one_time_keys": {KEY_ID: {"key": UPLOADED_KEY, "signatures": {"@alice:lotus.example": {"ed25519:RWDSUMBAID": "c2lnMg"}}}}}).to_string()),
            400, json!([]),
            text("application/json", json!({"errcode": "M_UNKNOWN", "error": format!("One time key {KEY_ID} already exists. Old key: {{\"key\":\"{STORED_KEY}\"}}; new key: {{'key': '{UPLOADED_KEY}'}}")}).to_string())),
    ];
    entries[1]["request"]["queryString"] = json!([{"name": "loginToken", "value": c.login_token}]);
    json!({"log": {"version": "1.2", "creator": {"name": "WebInspector", "version": "537.36"}, "pages": [], "entries": entries}})
}

#[test]
fn a_capture_with_every_credential_and_a_ke1_conflict_keeps_the_evidence_and_no_secret() {
    let tmp = tempfile::tempdir().unwrap();
    let c = Credentials::new(&mut Rng::new(18));
    let lines = server_log(&c);
    let log = tmp.path().join("homeserver.log");
    std::fs::write(&log, lines.join("\n") + "\n").unwrap();
    let d = tmp.path().join("lotus-crypto-diag-1782842405000.json");
    std::fs::write(&d, serde_json::to_vec_pretty(&diag(&c)).unwrap()).unwrap();
    let h = tmp.path().join("lotus.har");
    std::fs::write(&h, serde_json::to_vec_pretty(&har(&c)).unwrap()).unwrap();
    let out = tmp.path().join("out");
    let bundle = callcap_bundle(&[
        "analyze",
        "--log",
        log.to_str().unwrap(),
        "--diag",
        d.to_str().unwrap(),
        "--har",
        h.to_str().unwrap(),
        "--user-id",
        "@alice:lotus.example",
        "--device-id",
        "RWDSUMBAID",
        "--out",
        out.to_str().unwrap(),
    ]);
    let files = bundle_text(&bundle);
    let mut leaked = Vec::new();
    for s in c.all() {
        let w = leaks(&files, s);
        if !w.is_empty() {
            leaked.push(format!("{s:?} in {w:?}"));
        }
    }
    assert!(
        leaked.is_empty(),
        "{} credentials leaked:\n{}",
        leaked.len(),
        leaked.join("\n")
    );
    // The evidence survives byte for byte, every line is kept.
    let text = |rel: &str| std::fs::read_to_string(bundle.join(rel)).unwrap();
    for rel in [
        "server/homeserver.log",
        "server/KE-1.log",
        "client/lotus.har",
        "client/lotus-crypto-diag-1782842405000.json",
    ] {
        for e in [STORED_KEY, UPLOADED_KEY, "AAAAAAAAAFA"] {
            assert!(text(rel).contains(e), "{e} lost from {rel}");
        }
    }
    assert!(text("server/homeserver.log").contains(EVENT_ID));
    assert!(text("server/KE-3.log").contains(EVENT_ID));
    assert_eq!(
        count_lines(text("server/homeserver.log").as_bytes()),
        lines.len()
    );
    verify_checksums(&bundle);
    // Q1 still reads the conflict from the redacted evidence.
    let m = manifest(&bundle);
    let cited = assert_basis_resolves(&bundle);
    assert!(
        cited
            .iter()
            .any(|(q, _, t)| q == "Q1" && t.contains("AAAAAAAAAFA")),
        "{cited:?}"
    );
    // Counted by rule in the manifest and the report (counts, no values).
    let by_rule = &m["redactions_by_rule"];
    // (`Authorization: Bearer …` counts as authorization.)
    for rule in [
        "password",
        "mas-token",
        "jwt",
        "token",
        "secret",
        "synapse-token",
        "cookie",
        "recovery-key",
        "authorization",
    ] {
        assert!(
            by_rule[rule]["count"].as_u64().unwrap_or(0) > 0,
            "{rule}: {by_rule}"
        );
    }
    assert_eq!(
        m["redactions"]["server/homeserver.log"].as_u64(),
        Some(
            by_rule
                .as_object()
                .unwrap()
                .values()
                .filter_map(|r| r["files"]["server/homeserver.log"].as_u64())
                .sum()
        )
    );
    let report = text("report.md");
    assert!(
        report.contains("## Redactions") && report.contains("| `mas-token` |"),
        "{report}"
    );
}

#[test]
fn a_bad_redact_pattern_is_exit_2_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("homeserver.log");
    std::fs::write(&log, "x\n").unwrap();
    for (pattern, why) in [
        ("ACME-[0-9", "is not a regular expression"),
        ("a*", "can match an empty string"),
    ] {
        let out = callcap(&[
            "analyze",
            "--log",
            log.to_str().unwrap(),
            "--out",
            tmp.path().to_str().unwrap(),
            "--redact",
            "ok",
            "--redact",
            pattern,
        ]);
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.starts_with(&format!("callcap: --redact #2: '{pattern}' {why}")),
            "{err}"
        );
    }
    // Nothing was started: no journal left behind.
    assert!(std::fs::read_dir(tmp.path()).unwrap().count() == 1);
}

/// Runs `callcap` with `HOME` (and so the default config) in `home`.
fn callcap_at_home(home: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(bin())
        .args(args)
        .env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap()
}

#[test]
fn site_rules_from_the_config_apply_to_replay_and_recover_and_a_bad_one_stops_them() {
    let tmp = tempfile::tempdir().unwrap();
    let secret = "ACME-31415926";
    let log = tmp.path().join("homeserver.log");
    std::fs::write(
        &log,
        format!(
            "2026-06-30 18:00:00,000 - synapse.x - 1 - INFO - GET-1 - internal ticket {secret} for @alice:lotus.example\n\
             2026-06-30 18:00:00,500 - synapse.x - 1 - INFO - GET-2 - POST /_matrix/client/v3/keys/upload\n"
        ),
    )
    .unwrap();
    // Without a site rule the value is nobody's business but the site's.
    let home = tmp.path().join("home");
    std::fs::create_dir_all(home.join(".config/callcap")).unwrap();
    let out = callcap_at_home(
        &home,
        &[
            "analyze",
            "--log",
            log.to_str().unwrap(),
            "--out",
            tmp.path().join("a").to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let a = bundle_path(&out);
    assert!(
        std::fs::read_to_string(a.join("server/homeserver.log"))
            .unwrap()
            .contains(secret)
    );

    // The config's [redact] extra: replay with it.
    let config = tmp.path().join("site.toml");
    std::fs::write(&config, "[redact]\nextra = ['ACME-[0-9]{8}']\n").unwrap();
    let out = callcap_at_home(
        &home,
        &[
            "replay",
            a.to_str().unwrap(),
            "--headless",
            "--speed",
            "1000",
            "--config",
            config.to_str().unwrap(),
            "--out",
            tmp.path().join("b").to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let b = bundle_path(&out);
    assert!(leaks(&bundle_text(&b), secret).is_empty());
    let m = manifest(&b);
    assert_eq!(
        m["redactions_by_rule"]["site-1"]["origin"],
        "[redact] extra[0]"
    );
    assert_eq!(
        m["redactions_by_rule"]["site-1"]["files"]["server/homeserver.log"],
        1
    );
    assert!(
        !std::fs::read_to_string(b.join("manifest.json"))
            .unwrap()
            .contains("ACME-[0-9]")
    );

    // recover reads the default config's [redact] section.
    std::fs::write(
        home.join(".config/callcap/config.toml"),
        "[redact]\nextra = ['ACME-[0-9]{8}']\n",
    )
    .unwrap();
    let journal = tmp.path().join("c/.callcap-journal-20260630T180000.000Z-1");
    std::fs::create_dir_all(&journal).unwrap();
    for rel in ["server/homeserver.log", "journal.jsonl"] {
        std::fs::create_dir_all(journal.join(rel).parent().unwrap()).unwrap();
        std::fs::copy(a.join(rel), journal.join(rel)).unwrap();
    }
    let out = callcap_at_home(&home, &["recover", journal.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let c = bundle_path(&out);
    assert!(leaks(&bundle_text(&c), secret).is_empty());

    // A bad pattern in the config stops replay and analyze before anything.
    std::fs::write(&config, "[redact]\nextra = ['ACME-[0-9']\n").unwrap();
    let out = callcap_at_home(
        &home,
        &[
            "replay",
            a.to_str().unwrap(),
            "--headless",
            "--config",
            config.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("key 'redact.extra[0]': 'ACME-[0-9' is not a regular expression"),
        "{err}"
    );
    std::fs::write(
        home.join(".config/callcap/config.toml"),
        "[redact]\nextra = ['(x']\n",
    )
    .unwrap();
    let out = callcap_at_home(
        &home,
        &[
            "analyze",
            "--log",
            log.to_str().unwrap(),
            "--out",
            tmp.path().join("d").to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("'(x' is not a regular expression"));
}
