//! The capture task: owns the journal. It turns source [`Input`]s into App
//! [`Event`]s (ingesting, matching, redacting and journaling on the way),
//! carries out the App's journal effects, and exports the bundle. Heavy work
//! runs in `block_in_place`, so the UI task never waits on disk or parsing.
//!
//! It never waits on the loop while the loop might wait on it: events it
//! made wait in a queue of its own while it goes on taking the App's
//! effects, and it reads no more inputs while that queue is long.

use crate::app::event::Event;
use crate::app::{App, Effect};
use crate::bundle::export::{self, Exported, SourceDescriptions};
use crate::capture::Capture;
use crate::sources::Input;
use chrono::Utc;
use std::collections::VecDeque;
use std::path::PathBuf;
use tokio::sync::{mpsc, oneshot};

/// Messages from the UI loop.
pub enum Control {
    Effect(Effect),
    /// Drain what the sources already sent, then write the bundle.
    Export {
        app: Box<App>,
        label: String,
        reply: oneshot::Sender<Result<Exported, String>>,
    },
}

/// Events waiting for the loop before no more inputs are read.
const QUEUE_MAX: usize = 256;

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
        mut control: mpsc::UnboundedReceiver<Control>,
        events: mpsc::Sender<Event>,
    ) {
        let mut inputs_open = true;
        // Made, not yet taken by the loop: sent as room appears.
        let mut queue: VecDeque<Event> = VecDeque::new();
        let mut events_open = true;
        loop {
            tokio::select! {
                biased;
                c = control.recv() => match c {
                    Some(Control::Effect(e)) => self.effect(e, &mut queue),
                    Some(Control::Export { app, label, reply }) => {
                        let r = self.export(*app, &label, queue, &mut inputs);
                        let _ = reply.send(r);
                        return;
                    }
                    None => return,
                },
                permit = events.reserve(), if events_open && !queue.is_empty() => match permit {
                    Ok(permit) => {
                        if let Some(ev) = queue.pop_front() {
                            permit.send(ev);
                        }
                        // As many more as there is room for, without waiting.
                        while !queue.is_empty() {
                            let Ok(permit) = events.try_reserve() else { break };
                            if let Some(ev) = queue.pop_front() {
                                permit.send(ev);
                            }
                        }
                    }
                    // The loop takes no more events: they go in at the export.
                    Err(_) => events_open = false,
                },
                i = inputs.recv(), if inputs_open && queue.len() < QUEUE_MAX => match i {
                    Some(first) => {
                        let batch = self.drain(first, &mut inputs);
                        let evs = tokio::task::block_in_place(|| self.ingest(batch));
                        queue.extend(evs);
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
        while bytes < COALESCE_BYTES && v.len() < QUEUE_MAX {
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

    fn server(&mut self, source: &str, bytes: &[u8]) -> Vec<Event> {
        let mut evs = vec![match self.capture.server_chunk(source, bytes) {
            Ok(batch) => Event::Server(Box::new(batch)),
            Err(e) => self.journal_problem(format!(
                "{}: cannot write the server log: {e}",
                crate::bundle::journal::SERVER_LOG
            )),
        }];
        // A line cut at the cap says so.
        evs.extend(
            self.capture
                .take_notes()
                .into_iter()
                .map(|text| Event::Note {
                    source: source.to_string(),
                    text,
                    at: Utc::now(),
                }),
        );
        evs
    }

    /// Something could not be written: the status line says so now, the
    /// bundle later.
    fn journal_problem(&mut self, text: String) -> Event {
        self.capture.journal.problem(&text);
        Event::Note {
            source: "journal".into(),
            text,
            at: Utc::now(),
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
                    evs.push(
                        self.journal_problem(format!("db/: cannot write database results: {e}")),
                    );
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
            Input::Metrics { at, report, raw } => self.metrics(at, report, raw),
            Input::Recorded(entry) => super::replay::command(*entry)
                .map(|(cmd, at)| Event::Command { cmd, at })
                .into_iter()
                .collect(),
        }
    }

    /// A metrics reading: its raw text is appended to its file before the
    /// App sees it (which journals the reading, naming where the text is).
    fn metrics(
        &mut self,
        at: chrono::DateTime<Utc>,
        report: Option<Box<crate::model::metrics::MetricsReport>>,
        raw: Option<(String, Vec<u8>)>,
    ) -> Vec<Event> {
        let mut evs = Vec::new();
        let mut kept = None;
        if let Some((file, bytes)) = raw {
            match self.capture.journal.append(&file, &bytes) {
                Ok(offset) => {
                    kept = Some(crate::model::metrics::RawRef {
                        file,
                        offset,
                        bytes: bytes.len() as u64,
                    })
                }
                Err(e) => evs.push(Event::Note {
                    source: "journal".into(),
                    text: format!("cannot write {file}: {e}"),
                    at,
                }),
            }
        }
        if let Some(mut report) = report {
            report.raw = kept;
            evs.push(Event::Metrics { at, report });
        }
        evs
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

    fn effect(&mut self, e: Effect, queue: &mut VecDeque<Event>) {
        let problem = match e {
            Effect::Journal(entry) => tokio::task::block_in_place(|| {
                self.capture
                    .journal
                    .record(&entry)
                    .err()
                    .map(|e| format!("cannot write the journal: {e}"))
            }),
            Effect::Ke3Ids(ids) => {
                match tokio::task::block_in_place(|| self.capture.add_ke3_ids(&ids)) {
                    Ok(Some(batch)) => {
                        queue.push_back(Event::Server(Box::new(batch)));
                        None
                    }
                    Ok(None) => None,
                    Err(e) => Some(e),
                }
            }
            Effect::Export { .. } => None,
        };
        if let Some(p) = problem {
            queue.push_back(self.journal_problem(p));
        }
    }

    /// Applies an event to the App and carries out its effects here; what
    /// cannot be written is remembered for the bundle.
    pub fn absorb(&mut self, app: &mut App, ev: Event) {
        for fx in app.update(ev) {
            match fx {
                Effect::Journal(entry) => {
                    if let Err(e) = self.capture.journal.record(&entry) {
                        let p = format!("cannot write the journal: {e}");
                        self.capture.journal.problem(&p);
                    }
                }
                Effect::Ke3Ids(ids) => match self.capture.add_ke3_ids(&ids) {
                    Ok(Some(batch)) => self.absorb(app, Event::Server(Box::new(batch))),
                    Ok(None) => {}
                    Err(e) => self.capture.journal.problem(&e),
                },
                Effect::Export { .. } => {}
            }
        }
    }

    /// Writes the bundle from `app`, after the events the loop has not
    /// taken (`queue`) and what the sources sent before they stopped.
    fn export(
        &mut self,
        mut app: App,
        label: &str,
        queue: VecDeque<Event>,
        inputs: &mut mpsc::Receiver<Input>,
    ) -> Result<Exported, String> {
        tokio::task::block_in_place(|| {
            for ev in queue {
                self.absorb(&mut app, ev);
            }
            // Everything the sources sent before the stop goes in.
            let mut rest = Vec::new();
            while let Ok(i) = inputs.try_recv() {
                rest.push(i);
            }
            for ev in self.ingest(rest) {
                self.absorb(&mut app, ev);
            }
            match self.capture.finish() {
                Ok(batches) => {
                    for batch in batches {
                        self.absorb(&mut app, Event::Server(Box::new(batch)));
                    }
                }
                Err(e) => self.capture.journal.problem(&format!(
                    "the server logs: cannot write their last lines: {e}"
                )),
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
            let copies = self.capture.copy_reader();
            export::export(
                &app,
                &mut self.capture.journal,
                &self.out_dir,
                &label,
                &self.sources,
                &|d, a| copies.entries(d, a),
                now,
            )
            .map_err(|e| e.to_string())
        })
    }
}
