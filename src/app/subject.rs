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
    /// The strings whose presence marks a line as about the tracked people:
    /// the user, the device, and each participant (`@user:hs/DEVICE`
    /// names a user and a device).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        let own = self.user_id.iter().chain(self.device_id.iter());
        own.map(String::as_str)
            .chain(self.participants.iter().flat_map(|p| p.split('/')))
            .filter(|n| !n.is_empty())
    }

    /// Whether `text` names any of [`Subject::names`].
    pub fn tracks(&self, text: &str) -> bool {
        self.names().any(|n| text.contains(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_participant_names_its_user_and_device() {
        let s = Subject {
            user_id: Some("@a:hs".into()),
            device_id: Some(String::new()),
            participants: vec!["@b:hs/BDEV".into(), "@c:hs".into(), "/".into()],
        };
        assert_eq!(
            s.names().collect::<Vec<_>>(),
            ["@a:hs", "@b:hs", "BDEV", "@c:hs"]
        );
        assert!(s.tracks("to BDEV from x") && s.tracks("@c:hs joined"));
        assert!(!s.tracks("@d:hs/DDEV"));
        assert_eq!(Subject::default().names().next(), None);
    }
}
