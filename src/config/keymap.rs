//! PLACEHOLDER keymap for the console's view and rendering layer.
//!
//! The real keymap (`keymap.toml` embedded, user overrides, duplicate and
//! unknown-key errors) is written separately and replaces this file at merge.
//! This stub only provides what the UI layer uses: the [`Action`] enum,
//! [`Keymap::lookup`] and [`Keymap::bindings`], plus [`Keymap::embedded`] for
//! tests, with the same signatures as the real one.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// What a key press asks for. Names are kebab-case in keymap files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Quit,
    MarkFault,
    FocusNext,
    FocusPrev,
    FocusKe1,
    FocusKe2,
    FocusKe3,
    FocusKe4,
    FocusDatabase,
    FocusClient,
    FocusChecklist,
    Zoom,
    ScrollUp,
    ScrollDown,
    PageUp,
    PageDown,
    ScrollTop,
    Follow,
    ToggleFollow,
    Search,
    SearchNext,
    SearchPrev,
    ToggleTrackedOnly,
    NextMarker,
    PrevMarker,
    ListMarkers,
    ChecklistUp,
    ChecklistDown,
    ChecklistToggle,
    Verdicts,
    Help,
}

/// Placeholder error type, so `embedded()` has the real signature.
#[derive(Debug, thiserror::Error)]
#[error("keymap error: {0}")]
pub struct KeymapError(pub String);

/// The placeholder default bindings: (action, keys, description).
const DEFAULTS: &[(Action, &[&str], &str)] = &[
    (
        Action::Quit,
        &["q"],
        "Quit: confirm the bundle label, export, exit",
    ),
    (
        Action::MarkFault,
        &["m"],
        "Mark a fault now, then name the symptom",
    ),
    (
        Action::ListMarkers,
        &["M"],
        "List markers: relabel or delete them",
    ),
    (Action::NextMarker, &["]"], "Jump to the next fault marker"),
    (
        Action::PrevMarker,
        &["["],
        "Jump to the previous fault marker",
    ),
    (Action::FocusNext, &["tab"], "Focus the next pane"),
    (Action::FocusPrev, &["backtab"], "Focus the previous pane"),
    (Action::FocusKe1, &["1"], "Focus KE-1"),
    (Action::FocusKe2, &["2"], "Focus KE-2"),
    (Action::FocusKe3, &["3"], "Focus KE-3"),
    (Action::FocusKe4, &["4"], "Focus KE-4"),
    (
        Action::FocusDatabase,
        &["d", "5"],
        "Focus the database pane",
    ),
    (Action::FocusClient, &["c", "6"], "Focus the client pane"),
    (
        Action::FocusChecklist,
        &["s", "7"],
        "Focus the capture checklist",
    ),
    (
        Action::Zoom,
        &["z"],
        "Zoom the focused pane to full screen, or back",
    ),
    (
        Action::ScrollUp,
        &["k", "up"],
        "Scroll up one line (pauses follow)",
    ),
    (Action::ScrollDown, &["j", "down"], "Scroll down one line"),
    (
        Action::PageUp,
        &["pageup"],
        "Scroll up one page (pauses follow)",
    ),
    (Action::PageDown, &["pagedown"], "Scroll down one page"),
    (Action::ScrollTop, &["g", "home"], "Jump to the oldest line"),
    (
        Action::Follow,
        &["G", "end"],
        "Jump to the newest line and follow",
    ),
    (
        Action::ToggleFollow,
        &["f"],
        "Pause or resume following new lines",
    ),
    (Action::Search, &["/"], "Search the focused pane"),
    (Action::SearchNext, &["n"], "Next search match"),
    (Action::SearchPrev, &["N"], "Previous search match"),
    (
        Action::ToggleTrackedOnly,
        &["t"],
        "Show only lines of the tracked users",
    ),
    (
        Action::ChecklistUp,
        &["K"],
        "Select the previous checklist step",
    ),
    (
        Action::ChecklistDown,
        &["J"],
        "Select the next checklist step",
    ),
    (
        Action::ChecklistToggle,
        &["space", "x"],
        "Tick or untick the selected step",
    ),
    (
        Action::Verdicts,
        &["v"],
        "Show the verdicts of the decision tree",
    ),
    (Action::Help, &["?", "f1"], "Show or hide this help"),
];

#[derive(Debug, Clone)]
pub struct Keymap {
    bindings: Vec<(Action, Vec<String>, &'static str)>,
}

impl Keymap {
    /// The placeholder defaults.
    pub fn embedded() -> Result<Keymap, KeymapError> {
        Ok(Keymap {
            bindings: DEFAULTS
                .iter()
                .map(|(a, keys, d)| (*a, keys.iter().map(|k| k.to_string()).collect(), *d))
                .collect(),
        })
    }

    /// The action for a key press; key releases map to nothing.
    pub fn lookup(&self, ev: KeyEvent) -> Option<Action> {
        if ev.kind == KeyEventKind::Release {
            return None;
        }
        let name = key_name(&ev)?;
        self.bindings
            .iter()
            .find(|(_, keys, _)| keys.contains(&name))
            .map(|(a, _, _)| *a)
    }

    /// Every action with its keys and description, in help order.
    pub fn bindings(&self) -> Vec<(Action, Vec<String>, &'static str)> {
        self.bindings.clone()
    }
}

fn key_name(ev: &KeyEvent) -> Option<String> {
    if ev
        .modifiers
        .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT)
    {
        return None;
    }
    Some(match ev.code {
        KeyCode::Char(' ') => "space".into(),
        KeyCode::Char(c) => c.to_string(),
        KeyCode::Tab if ev.modifiers.contains(KeyModifiers::SHIFT) => "backtab".into(),
        KeyCode::Tab => "tab".into(),
        KeyCode::BackTab => "backtab".into(),
        KeyCode::Up => "up".into(),
        KeyCode::Down => "down".into(),
        KeyCode::PageUp => "pageup".into(),
        KeyCode::PageDown => "pagedown".into(),
        KeyCode::Home => "home".into(),
        KeyCode::End => "end".into(),
        KeyCode::F(1) => "f1".into(),
        _ => return None,
    })
}
