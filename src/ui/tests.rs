//! Rendering tests on ratatui's TestBackend. Times come from fixed event
//! times (12:00:00 UTC base), never from the wall clock.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::app::event::{ArtifactKind, ClientArtifact, ClientEntry, Command, Event};
use crate::app::view::fixtures::*;
use crate::app::view::{Modal, Pane, QuitPhase, ViewInput};
use crate::config::keymap::Action;
use crate::sources::{DbPoll, SourceStatus};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier};
use serde_json::json;

/// The buffer as text, one line per row.
fn text(buf: &Buffer) -> String {
    let w = buf.area.width as usize;
    buf.content()
        .chunks(w)
        .map(|row| row.iter().map(|c| c.symbol()).collect::<String>())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Column and row where `needle` starts.
fn find(buf: &Buffer, needle: &str) -> Option<(u16, u16)> {
    let w = buf.area.width as usize;
    for (y, row) in buf.content().chunks(w).enumerate() {
        let syms: Vec<&str> = row.iter().map(|c| c.symbol()).collect();
        for x in 0..syms.len() {
            let mut s = String::new();
            for sym in &syms[x..] {
                if s.len() >= needle.len() {
                    break;
                }
                s.push_str(sym);
            }
            if s.starts_with(needle) {
                return Some((x as u16, y as u16));
            }
        }
    }
    None
}

fn screen(w: u16, h: u16, app: &App, view: &ViewState, now: i64) -> Buffer {
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    let km = Keymap::embedded().unwrap();
    term.draw(|f| draw(f, app, view, &km, t(now))).unwrap();
    term.backend().buffer().clone()
}

fn region(w: u16, h: u16, f: impl FnOnce(&mut Frame, Rect)) -> Buffer {
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    term.draw(|fr| {
        let a = fr.area();
        f(fr, a)
    })
    .unwrap();
    term.backend().buffer().clone()
}

fn busy_app() -> App {
    let mut app = app();
    for k in 0..12 {
        hit(
            &mut app,
            Ke::Ke1,
            k * 5,
            &format!("POST /keys/upload 400 One time key signed_curve25519:AAA{k} already exists"),
            true,
        );
    }
    hit(&mut app, Ke::Ke2, 30, "MissingKey for @bob:hs", true);
    hit(&mut app, Ke::Ke4, 40, "update_delayed_event slow", false);
    app.update(Event::Status {
        source: "server-log".into(),
        status: SourceStatus::Live,
        at: t(1),
    });
    app
}

#[test]
fn a_small_terminal_says_how_big_it_must_be() {
    let app = busy_app();
    let buf = screen(80, 24, &app, &ViewState::new(), 60);
    let s = text(&buf);
    assert!(
        s.contains("terminal too small: need 100x30, have 80x24"),
        "{s}"
    );
    assert!(!s.contains("KE-1"));
    let buf = screen(120, 20, &app, &ViewState::new(), 60);
    assert!(text(&buf).contains("have 120x20"));
}

#[test]
fn the_minimum_screen_shows_every_region() {
    let app = busy_app();
    let s = text(&screen(100, 30, &app, &ViewState::new(), 60));
    for title in [
        "KE-1",
        "KE-2",
        "KE-3",
        "KE-4",
        "Database",
        "Client",
        "Checklist",
        "Q1",
        "Q4",
        "markers",
        "elapsed",
        "12:01:00 UTC",
    ] {
        assert!(s.contains(title), "missing {title:?} in\n{s}");
    }
    assert!(s.contains("OTK upload"), "meaning, maybe shortened\n{s}");
}

#[test]
fn a_large_screen_uses_the_room() {
    let app = busy_app();
    let s = text(&screen(200, 60, &app, &ViewState::new(), 60));
    for ke in Ke::ALL {
        assert!(s.contains(ke.meaning()), "full meaning of {ke}\n{s}");
    }
    assert!(
        s.contains("KE-1 OTK upload conflicts · 12 errors · 12 keys/upload"),
        "{s}"
    );
    // All twelve KE-1 lines fit in a wide layout's pane.
    assert!(s.contains("signed_curve25519:AAA0"), "{s}");
    assert!(s.contains("Prep server tail"));
    assert!(s.contains("no database configured"));
}

#[test]
fn ke_title_has_errors_traffic_rate_and_age() {
    let app = busy_app();
    let line = ke_pane::title(&app, Ke::Ke1, t(67), 80);
    let s: String = line.spans.iter().map(|s| s.content.as_ref()).collect();
    assert_eq!(
        s,
        " KE-1 OTK upload conflicts · 12 errors · 12 keys/upload, 11/min · last 12s ago "
    );
    // The broad patterns count traffic: the errors are the headline, what
    // the number beside them counts is named.
    let title = |ke, w| -> String {
        ke_pane::title(&app, ke, t(67), w)
            .spans
            .iter()
            .map(|s| s.content.as_ref())
            .collect()
    };
    let ke2 = title(Ke::Ke2, 100);
    assert!(
        ke2.starts_with(" KE-2 call media keys not decrypting · 1 error · 1 to-device, "),
        "{ke2}"
    );
    let ke4 = title(Ke::Ke4, 68);
    assert!(
        ke4.contains("MatrixRTC delayed-event timeouts · 0 errors · 1 delayed-event"),
        "the whole meaning before the rate and age: {ke4}"
    );
    // Narrow: the meaning is cut first, name and count stay.
    let s: String = ke_pane::title(&app, Ke::Ke1, t(67), 30)
        .spans
        .iter()
        .map(|s| s.content.as_ref())
        .collect();
    assert!(s.chars().count() <= 30, "{s}");
    assert!(s.contains("KE-1") && s.contains("12 errors"), "{s}");
    let idle = ke_pane::title(&app, Ke::Ke3, t(67), 80);
    let s: String = idle.spans.iter().map(|s| s.content.as_ref()).collect();
    assert!(s.contains("· 0 errors · 0 lines, 0/min"), "{s}");
    assert!(!s.contains("last"));
}

#[test]
fn ke_pane_shows_timestamped_lines_errors_in_red_and_tracked_emphasised() {
    let mut app = app();
    hit(
        &mut app,
        Ke::Ke2,
        5,
        "MissingKey for @bob:hs at index 3",
        true,
    );
    hit(&mut app, Ke::Ke2, 6, "to-device for @carol:hs", false);
    let view = ViewState::new();
    let buf = region(70, 8, |f, a| {
        ke_pane::render(f, a, &app, &view, Ke::Ke2, t(10))
    });
    let s = text(&buf);
    assert!(s.contains("12:00:05 MissingKey for @bob:hs"), "{s}");
    assert!(s.contains("12:00:06 to-device for @carol:hs"), "{s}");
    assert!(s.contains("┃12:00:05"), "tracked gutter\n{s}");
    let (x, y) = find(&buf, "MissingKey").unwrap();
    let cell = &buf[(x, y)];
    assert_eq!(cell.fg, Color::Red);
    assert!(cell.modifier.contains(Modifier::BOLD));
    let (x, y) = find(&buf, "to-device").unwrap();
    assert_ne!(buf[(x, y)].fg, Color::Red);
    assert!(s.contains("▶ live"));
}

#[test]
fn ke_pane_draws_marker_rules_pause_state_and_search_hits() {
    let mut app = app();
    lines(&mut app, Ke::Ke1, 0, 40);
    mark(&mut app, 35, "audio cut");
    let mut view = ViewState::new();
    let s = text(&region(80, 10, |f, a| {
        ke_pane::render(f, a, &app, &view, Ke::Ke1, t(50))
    }));
    assert!(s.contains("──── ⚑ 12:00:35 audio cut #1 ──"), "{s}");

    view.handle(&app, ViewInput::Action(Action::Search), t(51));
    for c in "line 3".chars() {
        view.handle(&app, ViewInput::Char(c), t(51));
    }
    view.handle(&app, ViewInput::Enter, t(52));
    let buf = region(80, 10, |f, a| {
        ke_pane::render(f, a, &app, &view, Ke::Ke1, t(52))
    });
    let s = text(&buf);
    assert!(s.contains("⏸ paused"), "{s}");
    assert!(s.contains("/line 3 11/11"), "newest of 11 matches\n{s}");
    assert!(s.contains("▶12:00:39 line 39"), "{s}");
    let (x, y) = find(&buf, "line 39").unwrap();
    assert_eq!(buf[(x, y)].bg, Color::Yellow, "match highlighted");
}

#[test]
fn ke_pane_sparkline_counts_the_last_ten_minutes() {
    let mut app = app();
    lines(&mut app, Ke::Ke1, 0, 30);
    let view = ViewState::new();
    // 62 columns of pane, 60 inside: one per 10-s period.
    let buf = region(62, 6, |f, a| {
        ke_pane::render(f, a, &app, &view, Ke::Ke1, t(599))
    });
    let row: String = (1..61).map(|x| buf[(x, 1)].symbol().to_string()).collect();
    assert_eq!(
        row.trim_end().chars().count(),
        3,
        "three 10-s periods at the left: {row:?}"
    );
    assert!(row.starts_with("███"), "{row:?}");
    // Ten minutes later they have scrolled out.
    let buf = region(62, 6, |f, a| {
        ke_pane::render(f, a, &app, &view, Ke::Ke1, t(1300))
    });
    let row: String = (1..61).map(|x| buf[(x, 1)].symbol().to_string()).collect();
    assert_eq!(row.trim(), "");
}

#[test]
fn tracked_only_with_no_user_says_so() {
    let mut app = app();
    app.subject = Default::default();
    hit(&mut app, Ke::Ke1, 1, "anything", false);
    let mut view = ViewState::new();
    view.tracked_only = true;
    let s = text(&region(70, 6, |f, a| {
        ke_pane::render(f, a, &app, &view, Ke::Ke1, t(2))
    }));
    assert!(s.contains("no user configured"), "{s}");
    assert!(s.contains("tracked only"));
}

#[test]
fn database_pane_without_a_database_says_so() {
    let app = app();
    let view = ViewState::new();
    let s = text(&region(40, 8, |f, a| {
        db_pane::render(f, a, &app, &view, t(1))
    }));
    assert!(s.contains("no database configured"), "{s}");
}

fn poll(at: i64, otk: i64, pending: i64, used: bool) -> Event {
    let rows = |v: serde_json::Value| -> Vec<crate::sources::Row> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_object().unwrap().clone())
            .collect()
    };
    let mut results = std::collections::BTreeMap::new();
    results.insert(
        "otk_counts".to_string(),
        rows(json!([{"algorithm": "signed_curve25519", "count": otk}])),
    );
    results.insert(
        "fallback_keys".to_string(),
        rows(json!([{"algorithm": "signed_curve25519", "used": used}])),
    );
    results.insert(
        "device_inbox_pending".to_string(),
        rows(json!([{"user_id": "@alice:hs", "device_id": "ALICEDEV", "pending": pending}])),
    );
    results.insert(
        "devices".to_string(),
        rows(json!([{"user_id": "@alice:hs", "device_id": "ALICEDEV", "last_seen": (BASE + 50) * 1000}])),
    );
    let mut problems = std::collections::BTreeMap::new();
    problems.insert("delayed_events".to_string(), "table missing".to_string());
    Event::Db(Box::new(DbPoll {
        at: t(at),
        duration_ms: 12,
        results,
        changes: Vec::new(),
        problems,
        sql: Default::default(),
    }))
}

#[test]
fn database_pane_shows_keys_backlog_growth_devices_and_problems() {
    let mut app = app();
    app.update(poll(10, 5, 2, false));
    app.update(poll(20, 0, 9, true));
    let view = ViewState::new();
    let buf = region(60, 14, |f, a| db_pane::render(f, a, &app, &view, t(80)));
    let s = text(&buf);
    assert!(s.contains("OTK signed_curve25519 0"), "{s}");
    let (x, y) = find(&buf, "0 ")
        .map(|_| find(&buf, "signed_curve25519 0").unwrap())
        .unwrap();
    assert_eq!(buf[(x + 18, y)].fg, Color::Red, "zero keys is red");
    assert!(s.contains("fallback key: USED"), "{s}");
    assert!(s.contains("ALICEDEV 9 ▲+7 growing"), "{s}");
    assert!(s.contains("last ok poll 12:00:20 (1m ago)"), "{s}");
    assert!(s.contains("✖ delayed_events: table missing"), "{s}");
    assert!(s.contains("ALICEDEV 12:00:50 (30s ago)"), "{s}");
}

#[test]
fn database_pane_shows_a_source_that_has_not_polled_yet() {
    let mut app = app();
    app.update(Event::Status {
        source: "database".into(),
        status: SourceStatus::Error {
            reason: "password authentication failed".into(),
        },
        at: t(1),
    });
    let view = ViewState::new();
    let s = text(&region(50, 8, |f, a| {
        db_pane::render(f, a, &app, &view, t(2))
    }));
    assert!(s.contains("database: error"), "{s}");
    assert!(s.contains("password authentication failed"), "{s}");
}

fn artifact(file: &str, kind: ArtifactKind, at: i64, kes: &[Ke], unparsed: Option<&str>) -> Event {
    Event::Client(Box::new(ClientArtifact {
        bytes: 100,
        unparsed: unparsed.map(str::to_string),
        entries: kes
            .iter()
            .enumerate()
            .map(|(i, ke)| ClientEntry {
                file: file.into(),
                index: i,
                at: Some(t(at - 10 + i as i64)),
                level: Some("warn".into()),
                ke: Some(*ke),
                error: true,
                message: format!("{file} entry {i}"),
                line: None,
            })
            .collect(),
        har_keys_upload: 4,
        ..ClientArtifact::new(file.into(), kind, t(at))
    }))
}

#[test]
fn client_pane_lists_artifacts_with_arrival_counts_and_unparsed() {
    let mut app = app();
    app.update(artifact(
        "lotus-crypto-diag-1.json",
        ArtifactKind::Diag,
        30,
        &[Ke::Ke1, Ke::Ke1, Ke::Ke2],
        None,
    ));
    app.update(artifact("call.har", ArtifactKind::Har, 40, &[], None));
    app.update(artifact(
        "broken.json",
        ArtifactKind::Diag,
        50,
        &[],
        Some("not JSON"),
    ));
    let view = ViewState::new();
    let s = text(&region(80, 8, |f, a| {
        client_pane::render(f, a, &app, &view, t(60))
    }));
    assert!(s.contains("KE-1 2 KE-2 1 KE-3 0 KE-4 0"), "{s}");
    assert!(
        s.contains("12:00:30 diag lotus-crypto-diag-1.json 1:2 2:1 3:0 4:0"),
        "{s}"
    );
    assert!(
        s.contains("12:00:40 HAR  call.har keys/upload 4 conflicts 0"),
        "{s}"
    );
    assert!(s.contains("broken.json UNPARSED: not JSON"), "{s}");
    // Narrow: counts on their own line, nothing cut.
    let s = text(&region(33, 9, |f, a| {
        client_pane::render(f, a, &app, &view, t(60))
    }));
    assert!(s.contains("12:00:30 diag lotus-crypto-dia…"), "{s}");
    assert!(s.contains("keys/upload 4 conflicts 0"), "{s}");
    assert!(s.contains("1:2 2:1 3:0 4:0"), "{s}");
}

#[test]
fn client_pane_shows_a_missing_downloads_folder() {
    let mut app = app();
    app.update(Event::Status {
        source: "downloads".into(),
        status: SourceStatus::Reconnecting {
            attempt: 2,
            next_try_ms: 5000,
            reason: "folder /x/Downloads does not exist".into(),
        },
        at: t(1),
    });
    let view = ViewState::new();
    let s = text(&region(80, 6, |f, a| {
        client_pane::render(f, a, &app, &view, t(2))
    }));
    assert!(
        s.contains("downloads: folder /x/Downloads does not exist, retrying"),
        "{s}"
    );
    assert!(s.contains("no diag report or HAR yet"));
}

#[test]
fn checklist_shows_ticks_who_and_when_and_the_selected_detail() {
    let mut app = busy_app();
    app.update(Event::Command {
        cmd: Command::Checklist {
            step: 2,
            done: true,
        },
        at: t(30),
    });
    let mut view = ViewState::new();
    view.focus = Pane::Checklist;
    view.checklist_selected = 1;
    let s = text(&region(70, 16, |f, a| {
        checklist::render(f, a, &app, &view, t(40))
    }));
    // Steps 1 (stream live), 4 (start noted, on the first tick) and 2 (ticked).
    assert!(s.contains("Checklist 3/10"), "{s}");
    assert!(s.contains("[x]   1 Prep server tail"), "{s}");
    assert!(s.contains("12:00:01 auto"), "auto tick: {s}");
    assert!(s.contains("12:00:30 op"), "{s}");
    assert!(
        s.contains("[ ] ▸ 3 DevTools"),
        "the current step is marked\n{s}"
    );
    assert!(
        s.contains("Crypto Diagnostics"),
        "selected step's detail\n{s}"
    );
    // Small: a window around the selection, still showing it.
    view.checklist_selected = 9;
    let s = text(&region(40, 9, |f, a| {
        checklist::render(f, a, &app, &view, t(40))
    }));
    assert!(s.contains(" 10 "), "{s}");
}

#[test]
fn status_bar_shows_sources_with_reasons_clock_and_markers() {
    let mut app = busy_app();
    app.update(Event::Status {
        source: "ssh".into(),
        status: SourceStatus::Reconnecting {
            attempt: 3,
            next_try_ms: 5000,
            reason: "connection refused".into(),
        },
        at: t(99),
    });
    app.update(Event::Status {
        source: "database".into(),
        status: SourceStatus::Stalled {
            reason: "no answer for 30s".into(),
        },
        at: t(99),
    });
    mark(&mut app, 50, "audio cut");
    let mut view = ViewState::new();
    view.journal = Some("/tmp/out/.journal-1".into());
    let s = text(&region(200, 2, |f, a| {
        status_bar::render(f, a, &app, &view, t(100))
    }));
    assert!(s.contains("● server-log live"), "{s}");
    assert!(
        s.contains("↻ ssh reconnecting (attempt 3, next try in 4s): connection refused"),
        "{s}"
    );
    assert!(s.contains("▲ database stalled: no answer for 30s"), "{s}");
    assert!(s.contains("elapsed 00:01:40"), "{s}");
    assert!(s.contains("12:01:40 UTC"), "{s}");
    assert!(s.contains("⚑ 1 marker"), "{s}");
    assert!(s.contains("journal /tmp/out/.journal-1"), "{s}");
}

#[test]
fn timeline_puts_markers_and_stamps_on_the_ten_minute_axis() {
    let mut app = busy_app();
    mark(&mut app, 300, "audio cut");
    let s = text(&region(111, 3, |f, a| timeline::render(f, a, &app, t(600))));
    let rows: Vec<&str> = s.lines().collect();
    // 100 columns for 600 s: 300 s before now is column 50 after the gutter.
    let col = rows[0].chars().position(|c| c == '⚑').unwrap();
    assert_eq!(col, 11 + 50, "{s}");
    assert!(rows[0].contains("⚑audio cut"));
    // Near the right edge the label goes before the flag.
    let s = text(&region(111, 3, |f, a| timeline::render(f, a, &app, t(302))));
    assert!(s.lines().next().unwrap().contains("audio cut⚑"), "{s}");
    assert!(rows[1].contains("✓1"), "auto tick at 12:00:01\n{s}");
    assert!(rows[2].contains("-10m") && rows[2].contains("now"), "{s}");
}

#[test]
fn verdict_strip_shows_all_four_answers() {
    let app = busy_app();
    let v = crate::verdicts::decide(&app);
    let s = text(&region(100, 1, |f, a| verdict_strip::render(f, a, &v)));
    for q in ["Q1", "Q2", "Q3", "Q4"] {
        assert!(s.contains(q), "{s}");
    }
    assert!(s.contains("insufficient"), "{s}");
    let s = text(&region(100, 30, |f, a| {
        verdict_strip::render_detail(f, a, &app, &v, 0)
    }));
    assert!(s.contains("basis:"), "{s}");
    assert!(s.contains(&v.q1.summary[..20]), "{s}");
}

#[test]
fn help_overlay_lists_every_live_binding() {
    let app = app();
    let mut view = ViewState::new();
    view.modal = crate::app::view::Modal::Help;
    let km = Keymap::embedded().unwrap();
    let s = text(&screen(200, 60, &app, &view, 1));
    for (_, keys, desc) in km.bindings() {
        assert!(s.contains(desc), "missing {desc:?}\n{s}");
        assert!(s.contains(&keys.join(" ")), "missing keys {keys:?}");
    }
    // At the minimum size it still fits, in columns, cut if it must.
    let s = text(&screen(100, 30, &app, &view, 1));
    assert!(s.contains("Mark a fault now"), "{s}");
    assert!(s.contains("Show or hide this help"), "{s}");
}

#[test]
fn prompts_show_the_press_time_picks_label_and_export_progress() {
    let mut app = busy_app();
    let mut view = ViewState::new();
    let out = view.handle(&app, ViewInput::Action(Action::MarkFault), t(70));
    apply(&mut app, &out);
    view.handle(&app, ViewInput::Char('x'), t(72));
    let s = text(&screen(100, 30, &app, &view, 75));
    assert!(s.contains("Fault marked at 12:01:10 UTC"), "{s}");
    assert!(s.contains("1 audio cut") && s.contains("4 other"), "{s}");
    assert!(s.contains("> x"), "{s}");

    view.handle(&app, ViewInput::Esc, t(76));
    view.handle(&app, ViewInput::Action(Action::Quit), t(80));
    let label = crate::bundle::export::default_label(&app);
    let s = text(&screen(100, 30, &app, &view, 80));
    // The suggestion shows in the empty field, after the cursor.
    assert!(s.contains(&format!("> █{label}")), "{s}");
    assert!(s.contains("Enter keeps this one"), "{s}");
    view.handle(&app, ViewInput::Enter, t(81));
    assert!(matches!(
        &view.modal,
        crate::app::view::Modal::QuitDialog {
            phase: QuitPhase::Exporting { .. },
            ..
        }
    ));
    let s = text(&screen(100, 30, &app, &view, 84));
    assert!(s.contains("exporting… 3s"), "{s}");
    app.update(Event::ExportFailed {
        reason: "No space left on device".into(),
        at: t(85),
    });
    let s = text(&screen(100, 30, &app, &view, 86));
    assert!(s.contains("export failed: No space left on device"), "{s}");
    assert!(s.contains("Enter retry"), "{s}");
}

#[test]
fn marker_list_shows_markers_and_the_delete_question() {
    let mut app = busy_app();
    mark(&mut app, 20, "audio cut");
    mark(&mut app, 40, "video freeze");
    let mut view = ViewState::new();
    view.handle(&app, ViewInput::Action(Action::ListMarkers), t(50));
    view.handle(&app, ViewInput::Char('d'), t(50));
    let s = text(&screen(100, 30, &app, &view, 50));
    assert!(s.contains("Markers (2)"), "{s}");
    assert!(s.contains("12:00:20 audio cut"), "{s}");
    assert!(s.contains("12:00:40 video freeze"), "{s}");
    assert!(s.contains("delete marker #1 'audio cut'?"), "{s}");
}

#[test]
fn zoom_gives_the_focused_pane_the_whole_main_area() {
    let app = busy_app();
    let mut view = ViewState::new();
    view.focus = Pane::Ke(Ke::Ke2);
    view.zoomed = true;
    let s = text(&screen(100, 30, &app, &view, 60));
    assert!(s.contains("KE-2 call media keys not decrypting"), "{s}");
    assert!(!s.contains("KE-1 ") && !s.contains("Checklist"), "{s}");
    assert!(
        s.contains("Q1") && s.contains("markers"),
        "strips stay\n{s}"
    );
}

/// Every size from 1x1 up, with every overlay, zoomed or not, on a busy
/// and an empty capture: what each must show.
#[test]
fn every_size_and_overlay_shows_what_it_must() {
    let mut app = busy_app();
    mark(&mut app, 33, "audio cut");
    let empty = crate::app::view::fixtures::app();
    let overlays = [
        Modal::None,
        Modal::Help,
        Modal::Verdicts { selected: 3 },
        Modal::MarkerPrompt {
            at: t(50),
            pick: Some(3),
            text: "x".repeat(300),
        },
        Modal::QuitDialog {
            label: "y".repeat(300),
            default: "call-x".into(),
            phase: QuitPhase::Editing,
        },
        Modal::MarkerList {
            selected: 5,
            editing: None,
            confirm_delete: true,
        },
        Modal::Search {
            pane: 0,
            text: "POST".into(),
        },
    ];
    let mut view = ViewState::new();
    for (w, h) in [
        (1, 1),
        (99, 29),
        (100, 30),
        (133, 41),
        (159, 45),
        (160, 30),
        (250, 80),
    ] {
        for (k, m) in overlays.iter().enumerate() {
            view.modal = m.clone();
            view.zoomed = k % 2 == 1;
            view.tracked_only = k % 3 == 1;
            for (a, now, busy) in [(&app, 60, true), (&empty, 0, false)] {
                let s = text(&screen(w, h, a, &view, now));
                let case = format!("{w}x{h}, {m:?}, zoomed {}:\n{s}", view.zoomed);
                if w < 100 || h < 30 {
                    let want = match w {
                        1 => "t".to_string(),
                        _ => format!("terminal too small: need 100x30, have {w}x{h}"),
                    };
                    assert!(s.contains(&want) && !s.contains("KE-1"), "{case}");
                    continue;
                }
                // The status line and the timeline's axis are never covered.
                let status = if busy {
                    "server-log live"
                } else {
                    "no sources started yet"
                };
                assert!(
                    s.lines().next().is_some_and(|l| l.contains(status)),
                    "{case}"
                );
                assert!(
                    s.lines().last().is_some_and(|l| l.ends_with("now")),
                    "{case}"
                );
                let mut must: Vec<&str> = match m {
                    Modal::None | Modal::Search { .. } => vec!["Q1 ", "markers", "checklist"],
                    Modal::Help => vec![" Keys ", "Show or hide this help", "In prompts"],
                    Modal::Verdicts { .. } => {
                        vec!["Verdicts (runbook", "▶ Q4 insufficient-evidence", "basis:"]
                    }
                    Modal::MarkerPrompt { .. } => vec!["1 audio cut", "4 other", "Enter save"],
                    Modal::QuitDialog { .. } => {
                        vec!["Quit and export", "Bundle label:", "tracked only"]
                    }
                    Modal::MarkerList { .. } if busy => vec!["delete marker #1 'audio cut'?"],
                    Modal::MarkerList { .. } => vec!["no markers yet"],
                };
                if let Modal::Search { .. } = m {
                    must.push("/POST");
                }
                let covered = matches!(m, Modal::Help | Modal::Verdicts { .. });
                if view.zoomed && !covered {
                    // The focused pane fills the main area.
                    must.push("KE-1 OTK upload conflicts");
                    for hidden in ["KE-2 ", "Database", "Checklist"] {
                        assert!(!s.contains(hidden), "{hidden:?} shown in {case}");
                    }
                } else if !covered {
                    must.extend(["KE-1 ", "KE-2 ", "KE-3 ", "KE-4 ", "Database", "Client"]);
                }
                for want in must {
                    assert!(s.contains(want), "missing {want:?} in {case}");
                }
            }
        }
    }
}

#[test]
fn verdict_detail_quotes_the_cited_evidence() {
    use crate::app::event::{ServerBatch, ServerHit};
    use crate::domain::KeSet;
    let mut app = App::new(crate::app::Subject::default(), 2000);
    let mut kes = KeSet::default();
    kes.insert(Ke::Ke1);
    let line = "POST-7 server: POST /_matrix/client/v3/keys/upload SynapseError: 400 - One time key signed_curve25519:AAAAAAAAAFA already exists. Old key: {\"key\":\"a\"}; new key: {'key': 'b'}";
    let mut batch = ServerBatch {
        source: "server-log".into(),
        lines_total: 1,
        bytes_total: 200,
        ..Default::default()
    };
    let text = batch.add_text(line);
    batch.hits.push(ServerHit {
        line_no: 1,
        at: Some(t(1)),
        text,
        kes,
        ke_line_no: [1, 0, 0, 0],
        error: true,
        offending: crate::domain::har::parse_otk_conflict(line).map(std::sync::Arc::new),
        request: Some("POST-7".into()),
    });
    app.update(Event::Server(Box::new(batch)));
    let v = crate::verdicts::decide(&app);
    assert!(
        v.q1.basis.iter().any(|b| b == "server/KE-1.log:1"),
        "{:?}",
        v.q1.basis
    );
    let s = self::text(&region(110, 30, |f, a| {
        verdict_strip::render_detail(f, a, &app, &v, 0)
    }));
    assert!(
        s.contains("server/KE-1.log:1") && s.contains("already exists"),
        "{s}"
    );
}

#[test]
fn frames_of_an_unchanged_app_decide_the_verdicts_once() {
    let mut app = busy_app();
    let view = ViewState::new();
    let km = Keymap::embedded().unwrap();
    let mut term = Terminal::new(TestBackend::new(160, 48)).unwrap();
    let mut cache = VerdictCache::default();
    let mut frame = |app: &App, cache: &mut VerdictCache| {
        term.draw(|f| draw_cached(f, app, cache, &view, &km, t(600)))
            .unwrap();
    };
    // Redraws for keys, scrolling and the frame clock.
    for _ in 0..100 {
        frame(&app, &mut cache);
    }
    assert_eq!(cache.decisions, 1);
    // New evidence: decided again, once, and the strip shows it.
    hit(&mut app, Ke::Ke2, 50, "MissingKey for @bob:hs", true);
    for _ in 0..100 {
        frame(&app, &mut cache);
    }
    assert_eq!(cache.decisions, 2);
    assert_eq!(cache.get(&app), &crate::verdicts::decide(&app));
}

#[test]
fn the_sfu_pane_lists_our_participant_first_with_its_last_state() {
    use crate::app::event::{LkGrant, ServerBatch, SfuSighting};
    use crate::domain::sfu_log::{LkJwtLine, SfuEvent, SfuState};
    let mut app = app();
    let view = ViewState::default();
    // No SFU log: no SFU pane.
    let buf = screen(160, 40, &app, &view, 100);
    assert!(find(&buf, " SFU ").is_none());
    let ev = |s: i64, who: &str, state, reason: Option<&str>| SfuSighting {
        line_no: 1,
        event: SfuEvent {
            at: Some(t(s)),
            identity: Some(who.into()),
            sid: None,
            room: None,
            state,
            reason: reason.map(str::to_string),
        },
        text: String::new(),
    };
    let subject_user = app.subject.user_id.clone().unwrap_or_default();
    let subject_dev = app.subject.device_id.clone().unwrap_or_default();
    let batch = ServerBatch {
        sfu: vec![
            ev(10, "@bob:hs:BOBDEV", SfuState::Active, Some("udp")),
            ev(
                20,
                "HASHEDIDENTITYOFOURDEVICEXXXXXXXXXXXXXXXXXX",
                SfuState::Active,
                None,
            ),
            ev(
                30,
                "HASHEDIDENTITYOFOURDEVICEXXXXXXXXXXXXXXXXXX",
                SfuState::Closing,
                Some("SUBSCRIPTION_ERROR"),
            ),
        ],
        lk_grants: vec![LkGrant {
            line_no: 2,
            line: LkJwtLine {
                matrix_id: Some(subject_user.clone()),
                device_id: Some(subject_dev.clone()),
                lk_id: Some("HASHEDIDENTITYOFOURDEVICEXXXXXXXXXXXXXXXXXX".into()),
                ..Default::default()
            },
        }],
        ..Default::default()
    };
    app.update(Event::Server(Box::new(batch)));
    let buf = screen(160, 40, &app, &view, 100);
    let title = find(&buf, " SFU ").expect("an SFU pane");
    let ours = find(&buf, "▶ closing SUBSCRIPTION_ERROR · ")
        .unwrap_or_else(|| panic!("our row:\n{}", text(&buf)));
    // The Matrix user (its device may be cut in a narrow pane).
    assert!(find(&buf, &format!(" · {subject_user}")).is_some_and(|p| p.1 == ours.1));
    let bob = find(&buf, "@bob:hs/BOBDEV").expect("bob's row");
    assert!(title.1 < ours.1 && ours.1 < bob.1, "{}", text(&buf));
    assert_eq!(
        buf[(ours.0, ours.1)].fg,
        Color::Red,
        "a failure is shown as one"
    );
}
