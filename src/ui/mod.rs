//! The console's screen: one module per region, each a pure function of the
//! App, the view state and the time it is given. No IO, no clock reads.

pub mod checklist;
pub mod client_pane;
pub mod db_pane;
pub mod help;
pub mod ke_pane;
pub mod latency_strip;
pub mod layout;
pub mod prompts;
pub mod sfu_pane;
pub mod status_bar;
pub mod style;
#[cfg(test)]
mod tests;
pub mod timeline;
pub mod verdict_strip;

use crate::app::App;
use crate::app::view::{Modal, ViewState};
use crate::config::keymap::Keymap;
use crate::domain::Ke;
use crate::verdicts::Verdicts;
use chrono::{DateTime, Utc};
use ratatui::Frame;

/// The verdicts of the App as it is: decided again only when the App has
/// taken an event since, not on every frame (keys, scrolling and redraws
/// change nothing they rest on).
#[derive(Debug, Default)]
pub struct VerdictCache {
    decided: Option<(u64, Verdicts)>,
    /// How many times the verdicts were decided.
    pub decisions: u64,
}

impl VerdictCache {
    pub fn get(&mut self, app: &App) -> &Verdicts {
        if self
            .decided
            .as_ref()
            .is_some_and(|(rev, _)| *rev != app.revision())
        {
            self.decided = None;
        }
        let decisions = &mut self.decisions;
        let (_, v) = self.decided.get_or_insert_with(|| {
            *decisions += 1;
            (app.revision(), crate::verdicts::decide(app))
        });
        v
    }
}

/// Draws one frame. `now` is the console's clock (in a replay, the replayed
/// time): ages, rates, sparklines and the timeline are relative to it.
pub fn draw(frame: &mut Frame, app: &App, view: &ViewState, keymap: &Keymap, now: DateTime<Utc>) {
    draw_cached(frame, app, &mut VerdictCache::default(), view, keymap, now)
}

/// [`draw`], with the verdicts from `cache` (the console's frames).
pub fn draw_cached(
    frame: &mut Frame,
    app: &App,
    cache: &mut VerdictCache,
    view: &ViewState,
    keymap: &Keymap,
    now: DateTime<Utc>,
) {
    let area = frame.area();
    if !layout::fits(area) {
        layout::render_too_small(frame, area);
        return;
    }
    let a = layout::areas(area, view.zoomed.then_some(view.focus));
    let verdicts = cache.get(app);
    status_bar::render(frame, a.status, app, view, now);
    verdict_strip::render(frame, a.verdicts, verdicts);
    for ke in Ke::ALL {
        ke_pane::render(frame, a.ke[ke.index()], app, view, ke, now);
    }
    db_pane::render(frame, a.database, app, view, now);
    // With an SFU log, the client region holds the SFU pane below.
    let (client, sfu) = if app.sfu.captured() && a.client.height >= 8 {
        let top = a.client.height / 2;
        (
            ratatui::layout::Rect {
                height: top,
                ..a.client
            },
            ratatui::layout::Rect {
                y: a.client.y + top,
                height: a.client.height - top,
                ..a.client
            },
        )
    } else {
        (a.client, ratatui::layout::Rect::default())
    };
    client_pane::render(frame, client, app, view, now);
    sfu_pane::render(frame, sfu, app);
    checklist::render(frame, a.checklist, app, view, now);
    timeline::render(frame, a.timeline, app, now);

    match &view.modal {
        Modal::None | Modal::Search { .. } => {}
        Modal::Help => help::render(frame, area, keymap),
        Modal::Verdicts { selected } => {
            verdict_strip::render_detail(frame, area, app, verdicts, *selected)
        }
        Modal::MarkerPrompt { at, pick, text } => {
            prompts::marker_prompt(frame, area, *at, *pick, text)
        }
        Modal::QuitDialog {
            label,
            default,
            phase,
        } => prompts::quit_dialog(frame, area, app, label, default, phase, now),
        Modal::MarkerList {
            selected,
            editing,
            confirm_delete,
        } => prompts::marker_list(
            frame,
            area,
            app,
            *selected,
            editing.as_deref(),
            *confirm_delete,
        ),
    }
}
