#![allow(clippy::unwrap_used)]

use super::fixtures::*;
use super::pane::{self, Row};
use super::*;
use crate::app::event::Event;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

fn act(a: Action) -> ViewInput {
    ViewInput::Action(a)
}

fn commands(out: &[ViewOutcome]) -> Vec<(Command, DateTime<Utc>)> {
    out.iter()
        .filter_map(|o| match o {
            ViewOutcome::Command { cmd, at } => Some((cmd.clone(), *at)),
            _ => None,
        })
        .collect()
}

#[test]
fn marker_is_stamped_at_the_key_press_not_at_enter() {
    let (mut app, mut view) = (app(), ViewState::new());
    let out = press(&mut view, &mut app, act(Action::MarkFault), 10);
    assert_eq!(
        commands(&out),
        vec![(
            Command::Mark {
                label: "fault".into()
            },
            t(10)
        )]
    );
    assert!(matches!(view.modal, Modal::MarkerPrompt { at, .. } if at == t(10)));
    type_text(&mut view, &mut app, "audio cut", 14);
    let out = press(&mut view, &mut app, ViewInput::Enter, 20);
    let id = app.markers[0].id;
    assert_eq!(
        commands(&out),
        vec![(
            Command::Relabel {
                id,
                label: "audio cut".into()
            },
            t(20)
        )]
    );
    assert_eq!(view.modal, Modal::None);
    assert_eq!(app.markers.len(), 1);
    assert_eq!(app.markers[0].at, t(10));
    assert_eq!(app.markers[0].label, "audio cut");
}

#[test]
fn enter_with_nothing_typed_keeps_fault_and_esc_does_too() {
    let (mut app, mut view) = (app(), ViewState::new());
    press(&mut view, &mut app, act(Action::MarkFault), 1);
    let out = press(&mut view, &mut app, ViewInput::Enter, 2);
    assert!(commands(&out).is_empty(), "already labelled fault");
    press(&mut view, &mut app, act(Action::MarkFault), 3);
    type_text(&mut view, &mut app, "half typed", 4);
    press(&mut view, &mut app, ViewInput::Esc, 5);
    let labels: Vec<_> = app.markers.iter().map(|m| m.label.as_str()).collect();
    assert_eq!(labels, ["fault", "fault"]);
    assert_eq!(view.modal, Modal::None);
}

#[test]
fn quick_picks_choose_their_label() {
    let (mut app, mut view) = (app(), ViewState::new());
    // One key picks and saves.
    press(&mut view, &mut app, act(Action::MarkFault), 1);
    press(&mut view, &mut app, ViewInput::Char('2'), 2);
    assert_eq!(app.markers[0].label, "video freeze");
    assert_eq!(view.modal, Modal::None);
    // Down moves through the picks (from none to the first), Up moves back.
    press(&mut view, &mut app, act(Action::MarkFault), 3);
    for input in [
        ViewInput::Down,
        ViewInput::Down,
        ViewInput::Down,
        ViewInput::Up,
    ] {
        press(&mut view, &mut app, input, 4);
    }
    press(&mut view, &mut app, ViewInput::Enter, 5);
    assert_eq!(app.markers[1].label, "video freeze");
    // Typed text wins over a highlighted pick; a digit after text is text.
    press(&mut view, &mut app, act(Action::MarkFault), 6);
    press(&mut view, &mut app, ViewInput::Down, 6);
    type_text(&mut view, &mut app, "echo 2x", 7);
    press(&mut view, &mut app, ViewInput::Enter, 8);
    assert_eq!(app.markers[2].label, "echo 2x");
    assert_eq!(app.markers[2].at, t(6));
}

#[test]
fn typing_a_label_replaces_the_suggestion_and_enter_on_empty_keeps_it() {
    let (mut app, mut view) = (app(), ViewState::new());
    view.default_label = Some("lab-call".into());
    press(&mut view, &mut app, act(Action::Quit), 1);
    type_text(&mut view, &mut app, "lab-audio-cut", 2);
    let out = press(&mut view, &mut app, ViewInput::Enter, 3);
    assert!(
        out.contains(&ViewOutcome::Quit {
            label: "lab-audio-cut".into()
        }),
        "{out:?}"
    );
    let (mut app, mut view) = (self::app(), ViewState::new());
    view.default_label = Some("lab-call".into());
    press(&mut view, &mut app, act(Action::Quit), 1);
    type_text(&mut view, &mut app, "x", 2);
    press(&mut view, &mut app, ViewInput::Backspace, 2);
    let out = press(&mut view, &mut app, ViewInput::Enter, 3);
    assert!(out.contains(&ViewOutcome::Quit {
        label: "lab-call".into()
    }));
}

#[test]
fn quit_dialog_suggests_the_default_label_edits_and_goes_back() {
    let (mut app, mut view) = (app(), ViewState::new());
    let default = crate::bundle::export::default_label(&app);
    press(&mut view, &mut app, act(Action::Quit), 1);
    assert_eq!(
        view.modal,
        Modal::QuitDialog {
            label: String::new(),
            default: default.clone(),
            phase: QuitPhase::Editing
        }
    );
    type_text(&mut view, &mut app, "-ke1", 2);
    press(&mut view, &mut app, ViewInput::Backspace, 2);
    let out = press(&mut view, &mut app, ViewInput::Esc, 3);
    assert_eq!(view.modal, Modal::None);
    assert!(!out.iter().any(|o| matches!(o, ViewOutcome::Quit { .. })));

    // Up takes the suggestion into the field, to edit it.
    press(&mut view, &mut app, act(Action::Quit), 4);
    press(&mut view, &mut app, ViewInput::Up, 4);
    type_text(&mut view, &mut app, "-ke1", 4);
    let out = press(&mut view, &mut app, ViewInput::Enter, 5);
    assert!(out.contains(&ViewOutcome::Quit {
        label: format!("{default}-ke1")
    }));
    assert!(matches!(
        view.modal,
        Modal::QuitDialog { phase: QuitPhase::Exporting { since }, .. } if since == t(5)
    ));
    // An export under way cannot be cancelled...
    assert!(press(&mut view, &mut app, ViewInput::Esc, 6).is_empty());
    // ...but a failed one can be retried or left.
    app.update(Event::ExportFailed {
        reason: "disk full".into(),
        at: t(7),
    });
    let out = press(&mut view, &mut app, ViewInput::Enter, 8);
    assert!(out.iter().any(|o| matches!(o, ViewOutcome::Quit { .. })));
    app.update(Event::ExportFailed {
        reason: "disk full".into(),
        at: t(9),
    });
    press(&mut view, &mut app, ViewInput::Esc, 10);
    assert_eq!(view.modal, Modal::None);
}

#[test]
fn a_cleared_quit_label_falls_back_to_the_default() {
    let (mut app, mut view) = (app(), ViewState::new());
    press(&mut view, &mut app, act(Action::Quit), 1);
    press(&mut view, &mut app, ViewInput::ClearLine, 1);
    let out = press(&mut view, &mut app, ViewInput::Enter, 2);
    let label = crate::bundle::export::default_label(&app);
    assert!(out.contains(&ViewOutcome::Quit { label }));
}

#[test]
fn marker_list_relabels_and_deletes() {
    let (mut app, mut view) = (app(), ViewState::new());
    mark(&mut app, 20, "audio cut");
    let second = mark(&mut app, 30, "fault");
    press(&mut view, &mut app, act(Action::ListMarkers), 40);
    press(&mut view, &mut app, ViewInput::Down, 40);
    press(&mut view, &mut app, ViewInput::Char('r'), 41);
    assert!(matches!(&view.modal, Modal::MarkerList { editing: Some(l), .. } if l == "fault"));
    press(&mut view, &mut app, ViewInput::ClearLine, 41);
    type_text(&mut view, &mut app, "video freeze", 42);
    let out = press(&mut view, &mut app, ViewInput::Enter, 43);
    assert_eq!(
        commands(&out),
        vec![(
            Command::Relabel {
                id: second,
                label: "video freeze".into()
            },
            t(43)
        )]
    );
    assert_eq!(app.markers[1].label, "video freeze");

    // Delete asks first; any other key keeps the marker.
    press(&mut view, &mut app, ViewInput::Char('d'), 44);
    press(&mut view, &mut app, ViewInput::Char('n'), 44);
    assert!(!app.markers[1].deleted);
    press(&mut view, &mut app, ViewInput::Char('d'), 45);
    let out = press(&mut view, &mut app, ViewInput::Char('y'), 46);
    assert_eq!(
        commands(&out),
        vec![(Command::DeleteMarker { id: second }, t(46))]
    );
    assert!(app.markers[1].deleted);
    assert!(matches!(view.modal, Modal::MarkerList { selected: 0, .. }));
    press(&mut view, &mut app, ViewInput::Esc, 47);
    assert_eq!(view.modal, Modal::None);
}

#[test]
fn text_keys_go_to_an_open_prompt_not_to_the_keymap() {
    let (mut app, mut view) = (app(), ViewState::new());
    let km = Keymap::embedded().unwrap();
    let q = KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE);
    assert_eq!(input_for_key(&view, &km, q), Some(act(Action::Quit)));
    press(&mut view, &mut app, act(Action::MarkFault), 1);
    assert_eq!(input_for_key(&view, &km, q), Some(ViewInput::Char('q')));
    let m = KeyEvent::new(KeyCode::Char('m'), KeyModifiers::NONE);
    let input = input_for_key(&view, &km, m).unwrap();
    let out = press(&mut view, &mut app, input, 2);
    assert!(commands(&out).is_empty(), "m types, it does not mark again");
    assert!(matches!(&view.modal, Modal::MarkerPrompt { text, .. } if text == "m"));
    let ctrl_u = KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL);
    assert_eq!(
        input_for_key(&view, &km, ctrl_u),
        Some(ViewInput::ClearLine)
    );
}

#[test]
fn overlays_take_keymap_actions_and_any_key_closes_help() {
    let (mut app, mut view) = (app(), ViewState::new());
    let km = Keymap::embedded().unwrap();
    let unbound = KeyEvent::new(KeyCode::Char('§'), KeyModifiers::NONE);
    assert_eq!(input_for_key(&view, &km, unbound), None);
    press(&mut view, &mut app, act(Action::Help), 1);
    let input = input_for_key(&view, &km, unbound).unwrap();
    press(&mut view, &mut app, input, 2);
    assert_eq!(view.modal, Modal::None);
    press(&mut view, &mut app, act(Action::Verdicts), 3);
    let esc = KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE);
    assert_eq!(input_for_key(&view, &km, esc), Some(ViewInput::Esc));
    let j = KeyEvent::new(KeyCode::Char('j'), KeyModifiers::NONE);
    assert_eq!(input_for_key(&view, &km, j), Some(act(Action::ScrollDown)));
}

#[test]
fn scrolling_up_pauses_and_the_view_stays_put_as_lines_arrive() {
    let (mut app, mut view) = (app(), ViewState::new());
    lines(&mut app, Ke::Ke1, 0, 50);
    press(&mut view, &mut app, act(Action::ScrollUp), 60);
    assert!(!view.scroll[0].follow);
    let vis = pane::visible_lines(&app, 0, false);
    assert_eq!(pane::bottom_pos(&app, 0, &view.scroll[0], &vis), Some(48));
    lines(&mut app, Ke::Ke1, 100, 10);
    let w = pane::window(&app, 0, &view.scroll[0], false, 5);
    let last = *w.rows.last().unwrap();
    assert_eq!(last, Row::Line(48));
    assert_eq!(w.new_below, 11);
    // Scrolling back down to the newest line follows again.
    for _ in 0..11 {
        press(&mut view, &mut app, act(Action::ScrollDown), 61);
    }
    assert!(view.scroll[0].follow);
}

#[test]
fn toggle_follow_pauses_where_the_pane_is_and_follow_resumes() {
    let (mut app, mut view) = (app(), ViewState::new());
    lines(&mut app, Ke::Ke1, 0, 20);
    press(&mut view, &mut app, act(Action::ToggleFollow), 30);
    assert!(!view.scroll[0].follow);
    lines(&mut app, Ke::Ke1, 40, 3);
    let w = pane::window(&app, 0, &view.scroll[0], false, 4);
    assert_eq!(w.rows.last(), Some(&Row::Line(19)));
    press(&mut view, &mut app, act(Action::Follow), 31);
    assert!(view.scroll[0].follow);
    let w = pane::window(&app, 0, &view.scroll[0], false, 4);
    assert_eq!(w.rows.last(), Some(&Row::Line(22)));
}

#[test]
fn a_paused_pane_keeps_its_line_when_the_ring_drops_old_ones() {
    let (mut app, mut view) = (app(), ViewState::new());
    lines(&mut app, Ke::Ke1, 0, crate::app::PANE_CAPACITY);
    press(&mut view, &mut app, act(Action::PageUp), 1);
    let vis = pane::visible_lines(&app, 0, false);
    let p = pane::bottom_pos(&app, 0, &view.scroll[0], &vis).unwrap();
    let text = app.panes[0][vis[p]].text.clone();
    lines(&mut app, Ke::Ke1, 3000, 100);
    let vis = pane::visible_lines(&app, 0, false);
    let p = pane::bottom_pos(&app, 0, &view.scroll[0], &vis).unwrap();
    assert_eq!(app.panes[0][vis[p]].text, text);
}

#[test]
fn scroll_top_and_page_keys_stay_in_range() {
    let (mut app, mut view) = (app(), ViewState::new());
    lines(&mut app, Ke::Ke1, 0, 100);
    press(&mut view, &mut app, act(Action::ScrollTop), 1);
    let page = view.page();
    let w = pane::window(&app, 0, &view.scroll[0], false, page);
    assert_eq!(w.rows.first(), Some(&Row::Line(0)));
    assert_eq!(w.rows.len(), page);
    press(&mut view, &mut app, act(Action::PageDown), 2);
    let w = pane::window(&app, 0, &view.scroll[0], false, page);
    assert_eq!(w.rows.first(), Some(&Row::Line(page - 1)));
    // Empty panes do not scroll.
    press(&mut view, &mut app, act(Action::FocusKe2), 3);
    press(&mut view, &mut app, act(Action::ScrollUp), 3);
    assert!(view.scroll[1].follow);
}

#[test]
fn search_finds_the_nearest_match_then_steps_and_wraps() {
    let (mut app, mut view) = (app(), ViewState::new());
    for k in 0..30 {
        let text = if k % 10 == 3 {
            format!("OTK conflict {k}")
        } else {
            format!("other {k}")
        };
        hit(&mut app, Ke::Ke1, k, &text, false);
    }
    press(&mut view, &mut app, act(Action::Search), 40);
    type_text(&mut view, &mut app, "otk", 40);
    assert!(view.search[0].query.is_empty(), "confirmed only on Enter");
    press(&mut view, &mut app, ViewInput::Enter, 41);
    let base = pane::seq_base(&app, 0);
    let seq = |k: usize| base + k as u64;
    assert_eq!(view.search[0].query, "otk");
    assert_eq!(
        view.search[0].current,
        Some(seq(23)),
        "newest above the bottom"
    );
    assert!(!view.scroll[0].follow, "the match is scrolled to");
    press(&mut view, &mut app, act(Action::SearchPrev), 42);
    assert_eq!(view.search[0].current, Some(seq(13)));
    press(&mut view, &mut app, act(Action::SearchPrev), 42);
    press(&mut view, &mut app, act(Action::SearchPrev), 42);
    assert_eq!(view.search[0].current, Some(seq(23)), "wraps to the newest");
    press(&mut view, &mut app, act(Action::SearchNext), 43);
    assert_eq!(view.search[0].current, Some(seq(3)), "wraps to the oldest");
    let w = pane::window(&app, 0, &view.scroll[0], false, view.page());
    assert!(w.rows.contains(&Row::Line(3)));
    // Esc while typing keeps the confirmed query.
    press(&mut view, &mut app, act(Action::Search), 44);
    press(&mut view, &mut app, ViewInput::ClearLine, 44);
    press(&mut view, &mut app, ViewInput::Esc, 44);
    assert_eq!(view.search[0].query, "otk");
}

#[test]
fn tracked_only_shows_only_lines_of_the_tracked_people() {
    let (mut app, mut view) = (app(), ViewState::new());
    hit(&mut app, Ke::Ke2, 1, "to-device for @alice:hs", false);
    hit(&mut app, Ke::Ke2, 2, "to-device for @carol:hs", false);
    hit(
        &mut app,
        Ke::Ke2,
        3,
        "participant @bob:hs missing key",
        true,
    );
    press(&mut view, &mut app, act(Action::ToggleTrackedOnly), 4);
    assert!(view.tracked_only);
    let w = pane::window(&app, 1, &view.scroll[1], view.tracked_only, 10);
    assert_eq!(w.rows, vec![Row::Line(0), Row::Line(2)]);
    assert_eq!(w.visible, 2);
    press(&mut view, &mut app, act(Action::ToggleTrackedOnly), 5);
    assert_eq!(
        pane::window(&app, 1, &view.scroll[1], false, 10).rows.len(),
        3
    );
}

#[test]
fn markers_become_rules_between_lines_and_after_the_newest() {
    let mut app = app();
    lines(&mut app, Ke::Ke1, 0, 5);
    let a = mark(&mut app, 2, "audio cut");
    mark(&mut app, 100, "later");
    let vis = pane::visible_lines(&app, 0, false);
    let rows = pane::rows(&app, 0, &vis);
    let ia = app.markers.iter().position(|m| m.id == a).unwrap();
    assert_eq!(
        rows[2],
        Row::Marker(ia),
        "before the first line at its time"
    );
    assert_eq!(rows.len(), 7);
    assert!(matches!(rows[6], Row::Marker(_)));
}

#[test]
fn next_and_prev_marker_scroll_every_pane_to_the_marker() {
    let (mut app, mut view) = (app(), ViewState::new());
    lines(&mut app, Ke::Ke1, 0, 200);
    lines(&mut app, Ke::Ke2, 0, 200);
    let first = mark(&mut app, 20, "audio cut");
    let second = mark(&mut app, 150, "video freeze");
    press(&mut view, &mut app, act(Action::PrevMarker), 300);
    assert_eq!(view.marker_cursor, Some(second));
    press(&mut view, &mut app, act(Action::PrevMarker), 301);
    assert_eq!(view.marker_cursor, Some(first));
    let page = view.page();
    for i in [0, 1] {
        assert!(!view.scroll[i].follow);
        let w = pane::window(&app, i, &view.scroll[i], false, page);
        let idx = app.markers.iter().position(|m| m.id == first).unwrap();
        assert!(
            w.rows.contains(&Row::Marker(idx)),
            "pane {i} shows the rule"
        );
    }
    press(&mut view, &mut app, act(Action::NextMarker), 302);
    assert_eq!(view.marker_cursor, Some(second));
    press(&mut view, &mut app, act(Action::NextMarker), 303);
    assert_eq!(view.marker_cursor, None, "past the last marker: live again");
    assert!(view.scroll[0].follow);
}

#[test]
fn checklist_selection_and_toggle_send_stamped_commands() {
    let (mut app, mut view) = (app(), ViewState::new());
    press(&mut view, &mut app, act(Action::ChecklistDown), 1);
    press(&mut view, &mut app, act(Action::ChecklistDown), 1);
    let out = press(&mut view, &mut app, act(Action::ChecklistToggle), 5);
    assert_eq!(
        commands(&out),
        vec![(
            Command::Checklist {
                step: 3,
                done: true
            },
            t(5)
        )]
    );
    assert!(app.checklist.steps[2].done);
    let out = press(&mut view, &mut app, act(Action::ChecklistToggle), 6);
    assert_eq!(
        commands(&out),
        vec![(
            Command::Checklist {
                step: 3,
                done: false
            },
            t(6)
        )]
    );
    for _ in 0..20 {
        press(&mut view, &mut app, act(Action::ChecklistDown), 7);
    }
    assert_eq!(view.checklist_selected, 9);
}

#[test]
fn focus_cycles_zoom_toggles_and_overlays_close() {
    let (mut app, mut view) = (app(), ViewState::new());
    press(&mut view, &mut app, act(Action::FocusPrev), 1);
    assert_eq!(view.focus, Pane::Checklist);
    press(&mut view, &mut app, act(Action::FocusNext), 1);
    assert_eq!(view.focus, Pane::Ke(Ke::Ke1));
    press(&mut view, &mut app, act(Action::FocusDatabase), 1);
    press(&mut view, &mut app, act(Action::Zoom), 1);
    assert!(view.zoomed);
    press(&mut view, &mut app, act(Action::Help), 1);
    assert_eq!(view.modal, Modal::Help);
    press(&mut view, &mut app, ViewInput::Esc, 1);
    assert_eq!(view.modal, Modal::None);
    press(&mut view, &mut app, act(Action::Verdicts), 1);
    press(&mut view, &mut app, ViewInput::Down, 1);
    press(&mut view, &mut app, act(Action::ScrollDown), 1);
    assert_eq!(view.modal, Modal::Verdicts { selected: 2 });
    press(&mut view, &mut app, act(Action::Verdicts), 1);
    assert_eq!(view.modal, Modal::None);
}

#[test]
fn resize_changes_the_page_size() {
    let (mut app, mut view) = (app(), ViewState::new());
    let small = view.page();
    let out = press(
        &mut view,
        &mut app,
        ViewInput::Resize {
            width: 200,
            height: 60,
        },
        1,
    );
    assert_eq!(out, vec![ViewOutcome::Redraw]);
    assert!(view.page() > small);
}
