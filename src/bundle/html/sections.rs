//! The page's text beside the figure: the header, the decision tree with
//! its cited evidence, the per-KE table, the markers and the checklist.
//! Every fact comes from what `report.md` is written from (the verdicts,
//! [`quote`], the report's own helpers), so the two never disagree.

use super::super::manifest::rfc3339;
use super::super::report::{QUESTIONS, first_last, path_taken, stamp_text};
use crate::app::App;
use crate::domain::Ke;
use crate::verdicts::quote::quote;
use crate::verdicts::{INSUFFICIENT, Verdicts};
use chrono::{DateTime, Utc};
use maud::{Markup, html};
use std::collections::BTreeMap;

fn t(x: Option<DateTime<Utc>>) -> String {
    x.map(rfc3339).unwrap_or_else(|| "–".into())
}

/// Text with `code` spans, as `report.md` writes it: each pair of
/// backticks becomes a `<code>` element, the text itself unchanged.
pub fn md_code(text: &str) -> Markup {
    html! {
        @for (i, part) in text.split('`').enumerate() {
            @if i % 2 == 1 { code { (part) } } @else { (part) }
        }
    }
}

/// The four answers at a glance, for the top of the page.
pub fn verdict_strip(verdicts: &Verdicts) -> Markup {
    html! {
        ol .answers aria-label="Decision tree answers" {
            @for (q, v) in verdicts.iter() {
                li .answer .open[v.answer == INSUFFICIENT] {
                    a href={ "#" (q.to_lowercase()) } {
                        span .q { (q) } " " strong { (v.answer) }
                    }
                }
            }
        }
    }
}

/// Who and what the capture is about.
pub fn header(app: &App, label: &str, (start, end): (DateTime<Utc>, DateTime<Utc>)) -> Markup {
    html! {
        h1 { "Call evidence " code { (label) } }
        dl .facts {
            div { dt { "Window" } dd { (rfc3339(start)) " → " (rfc3339(end)) " (" ((end - start).num_minutes()) " min)" } }
            div { dt { "User" } dd { (app.subject.user_id.as_deref().unwrap_or("(not set)")) } }
            div { dt { "Device" } dd { (app.subject.device_id.as_deref().unwrap_or("(not set)")) } }
            @if !app.subject.participants.is_empty() {
                div { dt { "Participants" } dd { (app.subject.participants.join(", ")) } }
            }
            div { dt { "Server log" } dd { (app.lines_total) " lines, " (app.bytes_total) " bytes, " (app.server_redactions) " secrets redacted" } }
            @if let Some(line) = super::super::report_sections::database_line(app) {
                div { dt { "Database" } dd { (line.trim_start_matches("- Database: ")) } }
            }
        }
    }
}

/// Q1–Q4: the question, the answer with its summary, the runbook's path
/// and every cited reference with its quote.
pub fn decision_tree(
    app: &App,
    verdicts: &Verdicts,
    cited_lines: &BTreeMap<String, String>,
) -> Markup {
    html! {
        h2 { "Decision tree (runbook §2)" }
        @for ((q, question), (_, v)) in QUESTIONS.iter().zip(verdicts.iter()) {
            section .question #(q.to_lowercase()) data-question=(q) data-answer=(v.answer) {
                h3 { (q) ". " (question) }
                p .verdict {
                    strong .answer-name .open[v.answer == INSUFFICIENT] { "→ " (v.answer) }
                    ": " span .summary { (v.summary) }
                }
                @if let Some(path) = path_taken(q, v.answer) {
                    p .path { "Path: " (path) }
                }
                @if !v.basis.is_empty() {
                    p .evidence-head { "Evidence:" }
                    ul .evidence {
                        @for b in &v.basis {
                            @let quoted = quote(app, cited_lines, b);
                            li data-ref=(b) {
                                code .ref { (b) }
                                span .quote { (md_code(&quoted)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Per KE: the counts and when it was first and last seen.
pub fn ke_table(app: &App) -> Markup {
    html! {
        h2 { "Per-KE counts" }
        div .table-scroll {
            table .ke {
                thead { tr {
                    th { "KE" } th { "meaning" } th .num { "server" } th .num { "errors" }
                    th .num { "client" } th { "first seen" } th { "last seen" }
                } }
                tbody {
                    @for ke in Ke::ALL {
                        @let (s, c) = (&app.server[ke.index()], &app.client[ke.index()]);
                        @let (first, last) = first_last(app, ke);
                        tr data-ke=(ke.name()) {
                            th { (ke.name()) }
                            td { (md_code(ke.meaning())) }
                            td .num { (s.count) } td .num { (s.errors) } td .num { (c.count) }
                            td { (t(first)) } td { (t(last)) }
                        }
                    }
                }
            }
        }
        p .note { "Server lines per KE are in " code { "server/KE-1.log" } " … " code { "server/KE-4.log" } "; line N there is cited as " code { "server/KE-n.log:N" } "." }
    }
}

pub fn markers(app: &App) -> Markup {
    let markers: Vec<_> = app.live_markers().collect();
    html! {
        h2 { "Fault markers" }
        @if markers.is_empty() { p { "None set." } }
        ul .markers {
            @for m in markers {
                li data-marker=(m.id) {
                    (rfc3339(m.at)) " " strong { (m.label) }
                    " (marker " (m.id) ", checklist step "
                    (m.checklist_step.map(|s| s.to_string()).unwrap_or_else(|| "–".into()))
                    ", server line " (m.last_lines.get("server-log").copied().unwrap_or(0)) ")"
                }
            }
        }
    }
}

pub fn checklist(app: &App) -> Markup {
    html! {
        h2 { "Capture checklist (runbook §4)" }
        ol .checklist {
            @for s in &app.checklist.steps {
                li .done[s.done] value=(s.number) {
                    span .box { @if s.done { "☑" } @else { "☐" } } " "
                    (s.title)
                    @if s.stamps.is_empty() {
                        span .never { " — never done" }
                    } @else {
                        " — " (s.stamps.iter().map(stamp_text).collect::<Vec<_>>().join("; "))
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backticks_become_code_and_the_text_is_escaped() {
        let m = md_code(": `a <b> & c`, 2 row(s); `x`").into_string();
        assert_eq!(
            m,
            ": <code>a &lt;b&gt; &amp; c</code>, 2 row(s); <code>x</code>"
        );
    }
}
