//! The russh client handler, which checks the server's host key: what the
//! connection (`session.rs`) runs with and authentication (`auth.rs`)
//! holds a handle of.

use super::SshError;
use super::known_hosts::{self, KnownHostsFiles, Verdict};
use crate::config::HostKeyCheck;
use russh::client;
use russh::keys::PublicKeyOrCertificate;
use std::sync::{Arc, Mutex};

/// russh handler: verifies the server's host key against known_hosts.
pub(crate) struct Client {
    pub(super) host: String,
    pub(super) port: u16,
    pub(super) check: HostKeyCheck,
    pub(super) files: KnownHostsFiles,
    pub(super) notes: Arc<Mutex<Vec<String>>>,
}

impl client::Handler for Client {
    type Error = SshError;

    async fn check_server_key(
        &mut self,
        offered: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let key = offered.public_key();
        let name = known_hosts::host_port_name(&self.host, self.port);
        let fp = known_hosts::fingerprint(&key);
        let alg = key.algorithm().as_str().to_string();
        let file = self.files.user.display().to_string();
        match known_hosts::check(&self.files, &self.host, self.port, &key) {
            Verdict::Known => Ok(true),
            Verdict::Revoked { path, line } => Err(SshError::HostKey(format!(
                "host key of {name} ({alg} {fp}) is marked @revoked in '{}' line {line}: refusing to connect",
                path.display()
            ))),
            Verdict::Changed { path, line } => Err(SshError::HostKey(format!(
                "HOST KEY CHANGED for {name}: the server offers {alg} {fp} but '{}' line {line} records another key (possible man-in-the-middle); if the change is expected, remove the old entry with: ssh-keygen -R '{name}' -f '{}'",
                path.display(),
                path.display()
            ))),
            Verdict::Unknown { other_types } => match self.check {
                HostKeyCheck::AcceptNew => {
                    known_hosts::append(&self.files, &self.host, self.port, &key).map_err(|e| {
                        SshError::HostKey(format!(
                            "cannot record the host key of {name} in '{file}': {e}"
                        ))
                    })?;
                    if let Ok(mut n) = self.notes.lock() {
                        n.push(format!(
                            "host key of {name} recorded in '{file}' ({alg} {fp})"
                        ));
                    }
                    Ok(true)
                }
                HostKeyCheck::Strict => {
                    let also = if other_types.is_empty() {
                        String::new()
                    } else {
                        format!(" (known_hosts has only {} for it)", other_types.join(", "))
                    };
                    let line = known_hosts::entry_line(&self.host, self.port, &key);
                    let scan = if self.port == 22 {
                        format!("ssh-keyscan {}", self.host)
                    } else {
                        format!("ssh-keyscan -p {} {}", self.port, self.host)
                    };
                    Err(SshError::HostKey(format!(
                        "unknown host key for {name}{also}: the server offers {alg} {fp}; after checking this fingerprint out of band, add the line \"{line}\" to '{file}' (or run: {scan} >> '{file}'), or set host-key-check = \"accept-new\""
                    )))
                }
            },
        }
    }
}
