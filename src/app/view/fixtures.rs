//! Builders for view and rendering tests: an App fed through its own
//! `update`, with times from a fixed base (12:00:00 UTC) so screens can be
//! asserted on without the wall clock.
#![allow(clippy::unwrap_used)]

use super::{ViewInput, ViewOutcome, ViewState};
use crate::app::event::{Command, Event, ServerBatch, ServerHit};
use crate::app::{App, Subject};
use crate::domain::{Ke, KeSet};
use chrono::{DateTime, Duration, Utc};

/// 2026-05-28 12:00:00 UTC.
pub const BASE: i64 = 1_779_969_600;

pub fn t(s: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(BASE, 0).unwrap() + Duration::seconds(s)
}

pub fn app() -> App {
    let mut app = App::new(
        Subject {
            user_id: Some("@alice:hs".into()),
            device_id: Some("ALICEDEV".into()),
            participants: vec!["@bob:hs".into()],
        },
        2000,
    );
    app.update(Event::Tick { now: t(0) });
    app
}

/// One server line matching `ke` at `t(at)`.
pub fn hit(app: &mut App, ke: Ke, at: i64, text: &str, error: bool) {
    let mut kes = KeSet::default();
    kes.insert(ke);
    let line_no = app.lines_total + 1;
    let mut ke_line_no = [0; 4];
    ke_line_no[ke.index()] = app.pane_pushed[ke.index()] + 1;
    let mut batch = ServerBatch {
        source: "server-log".into(),
        lines_total: line_no,
        bytes_total: line_no * 100,
        first_at: Some(t(at)),
        last_at: Some(t(at)),
        ..Default::default()
    };
    let text = batch.add_text(text);
    batch.hits.push(ServerHit {
        line_no,
        at: Some(t(at)),
        text,
        kes,
        ke_line_no,
        error,
        offending: None,
        request: None,
    });
    app.update(Event::Server(Box::new(batch)));
}

/// `n` KE-1 lines `line 0` … one per second from `t(start)`.
pub fn lines(app: &mut App, ke: Ke, start: i64, n: usize) {
    for k in 0..n {
        hit(app, ke, start + k as i64, &format!("line {k}"), false);
    }
}

pub fn mark(app: &mut App, at: i64, label: &str) -> u32 {
    app.update(Event::Command {
        cmd: Command::Mark {
            label: label.into(),
        },
        at: t(at),
    });
    app.markers.last().unwrap().id
}

/// What the loop does with outcomes: commands go to the App at once.
pub fn apply(app: &mut App, out: &[ViewOutcome]) {
    for o in out {
        if let ViewOutcome::Command { cmd, at } = o {
            app.update(Event::Command {
                cmd: cmd.clone(),
                at: *at,
            });
        }
    }
}

/// Handles `input` at `t(at)` and applies the commands.
pub fn press(view: &mut ViewState, app: &mut App, input: ViewInput, at: i64) -> Vec<ViewOutcome> {
    let out = view.handle(app, input, t(at));
    apply(app, &out);
    out
}

pub fn type_text(view: &mut ViewState, app: &mut App, text: &str, at: i64) {
    for c in text.chars() {
        press(view, app, ViewInput::Char(c), at);
    }
}
