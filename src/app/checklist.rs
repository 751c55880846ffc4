//! The capture checklist (runbook §4): ten steps, each tick and untick
//! stamped in UTC, some ticked by callcap itself with their evidence.

use crate::model::checklist::Stamp;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub const EMBEDDED: &str = include_str!("../../assets/checklist.toml");

/// What callcap can observe by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AutoCheck {
    ServerLive,
    StartNoted,
    Marker,
    ClientArtifact,
    Ke3Ids,
    Database,
    BundleWritten,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct StepDef {
    title: String,
    detail: String,
    auto: Option<AutoCheck>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChecklistFile {
    step: Vec<StepDef>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// 1-based, as in the runbook.
    pub number: u8,
    pub title: String,
    pub detail: String,
    pub auto: Option<AutoCheck>,
    pub done: bool,
    pub stamps: Vec<Stamp>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Checklist {
    pub steps: Vec<Step>,
}

impl Checklist {
    pub fn embedded() -> Checklist {
        // The embedded file is tested below; an error here is a build defect.
        Checklist::parse(EMBEDDED).unwrap_or(Checklist { steps: Vec::new() })
    }

    pub fn parse(text: &str) -> Result<Checklist, String> {
        let file: ChecklistFile = toml::from_str(text).map_err(|e| e.to_string())?;
        Ok(Checklist {
            steps: file
                .step
                .into_iter()
                .enumerate()
                .map(|(i, s)| Step {
                    number: (i + 1) as u8,
                    title: s.title,
                    detail: s.detail,
                    auto: s.auto,
                    done: false,
                    stamps: Vec::new(),
                })
                .collect(),
        })
    }

    /// Sets a step by the operator. Returns the stamp if anything changed.
    pub fn set(&mut self, number: u8, done: bool, at: DateTime<Utc>) -> Option<Stamp> {
        let step = self.steps.iter_mut().find(|s| s.number == number)?;
        if step.done == done {
            return None;
        }
        let stamp = Stamp {
            at,
            done,
            by: "operator".into(),
            evidence: None,
        };
        step.done = done;
        step.stamps.push(stamp.clone());
        Some(stamp)
    }

    /// Ticks the steps observing `what`, once. Returns (step, stamp) pairs.
    pub fn observe(
        &mut self,
        what: AutoCheck,
        evidence: &str,
        at: DateTime<Utc>,
    ) -> Vec<(u8, Stamp)> {
        let mut out = Vec::new();
        for step in self.steps.iter_mut().filter(|s| s.auto == Some(what)) {
            if step.done || step.stamps.iter().any(|s| s.by == "callcap") {
                continue;
            }
            let stamp = Stamp::observed(at, evidence);
            step.done = true;
            step.stamps.push(stamp.clone());
            out.push((step.number, stamp));
        }
        out
    }

    /// Adds evidence to an observed step that callcap already ticked (the
    /// remote clock offset arrives after the start time was noted).
    pub fn annotate(
        &mut self,
        what: AutoCheck,
        evidence: &str,
        at: DateTime<Utc>,
    ) -> Vec<(u8, Stamp)> {
        let mut out = Vec::new();
        for step in self
            .steps
            .iter_mut()
            .filter(|s| s.auto == Some(what) && s.done)
        {
            if step
                .stamps
                .iter()
                .any(|s| s.evidence.as_deref() == Some(evidence))
            {
                continue;
            }
            let stamp = Stamp::observed(at, evidence);
            step.stamps.push(stamp.clone());
            out.push((step.number, stamp));
        }
        out
    }

    /// Restores a stamp read back from a journal.
    pub fn restore(&mut self, number: u8, stamp: Stamp) {
        if let Some(step) = self.steps.iter_mut().find(|s| s.number == number) {
            step.done = stamp.done;
            step.stamps.push(stamp);
        }
    }

    /// The first step not done yet (the operator's current step).
    pub fn current(&self) -> Option<u8> {
        self.steps.iter().find(|s| !s.done).map(|s| s.number)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_780_000_000 + s, 0).unwrap()
    }

    #[test]
    fn embedded_checklist_has_the_runbooks_ten_steps() {
        let c = Checklist::parse(EMBEDDED).unwrap();
        assert_eq!(c.steps.len(), 10);
        assert_eq!(c.steps[0].auto, Some(AutoCheck::ServerLive));
        assert!(c.steps[9].detail.contains("Bundle"));
    }

    #[test]
    fn ticks_and_unticks_are_stamped() {
        let mut c = Checklist::embedded();
        assert!(c.set(2, true, t(1)).is_some());
        assert!(c.set(2, true, t(2)).is_none(), "no change, no stamp");
        assert!(c.set(2, false, t(3)).is_some());
        let s = &c.steps[1];
        assert!(!s.done);
        assert_eq!(s.stamps.len(), 2);
        assert_eq!(s.stamps[1].at, t(3));
    }

    #[test]
    fn the_remote_clock_offset_is_added_to_the_noted_start() {
        let mut c = Checklist::embedded();
        assert_eq!(
            c.observe(AutoCheck::StartNoted, "capture started", t(0))
                .len(),
            1
        );
        let added = c.annotate(
            AutoCheck::StartNoted,
            "remote clock offset +12 ms (±1 ms)",
            t(3),
        );
        assert_eq!(added.len(), 1);
        assert_eq!(added[0].0, 4);
        assert_eq!(c.steps[3].stamps.len(), 2);
        assert!(
            c.annotate(
                AutoCheck::StartNoted,
                "remote clock offset +12 ms (±1 ms)",
                t(4)
            )
            .is_empty()
        );
    }

    #[test]
    fn observed_steps_tick_once_with_evidence() {
        let mut c = Checklist::embedded();
        let got = c.observe(AutoCheck::ServerLive, "server-log live", t(5));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, 1);
        assert!(c.observe(AutoCheck::ServerLive, "again", t(6)).is_empty());
        assert_eq!(c.current(), Some(2));
    }
}
