//! The console's terminal loop: keys through the keymap into the view,
//! capture events into the App, redraws coalesced to at most one per 50 ms,
//! nothing drawn while nothing changes.

use super::Session;
use crate::app::event::Event;
use crate::app::view::{ViewInput, ViewOutcome, ViewState, input_for_key};
use crate::config::keymap::{Action, Keymap};
use crossterm::event::{Event as TermEvent, EventStream, KeyEventKind};
use futures::StreamExt;
use std::path::PathBuf;
use std::time::Duration;
use tokio::time::Instant;

const FRAME: Duration = Duration::from_millis(50);

/// Runs the console until the operator quits (or a signal arrives), then
/// writes the bundle. The terminal is restored on every path out, and by
/// ratatui's panic hook on a panic (the journal is on disk regardless).
pub async fn run(mut s: Session, keymap: Keymap) -> anyhow::Result<PathBuf> {
    let mut terminal = ratatui::init();
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
    if let Ok(size) = terminal.size() {
        view.screen = (size.width, size.height);
    }
    let mut dirty = true;
    let mut last_draw = Instant::now() - FRAME;
    // When the oldest key press not yet on screen arrived (for the latency log).
    let mut key_pending: Option<Instant> = None;
    loop {
        if dirty && last_draw.elapsed() >= FRAME {
            let now = s.clock.now();
            let started = Instant::now();
            terminal.draw(|f| crate::ui::draw(f, &s.app, &view, keymap, now))?;
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
            Some(reason) = s.fatal.recv() => {
                s.app.update(Event::Note { source: "server-log".into(), text: reason, at: s.clock.now() });
                dirty = true;
            }
            ev = s.events.recv() => match ev {
                Some(ev) => {
                    s.apply(ev).await;
                    // Take what else is queued before drawing: a flood is
                    // drawn once per frame, not once per batch.
                    while let Ok(ev) = s.events.try_recv() {
                        s.apply(ev).await;
                    }
                    dirty = true;
                }
                None => return Ok(s.default_label()),
            },
            _ = tick.tick() => {
                let now = s.clock.now();
                s.apply(Event::Tick { now }).await;
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
                        ViewOutcome::Command { cmd, at } => s.apply(Event::Command { cmd, at }).await,
                        ViewOutcome::Quit { label } => {
                            // Show "exporting…" before the export starts.
                            let now = s.clock.now();
                            terminal.draw(|f| crate::ui::draw(f, &s.app, &view, keymap, now))?;
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
