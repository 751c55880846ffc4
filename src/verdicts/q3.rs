//! Q3: is the KE-3 event malformed on the homeserver?

use super::{INSUFFICIENT, Verdict, rows, s, truthy};
use crate::app::App;
use crate::model::Row;
use serde_json::Value;

pub(super) fn q3(app: &App) -> Verdict {
    let mut basis: Vec<String> = app
        .ke3_ids
        .values()
        .flat_map(|v| v.iter().take(1).map(|r| r.0.clone()))
        .take(5)
        .collect();
    if app.ke3_ids.is_empty() {
        return Verdict {
            answer: INSUFFICIENT,
            summary: "No KE-3 event id was harvested from the client reports.".into(),
            basis,
        };
    }
    // Rows for events the homeserver does not have (`found = false`) are not
    // lookups that succeeded.
    let lookups: Vec<&Row> = rows(app, "event_lookup")
        .map(|r| {
            r.iter()
                .filter(|x| s(x, "event_id").is_some_and(|id| app.ke3_ids.contains_key(id)))
                .filter(|x| x.get("found").is_none_or(|f| truthy(Some(f))))
                .collect()
        })
        .unwrap_or_default();
    if lookups.is_empty() {
        return Verdict {
            answer: INSUFFICIENT,
            summary: format!(
                "{} KE-3 event id(s) were harvested but none could be looked up in event_json.",
                app.ke3_ids.len()
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
                "{} KE-3 event(s) were found but redacted on the homeserver, whose stored content lacks algorithm because it was pruned: the lookup cannot tell.",
                pruned.len()
            ),
            basis,
        };
    }
    if let Some(bad) = lookups.iter().find(|r| !has_alg(r)) {
        return Verdict {
            answer: "malformed-event",
            summary: format!(
                "Event {} is stored on the homeserver without content.algorithm: a malformed event was persisted (sender or federation), independent of KE-1.",
                s(bad, "event_id").unwrap_or("?")
            ),
            basis,
        };
    }
    Verdict {
        answer: "client-deserialization",
        summary: format!(
            "All {} looked-up KE-3 event(s) have content.algorithm on the homeserver: the client fails to deserialize them.",
            lookups.len()
        ),
        basis,
    }
}
