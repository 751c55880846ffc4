//! Structural edits of Synapse's log config (a `logging.config.dictConfig`
//! document in YAML): one logger's `level` set, everything else — comments,
//! quoting, order, blank lines — left as written (`yaml-edit`, a lossless
//! syntax tree). Every edit is checked against the data it must give: the
//! document read back must equal the original with only those levels
//! changed, or the edit is refused and nothing is written.

use std::collections::BTreeMap;
use std::str::FromStr;
use yaml_edit::{Mapping, YamlFile, YamlValue};

/// The first bytes of the comment line a raise puts at the top of the file:
/// a second callcap finds it and refuses to raise again.
pub const MARKER_PREFIX: &str = "# callcap-debug-loggers:";

/// The level Python's logging gives a logger that inherits its parent's.
pub const NOTSET: &str = "NOTSET";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum YamlEditError {
    #[error("the log config is not valid YAML: {0}")]
    Parse(String),
    #[error("the log config is not a logging dictConfig mapping ({0})")]
    Shape(String),
    #[error("the edited log config does not read back as intended ({0}); nothing was changed")]
    Verify(String),
}

/// A raised config and what the loggers had before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raised {
    pub text: String,
    /// Each logger's `level` in the original (`None`: no entry or no level,
    /// so the logger inherited its parent's).
    pub previous: Vec<(String, Option<String>)>,
}

/// The marker line, if the file carries one (without its newline).
pub fn find_marker(text: &str) -> Option<&str> {
    text.lines()
        .map(|l| l.trim_start_matches('\u{feff}'))
        .find(|l| l.starts_with(MARKER_PREFIX))
}

/// `original` with `loggers` at DEBUG and `marker` (one line, starting with
/// [`MARKER_PREFIX`]) as its first line.
pub fn raise(original: &str, loggers: &[String], marker: &str) -> Result<Raised, YamlEditError> {
    let previous = levels(original, loggers)?;
    let wanted: Vec<(String, String)> = loggers
        .iter()
        .map(|l| (l.clone(), "DEBUG".to_string()))
        .collect();
    let edited = set_levels(original, &wanted)?;
    let marker = marker.replace(['\n', '\r'], " ");
    let (bom, body) = match edited.strip_prefix('\u{feff}') {
        Some(rest) => ("\u{feff}", rest),
        None => ("", edited.as_str()),
    };
    let text = format!("{bom}{marker}\n{body}");
    // The comment changes nothing the document says.
    if data(&text)? != data(&edited)? {
        return Err(YamlEditError::Verify("the marker comment".into()));
    }
    Ok(Raised { text, previous })
}

/// The revert's first step: `original` with each logger's previous level
/// written explicitly (NOTSET where it had none), because on reload Python's
/// logging keeps the level of a logger whose entry is gone.
pub fn explicit_levels(
    original: &str,
    previous: &[(String, Option<String>)],
) -> Result<String, YamlEditError> {
    let wanted: Vec<(String, String)> = previous
        .iter()
        .map(|(l, p)| (l.clone(), p.clone().unwrap_or_else(|| NOTSET.to_string())))
        .collect();
    set_levels(original, &wanted)
}

/// Each logger's `loggers.<name>.level` in `text`.
pub fn levels(
    text: &str,
    loggers: &[String],
) -> Result<Vec<(String, Option<String>)>, YamlEditError> {
    let doc = data(text)?;
    let table = doc.get("loggers").and_then(|v| v.as_object());
    Ok(loggers
        .iter()
        .map(|l| {
            let level = table
                .and_then(|t| t.get(l))
                .and_then(|e| e.get("level"))
                .and_then(|v| v.as_str())
                .map(str::to_string);
            (l.clone(), level)
        })
        .collect())
}

/// `text` with `loggers.<name>.level` set for each pair, checked.
pub fn set_levels(text: &str, wanted: &[(String, String)]) -> Result<String, YamlEditError> {
    let before = data(text)?;
    let file =
        YamlFile::from_str(text).map_err(|e| YamlEditError::Parse(one_line(&e.to_string())))?;
    if file.documents().count() != 1 {
        return Err(YamlEditError::Shape(
            "it holds more than one YAML document".into(),
        ));
    }
    let root = file
        .document()
        .and_then(|d| d.as_mapping())
        .ok_or_else(|| YamlEditError::Shape("its top level is not a mapping".into()))?;
    if root.get_mapping("loggers").is_none() {
        if root.contains_key("loggers") {
            return Err(YamlEditError::Shape("'loggers' is not a mapping".into()));
        }
        root.set("loggers", Mapping::new());
    }
    let table = root
        .get_mapping("loggers")
        .ok_or_else(|| YamlEditError::Verify("'loggers' could not be added".into()))?;
    for (logger, level) in wanted {
        match table.get_mapping(logger.as_str()) {
            Some(entry) => entry.set("level", level.as_str()),
            None => {
                let entry = Mapping::new();
                entry.set("level", level.as_str());
                table.set(logger.as_str(), entry);
            }
        }
    }
    let edited = file.to_string();
    // What the document must say now: the same, but for those levels.
    let mut expected = before;
    let obj = expected
        .as_object_mut()
        .ok_or_else(|| YamlEditError::Shape("its top level is not a mapping".into()))?;
    let table = obj
        .entry("loggers")
        .or_insert_with(|| serde_json::Value::Object(Default::default()));
    if !table.is_object() {
        *table = serde_json::Value::Object(Default::default());
    }
    for (logger, level) in wanted {
        if let Some(t) = table.as_object_mut() {
            let entry = t
                .entry(logger.clone())
                .or_insert_with(|| serde_json::Value::Object(Default::default()));
            if !entry.is_object() {
                *entry = serde_json::Value::Object(Default::default());
            }
            if let Some(e) = entry.as_object_mut() {
                e.insert("level".into(), serde_json::Value::String(level.clone()));
            }
        }
    }
    let got = data(&edited)?;
    if got != expected {
        return Err(YamlEditError::Verify(format!(
            "expected {}, read {}",
            clip(&expected.to_string()),
            clip(&got.to_string())
        )));
    }
    Ok(edited)
}

/// What a document says, as JSON: scalars by their text, so that a quoting
/// or style change is not a difference but a changed value is.
fn data(text: &str) -> Result<serde_json::Value, YamlEditError> {
    let v =
        YamlValue::parse_raw(text).map_err(|e| YamlEditError::Parse(one_line(&e.to_string())))?;
    Ok(to_json(&v))
}

fn to_json(v: &YamlValue) -> serde_json::Value {
    use serde_json::Value;
    match v {
        YamlValue::Scalar(s) => Value::String(s.value().to_string()),
        YamlValue::Sequence(items) => Value::Array(items.iter().map(to_json).collect()),
        YamlValue::Mapping(m) => {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), to_json(v))).collect())
        }
        YamlValue::Set(s) => Value::Array(s.iter().cloned().map(Value::String).collect()),
        YamlValue::OrderedMapping(p) | YamlValue::Pairs(p) => Value::Array(
            p.iter()
                .map(|(k, v)| Value::Array(vec![Value::String(k.clone()), to_json(v)]))
                .collect(),
        ),
        YamlValue::Tagged(tag, inner) => {
            let mut m = serde_json::Map::new();
            m.insert(tag.clone(), to_json(inner));
            Value::Object(m)
        }
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn clip(s: &str) -> String {
    if s.chars().count() > 300 {
        format!("{}…", s.chars().take(300).collect::<String>())
    } else {
        s.to_string()
    }
}

/// Levels by logger, for messages.
pub fn describe(previous: &[(String, Option<String>)]) -> String {
    let m: BTreeMap<&str, &str> = previous
        .iter()
        .map(|(l, p)| (l.as_str(), p.as_deref().unwrap_or("(inherited)")))
        .collect();
    m.iter()
        .map(|(l, p)| format!("{l}={p}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const LAB: &str = r#"version: 1
formatters:
  precise:
    format: '%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(request)s - %(message)s'
handlers:
  file:
    class: logging.handlers.TimedRotatingFileHandler
    formatter: precise
    filename: "/var/log/matrix-synapse/homeserver.log"
    when: midnight
loggers:
  synapse.storage.SQL:
    # beware: increasing this to DEBUG will make synapse log sensitive
    # information such as access tokens.
    level: INFO
  synapse.handlers.e2e_keys:
    level: WARNING   # kept quiet on purpose
root:
  level: INFO
  handlers: [buffer]
disable_existing_loggers: false
"#;

    fn loggers() -> Vec<String> {
        crate::config::default_debug_loggers()
    }

    #[test]
    fn raising_keeps_every_other_byte_and_records_the_previous_levels() {
        let r = raise(LAB, &loggers(), "# callcap-debug-loggers: test").unwrap();
        assert!(
            r.text
                .starts_with("# callcap-debug-loggers: test\nversion: 1\n")
        );
        // Comments, quoting and the untouched entries are as written.
        for keep in [
            "    # beware: increasing this to DEBUG will make synapse log sensitive\n",
            "    format: '%(asctime)s - %(name)s",
            "    filename: \"/var/log/matrix-synapse/homeserver.log\"\n",
            "    level: DEBUG   # kept quiet on purpose\n",
            "  synapse.storage.SQL:\n",
        ] {
            assert!(r.text.contains(keep), "{keep:?} in\n{}", r.text);
        }
        let now = levels(&r.text, &loggers()).unwrap();
        assert!(
            now.iter().all(|(_, l)| l.as_deref() == Some("DEBUG")),
            "{now:?}"
        );
        assert_eq!(
            r.previous,
            vec![
                ("synapse.rest.client.keys".to_string(), None),
                (
                    "synapse.handlers.e2e_keys".to_string(),
                    Some("WARNING".to_string())
                ),
                (
                    "synapse.storage.databases.main.end_to_end_keys".to_string(),
                    None
                ),
                ("synapse.handlers.devicemessage".to_string(), None),
            ]
        );
        assert_eq!(find_marker(&r.text), Some("# callcap-debug-loggers: test"));
        assert_eq!(find_marker(LAB), None);
    }

    #[test]
    fn the_revert_writes_each_previous_level_explicitly() {
        let r = raise(LAB, &loggers(), "# callcap-debug-loggers: x").unwrap();
        let text = explicit_levels(LAB, &r.previous).unwrap();
        let got = levels(&text, &loggers()).unwrap();
        assert_eq!(
            got.iter()
                .map(|(_, l)| l.clone().unwrap())
                .collect::<Vec<_>>(),
            ["NOTSET", "WARNING", "NOTSET", "NOTSET"]
        );
        assert!(find_marker(&text).is_none());
        assert!(
            text.contains("    level: WARNING   # kept quiet on purpose\n"),
            "{text}"
        );
    }

    #[test]
    fn a_config_without_loggers_or_in_flow_style_is_edited_too() {
        for text in [
            "version: 1\n# no loggers here\nroot:\n  level: INFO\n  handlers: [console]\ndisable_existing_loggers: false\n",
            "version: 1\nloggers: {synapse.storage.SQL: {level: INFO}}\nroot: {level: INFO}\n",
            "version: 1\nloggers:\n    synapse.handlers.e2e_keys: { level: INFO }\n    synapse.storage.SQL:\n        level: INFO\nroot:\n    level: INFO\n",
            "\u{feff}version: 1\nroot:\n  level: INFO\n",
        ] {
            let r = raise(text, &loggers(), "# callcap-debug-loggers: y").unwrap();
            let got = levels(&r.text, &loggers()).unwrap();
            assert!(
                got.iter().all(|(_, l)| l.as_deref() == Some("DEBUG")),
                "{}",
                r.text
            );
            assert!(r.text.contains("root"), "{}", r.text);
            assert!(find_marker(&r.text).is_some());
        }
    }

    #[test]
    fn what_is_not_a_dict_config_is_refused() {
        for (text, want) in [
            ("- a\n- b\n", "not a mapping"),
            (
                "version: 1\nloggers: [a, b]\n",
                "'loggers' is not a mapping",
            ),
            ("version: 1\nloggers:\n  a: [\n", "not valid YAML"),
            ("a: 1\n---\nb: 2\n", "document"),
        ] {
            let e = raise(text, &loggers(), "# callcap-debug-loggers: z").unwrap_err();
            assert!(e.to_string().contains(want), "{text:?}: {e}");
        }
    }
}
