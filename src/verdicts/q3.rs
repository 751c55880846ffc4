//! Q3: is the KE-3 event malformed on the homeserver?

use super::{DbRead, INSUFFICIENT, Verdict, rows, s, set_aside_artefacts, truthy};
use crate::app::App;
use crate::domain::Ke;
use crate::model::Row;
use aho_corasick::AhoCorasick;
use serde_json::Value;
use std::collections::HashMap;

/// Whether the client's errors for each KE-3 event id say its `algorithm`
/// is missing; an id no client error names is not in the map (an id given
/// by hand). KE-3's signature (`DecryptionError`) also catches other
/// decryption failures, such as a missing Megolm session, which Q3 cannot
/// speak to. One pass over the errors for all ids (a report can name
/// hundreds of ids and hold thousands of errors, and the verdicts are
/// decided again while a flood changes the App).
fn says_algorithm_missing(app: &App) -> HashMap<&str, bool> {
    let ids: Vec<&str> = app.ke3_ids.keys().map(String::as_str).collect();
    let mut said: HashMap<&str, bool> = HashMap::new();
    let Ok(ac) = AhoCorasick::new(&ids) else {
        return said;
    };
    for (_, _, message) in app.client_errors.iter().filter(|(k, _, _)| *k == Ke::Ke3) {
        let algorithm = message.contains("algorithm");
        for m in ac.find_overlapping_iter(message.as_str()) {
            *said.entry(ids[m.pattern().as_usize()]).or_insert(false) |= algorithm;
        }
    }
    said
}

pub(super) fn q3(app: &App) -> Verdict {
    let said = says_algorithm_missing(app);
    let ids: Vec<&String> = app
        .ke3_ids
        .keys()
        .filter(|id| said.get(id.as_str()) != Some(&false))
        .collect();
    let mut basis: Vec<String> = ids
        .iter()
        .flat_map(|id| app.ke3_ids[*id].iter().take(1).map(|r| r.0.clone()))
        .take(5)
        .collect();
    if app.ke3_ids.is_empty() {
        return Verdict {
            answer: INSUFFICIENT,
            summary: format!(
                "No KE-3 event id was harvested from the client reports{}.",
                set_aside_artefacts(app)
            ),
            basis,
        };
    }
    if ids.is_empty() {
        let other: Vec<String> = app
            .ke3_ids
            .values()
            .flat_map(|v| v.iter().take(1).map(|r| r.0.clone()))
            .take(3)
            .collect();
        return Verdict {
            answer: INSUFFICIENT,
            summary: format!(
                "{} event id(s) failed to decrypt in the client, but their errors do not say `algorithm` is missing (another decryption failure, such as a missing Megolm session): KE-3's question does not apply to them.",
                app.ke3_ids.len()
            ),
            basis: other,
        };
    }
    let read = DbRead::of(app).map(|d| d.clause()).unwrap_or_default();
    // Rows for events the homeserver does not have (`found = false`) are not
    // lookups that succeeded.
    let lookups: Vec<&Row> = rows(app, "event_lookup")
        .map(|r| {
            r.iter()
                .filter(|x| s(x, "event_id").is_some_and(|id| ids.iter().any(|i| *i == id)))
                .filter(|x| x.get("found").is_none_or(|f| truthy(Some(f))))
                .collect()
        })
        .unwrap_or_default();
    if lookups.is_empty() {
        return Verdict {
            answer: INSUFFICIENT,
            summary: format!(
                "{} KE-3 event id(s) were harvested but none could be looked up in event_json{}.",
                ids.len(),
                if read.is_empty() {
                    " (the database was not read)".to_string()
                } else {
                    format!(" ({read})")
                }
            ),
            basis,
        };
    }
    basis.push("db/last.json#event_lookup".into());
    let has_alg = |r: &Row| -> bool {
        for k in ["algorithm_present", "has_algorithm"] {
            if let Some(v) = r.get(k) {
                return truthy(Some(v));
            }
        }
        !matches!(r.get("algorithm"), None | Some(Value::Null))
    };
    // A redacted event's stored content is pruned once Synapse censors it:
    // a missing algorithm there says nothing about how it was sent.
    let (pruned, lookups): (Vec<&Row>, Vec<&Row>) = lookups
        .into_iter()
        .partition(|r| !has_alg(r) && truthy(r.get("redacted")));
    if lookups.is_empty() {
        return Verdict {
            answer: INSUFFICIENT,
            summary: format!(
                "{} KE-3 event(s) were found but redacted on the homeserver, whose stored content lacks algorithm because it was pruned: the lookup cannot tell ({read}).",
                pruned.len()
            ),
            basis,
        };
    }
    if let Some(bad) = lookups.iter().find(|r| !has_alg(r)) {
        return Verdict {
            answer: "malformed-event",
            summary: format!(
                "Event {} is stored on the homeserver without content.algorithm: a malformed event was persisted (sender or federation), independent of KE-1 ({read}; stored events do not change, a redaction would show).",
                s(bad, "event_id").unwrap_or("?")
            ),
            basis,
        };
    }
    Verdict {
        answer: "client-deserialization",
        summary: format!(
            "All {} looked-up KE-3 event(s) have content.algorithm on the homeserver: the client fails to deserialize them ({read}; stored events do not change).",
            lookups.len()
        ),
        basis,
    }
}
