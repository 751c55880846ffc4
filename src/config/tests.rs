use super::*;

fn path() -> &'static Path {
    Path::new("/etc/callcap/config.toml")
}

/// The error from parsing and validating `text`.
fn msg(text: &str) -> String {
    match Config::parse(text, path()).and_then(|c| c.validate(path()).map(|()| c)) {
        Ok(c) => panic!("expected an error for {text:?}, got {c:?}"),
        Err(e) => e.to_string(),
    }
}

const PREFIX: &str = "config file '/etc/callcap/config.toml': ";

fn valid(text: &str) -> Result<Config, ConfigError> {
    let c = Config::parse(text, path())?;
    c.validate(path())?;
    Ok(c)
}

#[test]
fn example_config_parses_validates_and_documents_the_defaults() -> Result<(), ConfigError> {
    let c = valid(EXAMPLE)?;
    let ssh = c.ssh.as_ref().map(|s| (s.host.as_str(), s.host_key_check));
    assert_eq!(ssh, Some(("10.10.10.4", HostKeyCheck::default())));
    let log = c.server_log.first();
    assert_eq!(
        log.and_then(|l| l.path.as_deref()),
        Some(Path::new("/var/log/matrix-synapse/homeserver.log"))
    );
    assert_eq!(
        log.and_then(|l| l.exec_prefix.as_deref()),
        Some("pct exec 151 --")
    );
    // Values the example spells out must be the real defaults, or the
    // example documents something the program does not do.
    assert_eq!(log.map(|l| l.timezone.clone()), Some(default_timezone()));
    assert_eq!(log.map(|l| l.backfill), Some(0));
    assert_eq!(
        c.client.include_existing,
        ClientConfig::default().include_existing
    );
    assert_eq!(c.analysis, AnalysisConfig::default());
    assert_eq!(c.signatures, SignaturesConfig::default());
    assert_eq!(c.redact, RedactConfig::default());
    let db = c.database.as_ref();
    assert_eq!(
        db.map(|d| d.url.as_str()),
        Some("postgres://synapse@10.10.10.44:5432/synapse")
    );
    assert_eq!(db.map(|d| d.poll_interval), Some(default_poll_interval()));
    assert_eq!(
        db.map(|d| d.statement_timeout),
        Some(default_statement_timeout())
    );
    assert_eq!(db.map(|d| d.via_ssh), Some(false));
    assert!(!c.bundle.archive);
    let dl = c.debug_loggers.as_ref();
    assert_eq!(dl.map(|d| d.loggers.clone()), Some(default_debug_loggers()));
    assert_eq!(dl.map(|d| d.reload.clone()), Some(default_reload()));
    assert_eq!(dl.map(|d| d.raise), Some(false));
    let m = c.metrics.as_ref();
    assert_eq!(m.map(|m| m.interval), Some(default_metrics_interval()));
    assert_eq!(m.and_then(|m| m.prometheus.clone()), None);
    Ok(())
}

#[test]
fn metrics_takes_scrape_or_prometheus_never_both() -> Result<(), ConfigError> {
    let both = "[metrics]\nscrape = \"http://127.0.0.1:9000/_synapse/metrics\"\nprometheus = \"http://127.0.0.1:9090\"\n";
    let e = msg(both);
    assert!(
        e.starts_with(&format!(
            "{PREFIX}key 'metrics': [metrics] takes 'scrape' or 'prometheus', not both"
        )),
        "{e}"
    );
    assert!(
        msg("[metrics]\ninterval = \"5s\"\n").contains("key 'metrics': [metrics] needs 'scrape'")
    );
    let c = valid(
        "[metrics]\nprometheus = \"http://127.0.0.1:9090\"\nselector = '{job=\"synapse\"}'\n",
    )?;
    let m = c
        .metrics
        .unwrap_or_else(|| panic!("[metrics] parsed to nothing"));
    assert_eq!(m.selector.as_deref(), Some("{job=\"synapse\"}"));
    assert_eq!(m.interval, default_metrics_interval());
    assert!(
        msg("[metrics]\nscrape = \"127.0.0.1:9000\"\n")
            .contains("key 'metrics.scrape': '127.0.0.1:9000' is not an http://")
    );
    assert!(
        msg("[metrics]\nscrape = \"http://h:1/m\"\nvia-ssh = true\n")
            .contains("key 'metrics.via-ssh'")
    );
    assert!(
        msg("[metrics]\nscrape = \"http://h:1/m\"\ninterval = \"2m\"\n")
            .contains("longer than a minute")
    );
    assert!(
        msg("[metrics]\nscrape = \"http://h:1/m\"\nselector = '{a=\"b\"}'\n")
            .contains("key 'metrics.selector': only goes with 'prometheus'")
    );
    assert!(
        msg("[metrics]\nprometheus = \"http://h:1\"\nselector = 'job=\"x\"'\n")
            .contains("is not a label selector")
    );
    assert!(
        msg("[metrics]\nprometheus = \"http://h:1\"\nscrapes = 1\n")
            .contains("unknown key 'scrapes'")
    );
    Ok(())
}

#[test]
fn example_config_has_every_section() {
    for section in [
        "[ssh]",
        "[server-log]",
        "[client]",
        "[call]",
        "[bundle]",
        "[database]",
        "[analysis]",
        "[signatures]",
        "[debug-loggers]",
        "[redact]",
        "[metrics]",
    ] {
        assert!(
            EXAMPLE.lines().any(|l| l.trim() == section),
            "{section} is missing from the example"
        );
    }
}

#[test]
fn acceptance_keys_for_local_sources_parse() -> Result<(), ConfigError> {
    let c = valid(
        r#"
[server-log]
path = "/tmp/homeserver.log"
[client]
downloads = "/tmp/dl"
[call]
user-id = "@alice:example.org"
device-id = "ABCDEFGHIJ"
participants = ["@bob:example.org", "@carol:example.org:8448/QWERTY"]
[bundle]
out = "/tmp/out"
"#,
    )?;
    assert!(c.ssh.is_none(), "no [ssh]: the log is a local file");
    assert_eq!(c.client.downloads.as_deref(), Some(Path::new("/tmp/dl")));
    assert_eq!(c.call.participants.len(), 2);
    assert_eq!(c.bundle.out.as_deref(), Some(Path::new("/tmp/out")));
    assert_eq!(valid("")?, Config::default());
    Ok(())
}

#[test]
fn unknown_key_names_the_key_and_what_is_allowed() {
    assert_eq!(
        msg("[ssh]\nhost = \"h\"\nhots = 1\n"),
        format!(
            "{PREFIX}key 'ssh.hots': unknown key 'hots', expected one of 'host', 'port', \
             'user', 'identity-file', 'passphrase-env', 'known-hosts', 'host-key-check', \
             'jump', 'ssh-config', 'identity-agent', 'connect-timeout', 'keepalive-interval'"
        )
    );
    assert_eq!(
        msg("colour = true\n"),
        format!(
            "{PREFIX}key 'colour': unknown key 'colour', expected one of 'ssh', \
             'server-log', 'client', 'call', 'bundle', 'database', 'analysis', 'signatures', \
             'debug-loggers', 'redact', 'metrics'"
        )
    );
}

#[test]
fn bad_value_types_name_the_key_and_the_value() {
    assert_eq!(
        msg("[server-log]\npath = \"/x\"\nbackfill = \"ten\"\n"),
        format!(
            "{PREFIX}key 'server-log.backfill': invalid type: string 'ten', expected a whole number"
        )
    );
    assert_eq!(
        msg("[call]\nparticipants = [\"@a:b\", 3]\n"),
        format!("{PREFIX}key 'call.participants[1]': invalid type: integer '3', expected a string")
    );
    assert_eq!(
        msg("[ssh]\nhost = \"h\"\nport = 70000\n"),
        format!(
            "{PREFIX}key 'ssh.port': invalid value: integer '70000', expected a whole number from 0 to 65535"
        )
    );
    assert_eq!(
        msg("[database]\nurl = \"postgres://a@b/c\"\npoll-interval = \"fast\"\n"),
        format!(
            "{PREFIX}key 'database.poll-interval': 'fast' is not a duration (try \"5s\", \"250ms\", \"2m\")"
        )
    );
    assert_eq!(
        msg("[ssh]\nhost-key-check = \"yes\"\nhost = \"h\"\n"),
        format!(
            "{PREFIX}key 'ssh.host-key-check': unknown variant 'yes', expected 'strict' or 'accept-new'"
        )
    );
}

#[test]
fn missing_keys_and_syntax_errors_say_where() {
    assert_eq!(
        msg("[server-log]\ntimezone = \"UTC\"\n"),
        format!("{PREFIX}key 'server-log': missing key 'path' (or 'journal-unit', or 'container')")
    );
    assert_eq!(
        msg("[call]\nuser-id = \"@a:b\"\n[ssh\nhost = 1\n"),
        format!("{PREFIX}line 3, column 5: unclosed table, expected ']'")
    );
}

#[test]
fn bad_timezone_is_rejected_with_the_value() {
    assert_eq!(
        msg("[server-log]\npath = \"/x\"\ntimezone = \"Mars/Olympus\"\n"),
        format!(
            "{PREFIX}key 'server-log.timezone': unknown time zone 'Mars/Olympus' \
             (use UTC or an IANA name such as Europe/Berlin)"
        )
    );
    assert!(valid("[server-log]\npath = \"/x\"\ntimezone = \"Europe/Berlin\"\n").is_ok());
}

#[test]
fn semantic_checks_name_the_key_and_the_value() {
    let cases = [
        (
            "[database]\nurl = \"postgres://a@b/c\"\npoll-interval = \"0s\"\n",
            "key 'database.poll-interval': '0s' must be longer than zero",
        ),
        (
            "[database]\nurl = \"mysql://a@b/c\"\n",
            "key 'database.url': 'mysql://a@b/c' is not a PostgreSQL URL \
             (expected 'postgres://user@host:5432/dbname')",
        ),
        (
            "[database]\nurl = \"postgres://a@b/c\"\nvia-ssh = true\n",
            "key 'database.via-ssh': 'true' needs an [ssh] section to tunnel through",
        ),
        (
            "[ssh]\nhost = \"  \"\n",
            "key 'ssh.host': must not be empty (a host name, an address or a Host alias \
             from ~/.ssh/config)",
        ),
        (
            "[ssh]\nhost = \"h\"\nport = 0\n",
            "key 'ssh.port': '0' is not a port (1 to 65535)",
        ),
        (
            "[call]\nuser-id = \"alice\"\n",
            "key 'call.user-id': 'alice' is not a Matrix user id (expected '@user:server')",
        ),
        (
            "[call]\nuser-id = \"@alice\"\n",
            "key 'call.user-id': '@alice' is not a Matrix user id (expected '@user:server')",
        ),
        (
            "[call]\nparticipants = [\"@bob:example.org\", \"bob\"]\n",
            "key 'call.participants[1]': 'bob' is not a participant \
             (expected '@user:server' or '@user:server/DEVICE')",
        ),
        (
            "[call]\nevent-ids = [\"SASBBzoqj\"]\n",
            "key 'call.event-ids[0]': 'SASBBzoqj' is not an event id (expected '$...')",
        ),
        (
            "[bundle]\nlabel = \"a/b\"\n",
            "key 'bundle.label': 'a/b' cannot name a folder (no '/' or '\\', not empty)",
        ),
        (
            "[analysis]\nrestart-timeout = \"0ms\"\n",
            "key 'analysis.restart-timeout': '0s' must be longer than zero",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(msg(text), format!("{PREFIX}{want}"), "for {text:?}");
    }
}

#[test]
fn load_names_a_missing_file() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let p = dir.path().join("none.toml");
    let e = Config::load(&p)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        e.starts_with(&format!("cannot read config file '{}': ", p.display())),
        "{e}"
    );
    Ok(())
}

#[test]
fn redact_extra_patterns_are_checked_and_a_bad_one_is_named() {
    let c = valid("[redact]\nextra = ['ACME-[0-9]{8}', 'key=(\\S+)']\n");
    assert_eq!(c.map(|c| c.redact.site_rules().len()).ok(), Some(2));
    let err = msg("[redact]\nextra = ['ok', 'ACME-[0-9']\n");
    assert!(
        err.starts_with(&format!(
            "{PREFIX}key 'redact.extra[1]': 'ACME-[0-9' is not a regular expression"
        )),
        "{err}"
    );
    assert_eq!(
        msg("[redact]\nextra = ['a*']\n"),
        format!("{PREFIX}key 'redact.extra[0]': 'a*' can match an empty string")
    );
}

#[test]
fn the_redact_section_is_read_on_its_own() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let p = dir.path().join("c.toml");
    // Another section that would not validate does not matter here.
    std::fs::write(
        &p,
        "[call]\nuser-id = 'nope'\n[redact]\nextra = ['x[0-9]+']\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let r = load_redact_section(&p).map(|r| r.extra);
    assert_eq!(r.ok(), Some(vec!["x[0-9]+".to_string()]));
    std::fs::write(&p, "[redact]\nextra = ['(x']\n").unwrap_or_else(|e| panic!("{e}"));
    let err = load_redact_section(&p)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("key 'redact.extra[0]': '(x' is not a regular expression"),
        "{err}"
    );
    std::fs::write(&p, "[redact]\nextras = []\n").unwrap_or_else(|e| panic!("{e}"));
    assert!(load_redact_section(&p).is_err());
}

#[test]
fn several_server_logs_each_read_exactly_one_thing_and_say_which_entry_is_wrong()
-> Result<(), ConfigError> {
    let c = valid(
        "[[server-log]]\nname = \"main\"\npath = \"/var/log/matrix-synapse/homeserver.log\"\n\
         [[server-log]]\nname = \"worker1\"\njournal-unit = \"matrix-synapse-worker@generic1\"\n\
         journal-directory = \"/srv/journal\"\n\
         [[server-log]]\nname = \"federation\"\ncontainer = \"synapse-federation\"\n\
         docker-command = \"podman\"\n",
    )?;
    let kinds: Vec<&str> = c.server_log.iter().map(|l| l.kind().name()).collect();
    assert_eq!(kinds, ["file", "journald", "docker"]);
    assert_eq!(c.server_log.names(), ["main", "worker1", "federation"]);
    let two = msg("[[server-log]]\nname = \"main\"\npath = \"/x\"\n\
         [[server-log]]\nname = \"worker1\"\npath = \"/y\"\njournal-unit = \"u\"\n");
    assert!(
        two.contains("'worker1' sets 'path' and 'journal-unit'"),
        "{two}"
    );
    let misplaced =
        msg("[[server-log]]\nname = \"main\"\npath = \"/x\"\ndocker-command = \"podman\"\n");
    assert!(misplaced.contains("only a 'container'"), "{misplaced}");
    Ok(())
}

#[test]
fn sfu_logs_take_a_format_and_an_unknown_one_is_refused() -> Result<(), ConfigError> {
    let c = valid(
        "[[server-log]]\nname = \"main\"\npath = \"/var/log/matrix-synapse/homeserver.log\"\n\
         [[server-log]]\nname = \"livekit\"\njournal-unit = \"livekit-server\"\nformat = \"livekit\"\n\
         [[server-log]]\nname = \"lk-jwt\"\ncontainer = \"lk-jwt-service\"\nformat = \"lk-jwt\"\n\
         [[server-log]]\nname = \"sfu\"\npath = \"/var/log/livekit.log\"\n",
    )?;
    let formats: Vec<Option<&str>> = c.server_log.iter().map(|l| l.format.as_deref()).collect();
    assert_eq!(formats, [None, Some("livekit"), Some("lk-jwt"), None]);
    let bad = msg("[[server-log]]\nname = \"x\"\npath = \"/x\"\nformat = \"jitsi\"\n");
    assert!(
        bad.contains("'jitsi' is not a log format") && bad.contains("\"livekit\""),
        "{bad}"
    );
    Ok(())
}
