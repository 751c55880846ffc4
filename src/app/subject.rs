//! Who the capture is about.

use serde::Serialize;

/// Who the capture is about.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Subject {
    pub user_id: Option<String>,
    pub device_id: Option<String>,
    pub participants: Vec<String>,
}

impl Subject {
    /// Strings whose presence marks a line as about the tracked people.
    pub fn needles(&self) -> Vec<String> {
        let mut v: Vec<String> = self.user_id.iter().cloned().collect();
        v.extend(self.device_id.iter().cloned());
        for p in &self.participants {
            // `@user:hs/DEVICE` names a device too.
            match p.split_once('/') {
                Some((u, d)) => {
                    v.push(u.to_string());
                    v.push(d.to_string());
                }
                None => v.push(p.clone()),
            }
        }
        v.retain(|s| !s.is_empty());
        v
    }
}
