//! Keys while a prompt or overlay is open: they go to it, not to the panes.

use super::{
    DEFAULT_MARK_LABEL, Modal, QUICK_PICKS, QuitPhase, ViewInput, ViewOutcome, ViewState,
    export_failure, listed_markers,
};
use crate::app::App;
use crate::app::event::Command;
use crate::config::keymap::Action;
use chrono::{DateTime, Utc};

/// Applies a text-editing key to `text`; false if `input` is not one.
fn edit(text: &mut String, input: ViewInput) -> bool {
    match input {
        ViewInput::Char(c) if !c.is_control() => text.push(c),
        ViewInput::Backspace => {
            text.pop();
        }
        ViewInput::ClearLine => text.clear(),
        _ => return false,
    }
    true
}

fn command(cmd: Command, at: DateTime<Utc>) -> Vec<ViewOutcome> {
    vec![ViewOutcome::Command { cmd, at }, ViewOutcome::Redraw]
}

fn redraw() -> Vec<ViewOutcome> {
    vec![ViewOutcome::Redraw]
}

impl ViewState {
    pub(super) fn handle_modal(
        &mut self,
        app: &App,
        input: ViewInput,
        now: DateTime<Utc>,
    ) -> Vec<ViewOutcome> {
        let modal = std::mem::take(&mut self.modal);
        let (next, out) = match modal {
            Modal::None => (Modal::None, Vec::new()),
            Modal::MarkerPrompt { at, pick, text } => {
                marker_prompt(app, at, pick, text, input, now)
            }
            Modal::QuitDialog {
                label,
                default,
                phase,
            } => quit_dialog(app, label, default, phase, input, now),
            Modal::MarkerList {
                selected,
                editing,
                confirm_delete,
            } => return self.marker_list(app, selected, editing, confirm_delete, input, now),
            Modal::Help => (Modal::None, redraw()),
            Modal::Verdicts { selected } => verdicts(selected, input),
            Modal::Search { pane, mut text } => match input {
                ViewInput::Enter => {
                    self.start_search(app, pane, text.trim().to_string());
                    (Modal::None, redraw())
                }
                ViewInput::Esc => (Modal::None, redraw()),
                _ => {
                    let changed = edit(&mut text, input);
                    (
                        Modal::Search { pane, text },
                        if changed { redraw() } else { Vec::new() },
                    )
                }
            },
        };
        self.modal = next;
        out
    }

    fn marker_list(
        &mut self,
        app: &App,
        selected: usize,
        editing: Option<String>,
        confirm_delete: bool,
        input: ViewInput,
        now: DateTime<Utc>,
    ) -> Vec<ViewOutcome> {
        let list = listed_markers(app);
        let selected = selected.min(list.len().saturating_sub(1));
        let current = list.get(selected).map(|m| (m.id, m.label.clone()));
        let keep = |editing, confirm_delete| Modal::MarkerList {
            selected,
            editing,
            confirm_delete,
        };
        let (next, out) = if let Some(mut text) = editing {
            match (input, current) {
                (ViewInput::Enter, Some((id, _))) => {
                    let label = match text.trim() {
                        "" => DEFAULT_MARK_LABEL.to_string(),
                        t => t.to_string(),
                    };
                    (
                        keep(None, false),
                        command(Command::Relabel { id, label }, now),
                    )
                }
                (ViewInput::Esc, _) | (ViewInput::Enter, None) => (keep(None, false), redraw()),
                _ => {
                    let changed = edit(&mut text, input);
                    let out = if changed { redraw() } else { Vec::new() };
                    (keep(Some(text), false), out)
                }
            }
        } else if confirm_delete {
            match (input, current) {
                (ViewInput::Char('y' | 'd'), Some((id, _))) => (
                    Modal::MarkerList {
                        selected: selected.min(list.len().saturating_sub(2)),
                        editing: None,
                        confirm_delete: false,
                    },
                    command(Command::DeleteMarker { id }, now),
                ),
                _ => (keep(None, false), redraw()),
            }
        } else {
            let step = |d: i64| Modal::MarkerList {
                selected: (selected as i64 + d).clamp(0, list.len().saturating_sub(1) as i64)
                    as usize,
                editing: None,
                confirm_delete: false,
            };
            match (input, current) {
                (ViewInput::Up | ViewInput::Char('k'), _) => (step(-1), redraw()),
                (ViewInput::Down | ViewInput::Char('j'), _) => (step(1), redraw()),
                (ViewInput::Char('r' | 'e'), Some((_, label))) => {
                    (keep(Some(label), false), redraw())
                }
                (ViewInput::Char('d' | 'x'), Some(_)) => (keep(None, true), redraw()),
                (ViewInput::Enter, Some((id, _))) => {
                    self.jump_to_marker(app, id);
                    (Modal::None, redraw())
                }
                (ViewInput::Esc | ViewInput::Char('q') | ViewInput::Enter, _) => {
                    (Modal::None, redraw())
                }
                _ => (keep(None, false), Vec::new()),
            }
        };
        self.modal = next;
        out
    }
}

fn marker_prompt(
    app: &App,
    at: DateTime<Utc>,
    mut pick: Option<usize>,
    mut text: String,
    input: ViewInput,
    now: DateTime<Utc>,
) -> (Modal, Vec<ViewOutcome>) {
    let label = match input {
        // One key for the common symptoms: hands are busy during a call.
        ViewInput::Char(c @ '1'..='4') if text.is_empty() => {
            QUICK_PICKS[(c as u8 - b'1') as usize].to_string()
        }
        ViewInput::Enter => match (text.trim(), pick) {
            ("", Some(p)) => QUICK_PICKS[p].to_string(),
            ("", None) => DEFAULT_MARK_LABEL.to_string(),
            (t, _) => t.to_string(),
        },
        // The marker was made at the key press; Esc keeps it as "fault".
        ViewInput::Esc => DEFAULT_MARK_LABEL.to_string(),
        ViewInput::Up => {
            pick = pick.and_then(|p| p.checked_sub(1));
            return (Modal::MarkerPrompt { at, pick, text }, redraw());
        }
        ViewInput::Down => {
            pick = Some(pick.map_or(0, |p| (p + 1).min(QUICK_PICKS.len() - 1)));
            return (Modal::MarkerPrompt { at, pick, text }, redraw());
        }
        _ => {
            let changed = edit(&mut text, input);
            let out = if changed { redraw() } else { Vec::new() };
            return (Modal::MarkerPrompt { at, pick, text }, out);
        }
    };
    if label == DEFAULT_MARK_LABEL {
        return (Modal::None, redraw());
    }
    // The marker made at the key press; the newest one with that time.
    let made = app
        .markers
        .iter()
        .filter(|m| m.at == at && !m.deleted)
        .map(|m| m.id)
        .max();
    let cmd = match made {
        Some(id) => command(Command::Relabel { id, label }, now),
        // The loop did not apply the first command: make it now, still
        // stamped at the key press.
        None => command(Command::Mark { label }, at),
    };
    (Modal::None, cmd)
}

/// The quit dialog. The suggested label is shown in the empty field:
/// typing replaces it, Enter on the empty field keeps it, Up takes it into
/// the field to edit.
fn quit_dialog(
    app: &App,
    mut label: String,
    default: String,
    phase: QuitPhase,
    input: ViewInput,
    now: DateTime<Utc>,
) -> (Modal, Vec<ViewOutcome>) {
    let _ = app;
    let export = |label: String, default: String| {
        let label = match label.trim() {
            "" => default.clone(),
            t => t.to_string(),
        };
        (
            Modal::QuitDialog {
                label: label.clone(),
                default,
                phase: QuitPhase::Exporting { since: now },
            },
            vec![ViewOutcome::Quit { label }, ViewOutcome::Redraw],
        )
    };
    match phase {
        QuitPhase::Editing => match input {
            ViewInput::Enter => export(label, default),
            ViewInput::Esc => (Modal::None, redraw()),
            ViewInput::Up if label.is_empty() => {
                let phase = QuitPhase::Editing;
                let label = default.clone();
                (
                    Modal::QuitDialog {
                        label,
                        default,
                        phase,
                    },
                    redraw(),
                )
            }
            _ => {
                let changed = edit(&mut label, input);
                let out = if changed { redraw() } else { Vec::new() };
                let phase = QuitPhase::Editing;
                (
                    Modal::QuitDialog {
                        label,
                        default,
                        phase,
                    },
                    out,
                )
            }
        },
        QuitPhase::Exporting { since } => {
            let failed = export_failure(app, since).is_some();
            match input {
                ViewInput::Enter if failed => export(label, default),
                ViewInput::Esc if failed => (Modal::None, redraw()),
                // An export under way cannot be taken back.
                _ => (
                    Modal::QuitDialog {
                        label,
                        default,
                        phase: QuitPhase::Exporting { since },
                    },
                    Vec::new(),
                ),
            }
        }
    }
}

fn verdicts(selected: usize, input: ViewInput) -> (Modal, Vec<ViewOutcome>) {
    use Action::*;
    let up = matches!(
        input,
        ViewInput::Up | ViewInput::Action(ScrollUp | ChecklistUp | PageUp)
    );
    let down = matches!(
        input,
        ViewInput::Down | ViewInput::Action(ScrollDown | ChecklistDown | PageDown)
    );
    if up || down {
        let selected = if up {
            selected.saturating_sub(1)
        } else {
            (selected + 1).min(3)
        };
        return (Modal::Verdicts { selected }, redraw());
    }
    match input {
        ViewInput::Esc | ViewInput::Enter | ViewInput::Action(Verdicts | Help | Quit) => {
            (Modal::None, redraw())
        }
        _ => (Modal::Verdicts { selected }, Vec::new()),
    }
}
