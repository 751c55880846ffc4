//! The capture task: owns the journal. It turns source [`Input`]s into App
//! [`Event`]s (ingesting, matching, redacting and journaling on the way),
//! carries out the App's journal effects, and exports the bundle. Heavy work
//! runs in `block_in_place`, so the UI task never waits on disk or parsing.

use crate::app::event::Event;
use crate::app::{App, Effect};
use crate::bundle::export::{self, SourceDescriptions};
use crate::capture::Capture;
use crate::sources::Input;
use chrono::Utc;
use std::path::PathBuf;
use tokio::sync::{mpsc, oneshot};

/// Messages from the UI loop.
pub enum Control {
    Effect(Effect),
    /// Drain what the sources already sent, then write the bundle.
    Export {
        app: Box<App>,
        label: String,
        reply: oneshot::Sender<Result<PathBuf, String>>,
    },
}

pub struct CaptureTask {
    pub capture: Capture,
    pub out_dir: PathBuf,
    pub sources: SourceDescriptions,
}

/// Coalesce up to this many bytes of server chunks into one ingest.
const COALESCE_BYTES: usize = 4 * 1024 * 1024;

impl CaptureTask {
    pub async fn run(
        mut self,
        mut inputs: mpsc::Receiver<Input>,
        mut control: mpsc::Receiver<Control>,
        events: mpsc::Sender<Event>,
    ) {
        let mut inputs_open = true;
        loop {
            tokio::select! {
                biased;
                c = control.recv() => match c {
                    Some(Control::Effect(e)) => self.effect(e, &events).await,
                    Some(Control::Export { app, label, reply }) => {
                        let r = self.export(*app, &label, &mut inputs);
                        let _ = reply.send(r);
                        return;
                    }
                    None => return,
                },
                i = inputs.recv(), if inputs_open => match i {
                    Some(first) => {
                        let batch = self.drain(first, &mut inputs);
                        let evs = tokio::task::block_in_place(|| self.ingest(batch));
                        for ev in evs {
                            if events.send(ev).await.is_err() {
                                return;
                            }
                        }
                    }
                    None => inputs_open = false,
                },
            }
        }
    }

    /// Takes what is already queued (bounded), so a flood is ingested in
    /// large chunks rather than line by line.
    fn drain(&self, first: Input, inputs: &mut mpsc::Receiver<Input>) -> Vec<Input> {
        let mut v = vec![first];
        let mut bytes = 0usize;
        while bytes < COALESCE_BYTES {
            match inputs.try_recv() {
                Ok(i) => {
                    if let Input::ServerChunk { bytes: b, .. } = &i {
                        bytes += b.len();
                    }
                    v.push(i);
                }
                Err(_) => break,
            }
        }
        v
    }

    /// Ingests inputs, merging consecutive server chunks of one source.
    pub fn ingest(&mut self, inputs: Vec<Input>) -> Vec<Event> {
        let mut out = Vec::new();
        let mut pending: Option<(String, Vec<u8>)> = None;
        for i in inputs {
            match i {
                Input::ServerChunk { source, bytes, .. } => match &mut pending {
                    Some((s, buf)) if *s == source => buf.extend_from_slice(&bytes),
                    _ => {
                        if let Some((s, buf)) = pending.take() {
                            out.extend(self.server(&s, &buf));
                        }
                        pending = Some((source, bytes));
                    }
                },
                other => {
                    if let Some((s, buf)) = pending.take() {
                        out.extend(self.server(&s, &buf));
                    }
                    out.extend(self.other(other));
                }
            }
        }
        if let Some((s, buf)) = pending.take() {
            out.extend(self.server(&s, &buf));
        }
        out
    }

    fn server(&mut self, source: &str, bytes: &[u8]) -> Option<Event> {
        match self.capture.server_chunk(source, bytes) {
            Ok(batch) => Some(Event::Server(Box::new(batch))),
            Err(e) => Some(Event::Note {
                source: "journal".into(),
                text: format!("cannot write the journal: {e}"),
                at: Utc::now(),
            }),
        }
    }

    fn other(&mut self, input: Input) -> Vec<Event> {
        match input {
            Input::ServerChunk { .. } => Vec::new(),
            Input::Status { source, status, at } => vec![Event::Status { source, status, at }],
            Input::Gap {
                source,
                down_ms,
                caught_up_bytes,
                at,
            } => vec![Event::Gap {
                source,
                down_ms,
                caught_up_bytes,
                at,
            }],
            Input::ClockOffset {
                source,
                offset_ms,
                bound_ms,
                at,
            } => {
                // The host's offset moves the times of the logs read there.
                self.capture.set_clock_offset_ms(&source, offset_ms);
                vec![Event::ClockOffset {
                    source,
                    offset_ms,
                    bound_ms,
                    at,
                }]
            }
            Input::ClientFile { path, at } => match self.capture.client_file(&path, at) {
                Ok(a) => vec![Event::Client(Box::new(a))],
                Err(e) => vec![Event::Note {
                    source: "client".into(),
                    text: format!("cannot read '{}': {e}", path.display()),
                    at,
                }],
            },
            Input::DbPoll(poll) => {
                let mut evs = Vec::new();
                if let Err(e) = self.journal_db(&poll) {
                    evs.push(Event::Note {
                        source: "journal".into(),
                        text: format!("cannot write database changes: {e}"),
                        at: poll.at,
                    });
                }
                evs.push(Event::Db(poll));
                evs
            }
            Input::Position {
                source, position, ..
            } => {
                export::set_position(&mut self.sources, &source, position);
                Vec::new()
            }
            Input::Note { source, text, at } => vec![Event::Note { source, text, at }],
        }
    }

    fn journal_db(&mut self, poll: &crate::sources::DbPoll) -> std::io::Result<()> {
        // Full results of the first and latest successful poll are kept on
        // disk as they arrive, so a crash loses no database state.
        if !poll.results.is_empty() {
            let body = serde_json::to_vec_pretty(&poll.results).map_err(std::io::Error::other)?;
            if !self.capture.journal.written.contains_key("db/first.json") {
                self.capture
                    .journal
                    .write_whole("db/first.json", &body, 0)?;
            }
            self.capture.journal.write_whole("db/last.json", &body, 0)?;
        }
        for c in &poll.changes {
            let line = serde_json::json!({
                "at": crate::bundle::manifest::rfc3339(poll.at),
                "query": c.query,
                "added": c.added,
                "removed": c.removed,
                "changed": c.changed,
            });
            self.capture.journal.db_change(&line)?;
        }
        Ok(())
    }

    async fn effect(&mut self, e: Effect, events: &mpsc::Sender<Event>) {
        let problem = match e {
            Effect::Journal(entry) => self
                .capture
                .journal
                .record(&entry)
                .err()
                .map(|e| e.to_string()),
            Effect::Ke3Ids(ids) => {
                match tokio::task::block_in_place(|| self.capture.add_ke3_ids(&ids)) {
                    Ok(Some(batch)) => {
                        let _ = events.send(Event::Server(Box::new(batch))).await;
                        None
                    }
                    Ok(None) => None,
                    Err(e) => Some(e),
                }
            }
            Effect::Export { .. } => None,
        };
        if let Some(p) = problem {
            let _ = events
                .send(Event::Note {
                    source: "journal".into(),
                    text: p,
                    at: Utc::now(),
                })
                .await;
        }
    }

    /// Applies an event to the App and carries out its effects here.
    pub fn absorb(&mut self, app: &mut App, ev: Event) {
        for fx in app.update(ev) {
            match fx {
                Effect::Journal(entry) => {
                    let _ = self.capture.journal.record(&entry);
                }
                Effect::Ke3Ids(ids) => {
                    if let Ok(Some(batch)) = self.capture.add_ke3_ids(&ids) {
                        self.absorb(app, Event::Server(Box::new(batch)));
                    }
                }
                Effect::Export { .. } => {}
            }
        }
    }

    fn export(
        &mut self,
        mut app: App,
        label: &str,
        inputs: &mut mpsc::Receiver<Input>,
    ) -> Result<PathBuf, String> {
        tokio::task::block_in_place(|| {
            // Everything the sources sent before the stop goes in.
            let mut rest = Vec::new();
            while let Ok(i) = inputs.try_recv() {
                rest.push(i);
            }
            for ev in self.ingest(rest) {
                self.absorb(&mut app, ev);
            }
            for batch in self.capture.finish().map_err(|e| e.to_string())? {
                self.absorb(&mut app, Event::Server(Box::new(batch)));
            }
            let now = Utc::now();
            let label = export::sanitize_label(label);
            // The bundle's own checklist shows step 10 done, with its path.
            let target = export::free_name(&self.out_dir, &label);
            let at = app.now.unwrap_or(now);
            self.absorb(
                &mut app,
                Event::Exported {
                    path: target.display().to_string(),
                    at,
                },
            );
            let path = export::export(
                &app,
                &mut self.capture.journal,
                &self.out_dir,
                &label,
                &self.sources,
                now,
            )
            .map_err(|e| e.to_string())?;
            Ok(path)
        })
    }
}
