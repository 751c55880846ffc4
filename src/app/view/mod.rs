//! View state: what the operator is looking at (focus, zoom, scrolling,
//! search, filters, the open prompt), kept apart from what was captured.
//!
//! [`ViewState::handle`] is pure like [`App::update`]: an input and the
//! time of the key press go in; state changes and [`ViewOutcome`]s come out.
//! The loop sends [`ViewOutcome::Command`]s to the App as
//! `Event::Command { cmd, at }` right away, before the next input.

#[cfg(test)]
pub(crate) mod fixtures;
pub mod geometry;
mod modal;
pub mod pane;
#[cfg(test)]
mod tests;

use crate::app::App;
use crate::app::event::Command;
use crate::config::keymap::{Action, Keymap};
use crate::domain::Ke;
use chrono::{DateTime, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
pub use pane::{PaneScroll, PaneSearch};

/// Quick picks of the fault prompt, chosen with `1`–`4` or Up/Down.
pub const QUICK_PICKS: [&str; 4] = ["audio cut", "video freeze", "audio+video", "other"];
/// A marker's label when the operator names nothing.
pub const DEFAULT_MARK_LABEL: &str = "fault";

/// A region that can take the focus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Ke(Ke),
    Database,
    Client,
    Checklist,
}

impl Pane {
    /// Focus order.
    pub const ALL: [Pane; 7] = [
        Pane::Ke(Ke::Ke1),
        Pane::Ke(Ke::Ke2),
        Pane::Ke(Ke::Ke3),
        Pane::Ke(Ke::Ke4),
        Pane::Database,
        Pane::Client,
        Pane::Checklist,
    ];

    pub fn ke_index(self) -> Option<usize> {
        match self {
            Pane::Ke(ke) => Some(ke.index()),
            _ => None,
        }
    }

    fn position(self) -> usize {
        Pane::ALL.iter().position(|p| *p == self).unwrap_or(0)
    }
}

/// Where the quit dialog is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuitPhase {
    Editing,
    /// Enter was pressed at `since`; the loop is exporting.
    Exporting {
        since: DateTime<Utc>,
    },
}

/// The prompt or overlay on top of the panes; it takes the keys while open.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Modal {
    #[default]
    None,
    /// A marker was made at `at` (the key press); now name the symptom.
    MarkerPrompt {
        at: DateTime<Utc>,
        pick: Option<usize>,
        text: String,
    },
    /// `label` is what was typed (empty at first); `default` is shown in
    /// its place and used when Enter is pressed on an empty field.
    QuitDialog {
        label: String,
        default: String,
        phase: QuitPhase,
    },
    MarkerList {
        selected: usize,
        /// The new label while relabelling.
        editing: Option<String>,
        /// Waiting for `y` to delete the selected marker.
        confirm_delete: bool,
    },
    Help,
    Verdicts {
        selected: usize,
    },
    /// Typing a search for KE pane `pane` (0-based).
    Search {
        pane: usize,
        text: String,
    },
}

impl Modal {
    /// Whether keys are read as text rather than through the keymap.
    pub fn takes_text(&self) -> bool {
        matches!(
            self,
            Modal::MarkerPrompt { .. }
                | Modal::QuitDialog { .. }
                | Modal::MarkerList { .. }
                | Modal::Search { .. }
        )
    }
}

/// An input to the view: a keymap action, a raw key for an open prompt, or a
/// terminal resize.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewInput {
    Action(Action),
    Char(char),
    Backspace,
    /// Ctrl-U in a text field.
    ClearLine,
    Enter,
    Esc,
    Up,
    Down,
    Resize {
        width: u16,
        height: u16,
    },
}

/// What the loop must do after an input.
#[derive(Debug, Clone, PartialEq)]
pub enum ViewOutcome {
    /// Send to the App as `Event::Command { cmd, at }`.
    Command {
        cmd: Command,
        at: DateTime<Utc>,
    },
    /// Export with this label, then exit. The quit dialog shows "exporting…"
    /// until the App sees `Exported` (or `ExportFailed`, and it offers a retry).
    Quit {
        label: String,
    },
    Redraw,
}

/// Everything about what is on screen that is not capture state.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewState {
    pub focus: Pane,
    pub zoomed: bool,
    /// Per KE pane.
    pub scroll: [PaneScroll; 4],
    pub search: [PaneSearch; 4],
    /// Show only lines of the tracked user, device and participants.
    pub tracked_only: bool,
    /// 0-based index into the checklist's steps.
    pub checklist_selected: usize,
    /// Client pane: rows scrolled up from the newest artefact.
    pub client_scroll: usize,
    pub modal: Modal,
    /// The marker the panes were last jumped to.
    pub marker_cursor: Option<u32>,
    /// Terminal size, for page sizes.
    pub screen: (u16, u16),
    /// Where the journal is written, for the status bar.
    pub journal: Option<String>,
    /// The quit dialog's suggested label (`--label`, `[bundle] label`);
    /// `None`: `call-<start time>`.
    pub default_label: Option<String>,
}

impl Default for ViewState {
    fn default() -> Self {
        ViewState {
            focus: Pane::Ke(Ke::Ke1),
            zoomed: false,
            scroll: Default::default(),
            search: Default::default(),
            tracked_only: false,
            checklist_selected: 0,
            client_scroll: 0,
            modal: Modal::None,
            marker_cursor: None,
            screen: (geometry::MIN_WIDTH, geometry::MIN_HEIGHT),
            journal: None,
            default_label: None,
        }
    }
}

/// Turns a key press into a view input: text keys go to an open prompt, every
/// other key through the keymap. Ctrl-C always goes to the keymap.
pub fn input_for_key(view: &ViewState, keymap: &Keymap, key: KeyEvent) -> Option<ViewInput> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    if view.modal.takes_text() && !(ctrl && key.code == KeyCode::Char('c')) {
        return match key.code {
            KeyCode::Char('u') if ctrl => Some(ViewInput::ClearLine),
            _ if ctrl || key.modifiers.contains(KeyModifiers::ALT) => None,
            KeyCode::Char(c) => Some(ViewInput::Char(c)),
            KeyCode::Backspace => Some(ViewInput::Backspace),
            KeyCode::Enter => Some(ViewInput::Enter),
            KeyCode::Esc => Some(ViewInput::Esc),
            KeyCode::Up => Some(ViewInput::Up),
            KeyCode::Down => Some(ViewInput::Down),
            _ => None,
        };
    }
    if let Some(a) = keymap.lookup(key) {
        return Some(ViewInput::Action(a));
    }
    if view.modal == Modal::Help {
        // Any key closes the help.
        return Some(ViewInput::Esc);
    }
    // Overlays close with Esc/Enter even when those are not bound.
    match key.code {
        KeyCode::Esc if view.modal != Modal::None => Some(ViewInput::Esc),
        KeyCode::Enter if view.modal != Modal::None => Some(ViewInput::Enter),
        KeyCode::Up if view.modal != Modal::None => Some(ViewInput::Up),
        KeyCode::Down if view.modal != Modal::None => Some(ViewInput::Down),
        _ => None,
    }
}

impl ViewState {
    pub fn new() -> ViewState {
        ViewState::default()
    }

    /// Text rows of a KE pane at the current size and zoom: a page.
    pub fn page(&self) -> usize {
        geometry::ke_text_rows(self.screen.0, self.screen.1, self.zoomed).max(1)
    }

    /// Handles one input. `now` is when the key was pressed.
    pub fn handle(&mut self, app: &App, input: ViewInput, now: DateTime<Utc>) -> Vec<ViewOutcome> {
        if let ViewInput::Resize { width, height } = input {
            self.screen = (width, height);
            return vec![ViewOutcome::Redraw];
        }
        if self.modal != Modal::None {
            return self.handle_modal(app, input, now);
        }
        match input {
            ViewInput::Action(a) => self.on_action(app, a, now),
            // Raw keys with no prompt open mean nothing.
            _ => Vec::new(),
        }
    }

    fn on_action(&mut self, app: &App, action: Action, now: DateTime<Utc>) -> Vec<ViewOutcome> {
        let redraw = vec![ViewOutcome::Redraw];
        match action {
            Action::Quit => {
                self.modal = Modal::QuitDialog {
                    label: String::new(),
                    default: self
                        .default_label
                        .clone()
                        .unwrap_or_else(|| crate::app::default_label(app)),
                    phase: QuitPhase::Editing,
                };
                redraw
            }
            Action::MarkFault => {
                // The marker exists from the key press on, so nothing is lost
                // if the prompt is never finished; Enter relabels it.
                self.modal = Modal::MarkerPrompt {
                    at: now,
                    pick: None,
                    text: String::new(),
                };
                vec![
                    ViewOutcome::Command {
                        cmd: Command::Mark {
                            label: DEFAULT_MARK_LABEL.to_string(),
                        },
                        at: now,
                    },
                    ViewOutcome::Redraw,
                ]
            }
            Action::FocusNext => self.focus_to(Pane::ALL[(self.focus.position() + 1) % 7]),
            Action::FocusPrev => self.focus_to(Pane::ALL[(self.focus.position() + 6) % 7]),
            Action::FocusKe1 => self.focus_to(Pane::Ke(Ke::Ke1)),
            Action::FocusKe2 => self.focus_to(Pane::Ke(Ke::Ke2)),
            Action::FocusKe3 => self.focus_to(Pane::Ke(Ke::Ke3)),
            Action::FocusKe4 => self.focus_to(Pane::Ke(Ke::Ke4)),
            Action::FocusDatabase => self.focus_to(Pane::Database),
            Action::FocusClient => self.focus_to(Pane::Client),
            Action::FocusChecklist => self.focus_to(Pane::Checklist),
            Action::Zoom => {
                self.zoomed = !self.zoomed;
                redraw
            }
            Action::ScrollUp => self.scroll(app, -1),
            Action::ScrollDown => self.scroll(app, 1),
            Action::PageUp => self.scroll(app, -(self.page() as i64 - 1).max(1)),
            Action::PageDown => self.scroll(app, (self.page() as i64 - 1).max(1)),
            Action::ScrollTop => self.scroll(app, i64::MIN / 2),
            Action::Follow => {
                match self.focus {
                    Pane::Ke(_) => {
                        self.scroll = Default::default();
                        self.marker_cursor = None;
                    }
                    Pane::Client => self.client_scroll = 0,
                    _ => {}
                }
                redraw
            }
            Action::ToggleFollow => {
                if let Some(i) = self.focus.ke_index() {
                    let vis = pane::visible_lines(app, i, self.tracked_only);
                    self.scroll[i].toggle(app, i, &vis);
                }
                redraw
            }
            Action::Search => match self.focus.ke_index() {
                Some(i) => {
                    self.modal = Modal::Search {
                        pane: i,
                        text: self.search[i].query.clone(),
                    };
                    redraw
                }
                None => Vec::new(),
            },
            Action::SearchNext => self.search_step(app, true),
            Action::SearchPrev => self.search_step(app, false),
            Action::ToggleTrackedOnly => {
                self.tracked_only = !self.tracked_only;
                redraw
            }
            Action::NextMarker => self.marker_step(app, true),
            Action::PrevMarker => self.marker_step(app, false),
            Action::ListMarkers => {
                self.modal = Modal::MarkerList {
                    selected: 0,
                    editing: None,
                    confirm_delete: false,
                };
                redraw
            }
            Action::ChecklistUp => self.select_step(app, -1),
            Action::ChecklistDown => self.select_step(app, 1),
            Action::ChecklistToggle => match app.checklist.steps.get(self.checklist_selected) {
                Some(step) => vec![
                    ViewOutcome::Command {
                        cmd: Command::Checklist {
                            step: step.number,
                            done: !step.done,
                        },
                        at: now,
                    },
                    ViewOutcome::Redraw,
                ],
                None => Vec::new(),
            },
            Action::Verdicts => {
                self.modal = Modal::Verdicts { selected: 0 };
                redraw
            }
            Action::Help => {
                self.modal = Modal::Help;
                redraw
            }
            // Actions the view does not own (the full keymap has more, such
            // as export-and-quit, which the loop handles itself).
            #[allow(unreachable_patterns)]
            _ => Vec::new(),
        }
    }

    fn focus_to(&mut self, pane: Pane) -> Vec<ViewOutcome> {
        self.focus = pane;
        vec![ViewOutcome::Redraw]
    }

    /// Scrolls the focused region by `delta` lines (negative: up).
    fn scroll(&mut self, app: &App, delta: i64) -> Vec<ViewOutcome> {
        match self.focus {
            Pane::Ke(ke) => {
                let i = ke.index();
                let vis = pane::visible_lines(app, i, self.tracked_only);
                let page = self.page();
                self.scroll[i].scroll_by(app, i, &vis, delta, page);
            }
            Pane::Client => {
                let max = app.artifacts.len().saturating_sub(1) as i64;
                self.client_scroll = (self.client_scroll as i64 - delta).clamp(0, max) as usize;
            }
            Pane::Checklist => return self.select_step(app, delta),
            Pane::Database => return Vec::new(),
        }
        vec![ViewOutcome::Redraw]
    }

    fn select_step(&mut self, app: &App, delta: i64) -> Vec<ViewOutcome> {
        let max = app.checklist.steps.len().saturating_sub(1) as i64;
        self.checklist_selected = (self.checklist_selected as i64 + delta).clamp(0, max) as usize;
        vec![ViewOutcome::Redraw]
    }

    /// Moves the focused pane's current match to the next (newer) or previous
    /// (older) match, wrapping around, and scrolls to it.
    fn search_step(&mut self, app: &App, forward: bool) -> Vec<ViewOutcome> {
        let Some(i) = self.focus.ke_index() else {
            return Vec::new();
        };
        let vis = pane::visible_lines(app, i, self.tracked_only);
        let found = pane::matches(app, i, &vis, &self.search[i].query);
        if found.is_empty() {
            return Vec::new();
        }
        let seq = |p: usize| pane::seq_of(app, i, vis[p]);
        let cur = self.search[i].current;
        let target = match (cur, forward) {
            (Some(c), true) => found.iter().copied().find(|&p| seq(p) > c),
            (Some(c), false) => found.iter().rev().copied().find(|&p| seq(p) < c),
            (None, _) => None,
        };
        let target = target.unwrap_or(if forward {
            found[0]
        } else {
            found[found.len() - 1]
        });
        self.go_to_match(app, i, &vis, target);
        vec![ViewOutcome::Redraw]
    }

    /// Makes the match at position `p` of `vis` current and shows it.
    fn go_to_match(&mut self, app: &App, i: usize, vis: &[usize], p: usize) {
        self.search[i].current = Some(pane::seq_of(app, i, vis[p]));
        let page = self.page();
        self.scroll[i].center_on(app, i, vis, p, page);
    }

    /// Confirms a search: the current match is the newest one at or above
    /// the pane's bottom line (the one nearest to what is on screen).
    fn start_search(&mut self, app: &App, i: usize, query: String) {
        self.search[i] = PaneSearch {
            query,
            current: None,
        };
        let vis = pane::visible_lines(app, i, self.tracked_only);
        let found = pane::matches(app, i, &vis, &self.search[i].query);
        let Some(&last) = found.last() else { return };
        let bottom = pane::bottom_pos(app, i, &self.scroll[i], &vis).unwrap_or(0);
        let p = found.iter().rev().copied().find(|&p| p <= bottom);
        self.go_to_match(app, i, &vis, p.unwrap_or(last));
    }

    /// Jumps every KE pane to the next or previous live marker. Past the last
    /// marker the panes follow again.
    fn marker_step(&mut self, app: &App, forward: bool) -> Vec<ViewOutcome> {
        let mut live: Vec<(DateTime<Utc>, u32)> =
            app.live_markers().map(|m| (m.at, m.id)).collect();
        if live.is_empty() {
            return Vec::new();
        }
        live.sort();
        let cur = self
            .marker_cursor
            .and_then(|id| live.iter().position(|(_, m)| *m == id));
        let target = match (cur, forward) {
            (None, true) => Some(0),
            (None, false) => Some(live.len() - 1),
            (Some(c), true) => (c + 1 < live.len()).then_some(c + 1),
            (Some(c), false) => Some(c.saturating_sub(1)),
        };
        match target {
            Some(t) => self.jump_to_marker(app, live[t].1),
            None => {
                self.marker_cursor = None;
                self.scroll = Default::default();
            }
        }
        vec![ViewOutcome::Redraw]
    }

    /// Scrolls every KE pane so the marker's rule is near the middle.
    pub(crate) fn jump_to_marker(&mut self, app: &App, id: u32) {
        let Some(m) = app.markers.iter().find(|m| m.id == id) else {
            return;
        };
        self.marker_cursor = Some(id);
        let page = self.page();
        for i in 0..4 {
            let vis = pane::visible_lines(app, i, self.tracked_only);
            let p = pane::first_at_or_after(app, i, &vis, m.at);
            self.scroll[i].center_on(app, i, &vis, p, page);
        }
    }
}

/// Live markers in time order, as the marker list shows them.
pub fn listed_markers(app: &App) -> Vec<&crate::app::Marker> {
    let mut v: Vec<_> = app.live_markers().collect();
    v.sort_by_key(|m| (m.at, m.id));
    v
}

/// The export failure reported since `since`, if any (the App notes it).
pub fn export_failure(app: &App, since: DateTime<Utc>) -> Option<&str> {
    app.notes
        .iter()
        .rev()
        .find(|(at, src, text)| {
            *at >= since && src == "bundle" && text.starts_with("export failed")
        })
        .map(|(_, _, text)| text.as_str())
}
