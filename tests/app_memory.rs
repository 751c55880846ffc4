//! Memory that stays flat over a long call, without timing: the pure App is
//! fed a storm (KE-1 conflicts and errors of several devices, to-device
//! traffic and Synapse's to-device tracing, slow delayed-event restarts,
//! access lines, a stall every ten minutes) spanning hours of log time,
//! and the heap it holds, counted by the allocator, must not grow between
//! the end of the first hour and the end of the last by more than its
//! per-minute summaries (latency and counts per minute) take.
//!
//! Only one test in this file: the allocator's count is the process's.
#![allow(clippy::unwrap_used)]

use callcap::app::event::{AccessSample, Event, OtkUpload, ServerBatch, ServerHit, ToDeviceTrace};
use callcap::app::{App, PANE_CAPACITY, Subject};
use callcap::domain::har::parse_otk_conflict;
use callcap::domain::{Ke, KeSet};
use chrono::{DateTime, Duration, Utc};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use std::alloc::System;
use std::sync::Arc;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const HOURS: i64 = 4;
/// What the App may add per minute of log time: a latency minute and a
/// count per KE and minute (measured: about 0.3 KiB).
const PER_MINUTE_BUDGET: i64 = 1024;

const ME: &str = "@alice:lotus.example";
const DEV: &str = "RWDSUMBAID";

fn at(s: i64, ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_782_842_400 + s, 0).unwrap() + Duration::milliseconds(ms)
}

/// Bytes the process holds on the heap, as the allocator counts them (a
/// reallocation counts in both, by how much it grew or shrank).
fn held(region: &Region<System>) -> i64 {
    let s = region.change();
    s.bytes_allocated as i64 - s.bytes_deallocated as i64
}

/// The storm's lines of second `s`, as the capture hands them to the App.
struct Storm {
    line: u64,
    ke_lines: [u64; 4],
}

impl Storm {
    fn next_line(&mut self) -> u64 {
        self.line += 1;
        self.line
    }

    fn hit(
        &mut self,
        b: &mut ServerBatch,
        ke: Ke,
        t: DateTime<Utc>,
        text: &str,
        error: bool,
    ) -> u64 {
        let mut kes = KeSet::default();
        kes.insert(ke);
        let line_no = self.next_line();
        self.ke_lines[ke.index()] += 1;
        let mut ke_line_no = [0; 4];
        ke_line_no[ke.index()] = self.ke_lines[ke.index()];
        let text = b.add_text(text);
        let offending = (ke == Ke::Ke1)
            .then(|| parse_otk_conflict(b.texts.get(text.clone()).unwrap()))
            .flatten()
            .map(Arc::new);
        b.hits.push(ServerHit {
            line_no,
            at: Some(t),
            text,
            kes,
            ke_line_no,
            error,
            offending,
            request: None,
        });
        line_no
    }

    fn access(
        &mut self,
        b: &mut ServerBatch,
        t: DateTime<Utc>,
        ms: u32,
        restart: bool,
        to_device: bool,
    ) {
        let line_no = self.next_line();
        b.access.push(AccessSample {
            line_no,
            at: t,
            processing_ms: ms,
            status: 200,
            long_poll: false,
            delayed_restart: restart,
            delayed_event: restart,
            send_to_device: to_device,
            requester: to_device.then(|| ME.to_string()),
        });
    }

    fn second(&mut self, s: i64) -> ServerBatch {
        let mut b = ServerBatch {
            source: "server-log".into(),
            first_at: Some(at(s, 0)),
            last_at: Some(at(s, 999)),
            ..Default::default()
        };
        // KE-1: conflicts of three devices (ours, another user's, one whose
        // owner line was not seen), each request with a new id.
        for (k, owner) in [(ME, DEV), ("@carol:lotus.example", "OTHERDEV"), ("", "")]
            .into_iter()
            .enumerate()
        {
            let t = at(s, 100 * k as i64);
            let request = format!("POST-{}", self.line + 1);
            if !owner.0.is_empty() {
                b.otk_uploads.push(OtkUpload {
                    request: request.as_str().into(),
                    user: owner.0.into(),
                    device: owner.1.into(),
                });
            }
            let text = format!(
                "{} - synapse.http.server - 131 - INFO - {request} - <XForwardedForRequest at 0x7f3a2c1d0e50 method='POST' uri='/_matrix/client/v3/keys/upload' clientproto='HTTP/1.1' site='8008'> SynapseError: 400 - One time key signed_curve25519:AAAAAAAAA{k} already exists. Old key: {{\"key\":\"stored{s}\",\"signatures\":{{}}}}; new key: {{'key': 'uploaded{s}', 'signatures': {{}}}}",
                t.format("%Y-%m-%d %H:%M:%S,%3f")
            );
            self.hit(&mut b, Ke::Ke1, t, &text, true);
            b.hits.last_mut().unwrap().request = Some(request.as_str().into());
        }
        // Key uploads that succeeded: their owner lines.
        for k in 0..4 {
            let line_no = self.next_line();
            b.otk_uploads.push(OtkUpload {
                request: format!("POST-{line_no}").as_str().into(),
                user: if k % 2 == 0 { ME } else { "@bob:lotus.example" }.into(),
                device: if k % 2 == 0 { DEV } else { "FRIENDDEV1" }.into(),
            });
        }
        // KE-2: to-device traffic, sendToDevice requests and the tracing
        // that names their recipients.
        for k in 0..2 {
            let t = at(s, 400 + k);
            self.hit(
                &mut b,
                Ke::Ke2,
                t,
                &format!("PUT /_matrix/client/v3/sendToDevice/m.room.encrypted/m{s}.{k}"),
                false,
            );
            self.access(&mut b, t, 20, false, true);
            let line_no = self.next_line();
            b.to_device.push(ToDeviceTrace {
                line_no,
                at: Some(t),
                text: format!(
                    "Storing to-device messages with stream_id {line_no}: ['{ME}/{DEV} (msgid m{s}.{k})', '@bob:lotus.example/FRIENDDEV1 (msgid m{s}.{k})']"
                ),
            });
        }
        // KE-4: delayed-event restarts, four of them slow.
        for k in 0..6 {
            let t = at(s, 500 + 50 * k);
            self.hit(&mut b, Ke::Ke4, t, &format!("POST /_matrix/client/unstable/org.matrix.msc4140/delayed_events/syd_{s}_{k}/restart"), false);
            self.access(&mut b, t, if k < 4 { 2500 } else { 40 }, true, false);
        }
        for k in 0..20 {
            self.access(
                &mut b,
                at(s, 800 + k),
                1 + (k as u32 * 7) % 200,
                false,
                false,
            );
        }
        if s % 600 == 599 {
            b.stalls.push(callcap::app::event::ServerStall {
                from: at(s - 8, 0),
                to: at(s, 0),
                line_no: self.line,
                burst: 5,
                delayed_restart: true,
            });
        }
        b.lines_total = self.line;
        b.bytes_total = self.line * 300;
        b
    }
}

#[test]
fn a_storm_of_hours_leaves_the_apps_memory_flat_after_the_first_hour() {
    let region = Region::new(GLOBAL);
    // No device named: the App keeps the server's KE-1 and to-device
    // evidence to judge once a client file names it (the soak's case).
    let mut app = App::new(
        Subject {
            user_id: Some(ME.into()),
            device_id: None,
            participants: vec![],
        },
        2000,
    );
    let mut storm = Storm {
        line: 0,
        ke_lines: [0; 4],
    };
    let mut after_first_hour = 0;
    for s in 0..HOURS * 3600 {
        app.update(Event::Tick { now: at(s, 0) });
        let batch = storm.second(s);
        drop(app.update(Event::Server(Box::new(batch))));
        if s == 3599 {
            after_first_hour = held(&region);
        }
    }
    let at_the_end = held(&region);
    let minutes = (HOURS - 1) * 60;
    let grew = at_the_end - after_first_hour;
    assert!(
        grew <= PER_MINUTE_BUDGET * minutes,
        "the App held {after_first_hour} bytes after the first hour and {at_the_end} after {HOURS} hours ({} lines): it grew by {grew} bytes in {minutes} minutes, more than {PER_MINUTE_BUDGET} bytes a minute",
        storm.line
    );
    assert!(app.panes.iter().all(|p| p.len() <= PANE_CAPACITY));
    assert_eq!(
        app.timeouts.len(),
        10_000,
        "slow restarts are kept up to their cap"
    );
    // And the kept evidence still judges: a client file names our device.
    assert!(app.to_device_for_us.is_empty());
    eprintln!(
        "held after the first hour {after_first_hour} bytes, after {HOURS} hours {at_the_end} ({grew:+}, {} lines)",
        storm.line
    );
}
