//! The console's terminal loop: keys through the keymap into the view,
//! capture events into the App, redraws coalesced to at most one per 50 ms,
//! nothing drawn while nothing changes.

use super::{Next, Session};
use crate::app::event::Event;
use crate::app::view::{ViewInput, ViewOutcome, ViewState, input_for_key};
use crate::config::keymap::{Action, Keymap};
use crate::sources::ssh::PassphraseRequest;
use crossterm::event::{
    Event as TermEvent, EventStream, KeyCode, KeyEvent, KeyEventKind, KeyModifiers,
};
use futures::StreamExt;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use zeroize::Zeroizing;

const FRAME: Duration = Duration::from_millis(50);

/// Events taken at once before the next frame is due again: a flood
/// cannot keep the screen from being drawn.
const MAX_EVENTS_PER_FRAME: usize = 1024;

/// Runs the console until the operator quits (or a signal arrives), then
/// writes the bundle. The terminal is restored on every path out, and by
/// ratatui's panic hook on a panic (the journal is on disk regardless).
pub async fn run(mut s: Session, keymap: Keymap) -> anyhow::Result<PathBuf> {
    let mut terminal = ratatui::init();
    keep_screen_on_task_panics();
    let label = run_loop(&mut terminal, &mut s, &keymap).await;
    let label = match label {
        Ok(l) => l,
        Err(e) => {
            ratatui::restore();
            return Err(e);
        }
    };
    let result = s.finish(label).await;
    ratatui::restore();
    result
}

/// A task that panics is caught by its supervisor and shown in the status
/// line; the console goes on. Only a panic of the console's own thread (the
/// one that runs this loop) restores the terminal, through ratatui's hook.
/// Others go to the debug log rather than over the screen.
fn keep_screen_on_task_panics() {
    let console = std::thread::current().id();
    let restore = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().id() == console {
            restore(info);
        } else {
            tracing::error!("a task panicked: {info}");
        }
    }));
}

async fn run_loop(
    terminal: &mut ratatui::DefaultTerminal,
    s: &mut Session,
    keymap: &Keymap,
) -> anyhow::Result<String> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut keys = EventStream::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut view = ViewState::new();
    view.journal = Some(s.journal_dir.display().to_string());
    view.default_label = s.label.clone();
    if let Ok(size) = terminal.size() {
        view.screen = (size.width, size.height);
    }
    let mut dirty = true;
    let mut last_draw = Instant::now() - FRAME;
    // When the oldest key press not yet on screen arrived (for the latency log).
    let mut key_pending: Option<Instant> = None;
    // An SSH key asking for its passphrase, and what has been typed so far.
    let mut asking: Option<(PassphraseRequest, Zeroizing<String>)> = None;
    let mut passphrase = s.passphrase.take();
    // Decided again only when the App has changed, not on every frame.
    let mut verdicts = crate::ui::VerdictCache::default();
    loop {
        if dirty && last_draw.elapsed() >= FRAME {
            let now = s.clock.now();
            let started = Instant::now();
            terminal.draw(|f| {
                crate::ui::draw_cached(f, &s.app, &mut verdicts, &view, keymap, now);
                if let Some((req, typed)) = &asking {
                    draw_passphrase(f, req, typed.chars().count());
                }
            })?;
            tracing::debug!(
                frame_us = started.elapsed().as_micros() as u64,
                "drew a frame"
            );
            if let Some(k) = key_pending.take() {
                tracing::debug!(
                    key_to_frame_us = k.elapsed().as_micros() as u64,
                    "key press on screen"
                );
            }
            last_draw = Instant::now();
            dirty = false;
        }
        let next_draw = last_draw + FRAME;
        tokio::select! {
            _ = term.recv() => return Ok(s.default_label()),
            _ = hup.recv() => return Ok(s.default_label()),
            _ = int.recv() => return Ok(s.default_label()),
            Some(req) = next_request(&mut passphrase), if asking.is_none() => {
                asking = Some((req, Zeroizing::new(String::new())));
                dirty = true;
            }
            next = s.next() => match next {
                Next::Event(ev) => {
                    s.apply(ev);
                    // Take what else is queued before drawing: a flood is
                    // drawn once per frame, not once per batch.
                    for _ in 0..MAX_EVENTS_PER_FRAME {
                        let Ok(ev) = s.events.try_recv() else { break };
                        s.apply(ev);
                    }
                    dirty = true;
                }
                Next::Fatal(reason) => {
                    let at = s.clock.now();
                    s.apply(Event::Note { source: "server-log".into(), text: reason, at });
                    dirty = true;
                }
                Next::Closed => return Ok(s.default_label()),
            },
            _ = tick.tick() => {
                let now = s.clock.now();
                s.apply(Event::Tick { now });
                dirty = true;
            }
            _ = tokio::time::sleep_until(next_draw), if dirty => {}
            key = keys.next() => {
                let Some(Ok(ev)) = key else { return Ok(s.default_label()) };
                let now = s.clock.now();
                if matches!(ev, TermEvent::Key(_)) {
                    key_pending.get_or_insert_with(Instant::now);
                    // A key press is drawn at once, not after the frame budget.
                    last_draw = Instant::now() - FRAME;
                }
                if let (Some((_, typed)), TermEvent::Key(k)) = (asking.as_mut(), &ev) {
                    if k.kind == KeyEventKind::Release {
                        continue;
                    }
                    match passphrase_key(typed, k) {
                        PassphraseKey::Typing => {}
                        PassphraseKey::Quit => return Ok(s.default_label()),
                        PassphraseKey::Done(answer) => {
                            if let Some((req, _)) = asking.take() {
                                let _ = req.reply.send(answer);
                            }
                        }
                    }
                    dirty = true;
                    continue;
                }
                let input = match ev {
                    TermEvent::Key(k) if k.kind != KeyEventKind::Release => input_for_key(&view, keymap, k),
                    TermEvent::Resize(width, height) => Some(ViewInput::Resize { width, height }),
                    _ => None,
                };
                let Some(input) = input else { continue };
                if input == ViewInput::Action(Action::ExportAndQuit) {
                    return Ok(s.default_label());
                }
                for outcome in view.handle(&s.app, input, now) {
                    match outcome {
                        ViewOutcome::Command { cmd, at } => s.apply(Event::Command { cmd, at }),
                        ViewOutcome::Quit { label } => {
                            // Show "exporting…" before the export starts.
                            let now = s.clock.now();
                            terminal.draw(|f| {
                                crate::ui::draw_cached(f, &s.app, &mut verdicts, &view, keymap, now)
                            })?;
                            return Ok(label);
                        }
                        ViewOutcome::Redraw => {}
                    }
                }
                dirty = true;
            }
        }
    }
}

async fn next_request(
    rx: &mut Option<mpsc::Receiver<PassphraseRequest>>,
) -> Option<PassphraseRequest> {
    match rx {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}

enum PassphraseKey {
    Typing,
    /// `Some(passphrase)`, or `None` to skip the key.
    Done(Option<Zeroizing<String>>),
    Quit,
}

/// Keys while the passphrase prompt is open: they never reach the keymap,
/// the view or a log.
fn passphrase_key(typed: &mut Zeroizing<String>, k: &KeyEvent) -> PassphraseKey {
    let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
    match k.code {
        KeyCode::Char('c') if ctrl => PassphraseKey::Quit,
        KeyCode::Char('u') if ctrl => {
            typed.clear();
            PassphraseKey::Typing
        }
        KeyCode::Char(c) if !ctrl => {
            typed.push(c);
            PassphraseKey::Typing
        }
        KeyCode::Backspace => {
            typed.pop();
            PassphraseKey::Typing
        }
        KeyCode::Enter => PassphraseKey::Done(Some(Zeroizing::new(std::mem::take(&mut **typed)))),
        KeyCode::Esc => PassphraseKey::Done(None),
        _ => PassphraseKey::Typing,
    }
}

/// The passphrase prompt over the console: the key's path and one dot per
/// character typed, never the characters.
fn draw_passphrase(f: &mut ratatui::Frame, req: &PassphraseRequest, typed: usize) {
    use ratatui::layout::Rect;
    use ratatui::style::{Modifier, Style};
    use ratatui::text::Line;
    use ratatui::widgets::{Block, Clear, Paragraph};
    let area = f.area();
    let w = area.width.saturating_sub(4).min(80);
    let r = Rect::new(
        area.x + (area.width - w) / 2,
        area.y + area.height / 3,
        w,
        6.min(area.height),
    );
    f.render_widget(Clear, r);
    let again = if req.attempt > 1 {
        " (wrong passphrase, try again)"
    } else {
        ""
    };
    let lines = vec![
        Line::raw(format!("key: {}{again}", req.key_path.display())),
        Line::styled(
            format!("passphrase: {}", "•".repeat(typed)),
            Style::default().add_modifier(Modifier::BOLD),
        ),
        Line::raw("Enter unlock · Esc skip this key · Ctrl-U clear"),
    ];
    let block = Block::bordered().title(" SSH key passphrase ");
    f.render_widget(Paragraph::new(lines).block(block), r);
}
