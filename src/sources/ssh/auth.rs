//! Public-key authentication: ssh-agent first, then key files (OpenSSH
//! format: ed25519, ECDSA, RSA). A passphrase comes from the environment
//! variable named by `passphrase-env`, else from the console through
//! [`PassphrasePrompt`]. Decrypted keys are kept in memory for reconnects, so
//! the operator is asked once per run. Passphrases are never logged.

use super::SshError;
use super::host_key::Client;
use super::target::{AgentChoice, Endpoint};
use russh::client::Handle;
use russh::keys::agent::client::AgentClient;
use russh::keys::{Algorithm, PrivateKey, PrivateKeyWithHashAlg};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use zeroize::Zeroizing;

/// A passphrase, wiped from memory when dropped.
pub type Passphrase = Zeroizing<String>;

/// One question to the operator: "passphrase for key `key_path`?".
///
/// Answer through `reply`: `Some(passphrase)`, or `None` to skip the key.
/// Dropping the request counts as `None`.
pub struct PassphraseRequest {
    pub key_path: PathBuf,
    /// 1 for the first question about this key, 2 after a wrong passphrase, ...
    pub attempt: u32,
    pub reply: oneshot::Sender<Option<Passphrase>>,
}

impl std::fmt::Debug for PassphraseRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PassphraseRequest")
            .field("key_path", &self.key_path)
            .field("attempt", &self.attempt)
            .finish()
    }
}

/// The console's side of passphrase questions: a cloneable handle given to
/// the SSH source; the UI owns the matching receiver, shows a masked prompt
/// per [`PassphraseRequest`] and answers on its `reply`.
///
/// ```ignore
/// let (prompt, mut questions) = PassphrasePrompt::channel();
/// tokio::spawn(run_server_log(ssh, log, tx, shutdown, Some(prompt)));
/// // in the UI loop:
/// if let Some(q) = questions.recv().await { /* show prompt, later: */ let _ = q.reply.send(Some(typed)); }
/// ```
#[derive(Clone, Debug)]
pub struct PassphrasePrompt {
    tx: mpsc::Sender<PassphraseRequest>,
}

impl PassphrasePrompt {
    pub fn channel() -> (PassphrasePrompt, mpsc::Receiver<PassphraseRequest>) {
        let (tx, rx) = mpsc::channel(1);
        (PassphrasePrompt { tx }, rx)
    }

    /// `None` when the operator declined or nobody listens.
    pub async fn ask(&self, key_path: &Path, attempt: u32) -> Option<Passphrase> {
        let (reply, answer) = oneshot::channel();
        let req = PassphraseRequest {
            key_path: key_path.to_path_buf(),
            attempt,
            reply,
        };
        self.tx.send(req).await.ok()?;
        answer.await.ok().flatten()
    }
}

const PROMPT_ATTEMPTS: u32 = 3;

enum Cached {
    Key(Arc<PrivateKey>),
    /// Not usable this run, and why (missing, unreadable, passphrase declined).
    Skip(String),
}

/// Auth state that survives reconnects (decrypted keys).
pub(crate) struct Authenticator {
    agent: AgentChoice,
    passphrase_env: Option<String>,
    prompt: Option<PassphrasePrompt>,
    keys: HashMap<PathBuf, Cached>,
}

fn load_key(path: PathBuf, pass: Option<Passphrase>) -> Result<PrivateKey, russh::keys::Error> {
    russh::keys::load_secret_key(&path, pass.as_ref().map(|p| p.as_str()))
}

async fn load_blocking(
    path: &Path,
    pass: Option<Passphrase>,
) -> Result<PrivateKey, russh::keys::Error> {
    let p = path.to_path_buf();
    // bcrypt-pbkdf for encrypted keys is deliberately slow: keep it off the runtime.
    match tokio::task::spawn_blocking(move || load_key(p, pass)).await {
        Ok(r) => r,
        Err(_) => Err(russh::keys::Error::CouldNotReadKey),
    }
}

impl Authenticator {
    pub fn new(
        agent: AgentChoice,
        passphrase_env: Option<String>,
        prompt: Option<PassphrasePrompt>,
    ) -> Self {
        Authenticator {
            agent,
            passphrase_env,
            prompt,
            keys: HashMap::new(),
        }
    }

    /// No passphrase is asked for from now on; keys already decrypted stay.
    pub(crate) fn stop_asking(&mut self) {
        self.prompt = None;
    }

    /// Decrypts (or fetches from the cache) the key at `path`.
    async fn key(&mut self, path: &Path) -> Result<Result<Arc<PrivateKey>, String>, SshError> {
        if let Some(c) = self.keys.get(path) {
            return Ok(match c {
                Cached::Key(k) => Ok(k.clone()),
                Cached::Skip(why) => Err(why.clone()),
            });
        }
        let entry = if !path.exists() {
            Cached::Skip("not found".into())
        } else {
            match load_blocking(path, None).await {
                Ok(k) => Cached::Key(Arc::new(k)),
                Err(russh::keys::Error::KeyIsEncrypted) => match self.decrypt(path).await? {
                    Some(k) => Cached::Key(Arc::new(k)),
                    None => Cached::Skip("encrypted, no passphrase given".into()),
                },
                Err(e) => Cached::Skip(format!("cannot load: {e}")),
            }
        };
        let out = match &entry {
            Cached::Key(k) => Ok(k.clone()),
            Cached::Skip(why) => {
                tracing::debug!(key = %path.display(), %why, "identity file skipped");
                Err(why.clone())
            }
        };
        self.keys.insert(path.to_path_buf(), entry);
        Ok(out)
    }

    async fn decrypt(&mut self, path: &Path) -> Result<Option<PrivateKey>, SshError> {
        if let Some(var) = &self.passphrase_env {
            match std::env::var(var) {
                Ok(v) => {
                    let pass = Zeroizing::new(v);
                    return match load_blocking(path, Some(pass)).await {
                        Ok(k) => Ok(Some(k)),
                        Err(_) => Err(SshError::Passphrase(format!(
                            "the passphrase in ${var} does not decrypt '{}'",
                            path.display()
                        ))),
                    };
                }
                Err(_) => {
                    tracing::warn!(var = %var, "passphrase-env names a variable that is not set")
                }
            }
        }
        let Some(prompt) = self.prompt.clone() else {
            tracing::warn!(key = %path.display(), "key is encrypted and no passphrase source is available");
            return Ok(None);
        };
        for attempt in 1..=PROMPT_ATTEMPTS {
            let Some(pass) = prompt.ask(path, attempt).await else {
                return Ok(None);
            };
            if let Ok(k) = load_blocking(path, Some(pass)).await {
                return Ok(Some(k));
            }
        }
        Err(SshError::Passphrase(format!(
            "wrong passphrase for '{}' ({PROMPT_ATTEMPTS} attempts)",
            path.display()
        )))
    }

    /// Authenticates `handle` as `ep.user`; agent keys first, then key files.
    pub async fn authenticate(
        &mut self,
        handle: &mut Handle<Client>,
        ep: &Endpoint,
        net_timeout: Duration,
    ) -> Result<(), SshError> {
        let mut tried: Vec<String> = Vec::new();
        let rsa_hash =
            match tokio::time::timeout(net_timeout, handle.best_supported_rsa_hash()).await {
                Ok(Ok(h)) => h.flatten(),
                _ => None,
            };

        if let AgentChoice::Socket(sock) = &self.agent {
            match AgentClient::connect_uds(sock).await {
                Ok(mut agent) => {
                    let ids = match agent.request_identities().await {
                        Ok(ids) => ids,
                        Err(e) => {
                            tried.push(format!("agent (cannot list keys: {e})"));
                            Vec::new()
                        }
                    };
                    if !ids.is_empty() {
                        tried.push(format!("agent ({} keys)", ids.len()));
                    }
                    for id in ids {
                        let key = id.public_key().into_owned();
                        let hash = if matches!(key.algorithm(), Algorithm::Rsa { .. }) {
                            rsa_hash
                        } else {
                            None
                        };
                        let r = tokio::time::timeout(
                            net_timeout,
                            handle.authenticate_publickey_with(&ep.user, key, hash, &mut agent),
                        )
                        .await;
                        match r {
                            Ok(Ok(res)) if res.success() => return Ok(()),
                            Ok(Ok(_)) => {}
                            Ok(Err(e)) => tracing::debug!(error = %e, "agent signing failed"),
                            Err(_) => return Err(SshError::Timeout("authentication".into())),
                        }
                    }
                }
                Err(e) => tried.push(format!("agent at '{}' unreachable: {e}", sock.display())),
            }
        }

        for path in &ep.identity_files {
            let key = match self.key(path).await? {
                Ok(k) => k,
                Err(why) => {
                    // Default key files that do not exist are not worth a mention.
                    if ep.explicit_identities.contains(path) || why != "not found" {
                        tried.push(format!("{} ({why})", path.display()));
                    }
                    continue;
                }
            };
            tried.push(path.display().to_string());
            let hash = if matches!(key.algorithm(), Algorithm::Rsa { .. }) {
                rsa_hash
            } else {
                None
            };
            let r = tokio::time::timeout(
                net_timeout,
                handle.authenticate_publickey(&ep.user, PrivateKeyWithHashAlg::new(key, hash)),
            )
            .await;
            match r {
                Ok(Ok(res)) if res.success() => return Ok(()),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(SshError::from(e)),
                Err(_) => return Err(SshError::Timeout("authentication".into())),
            }
        }
        let tried = if tried.is_empty() {
            "no agent and no usable key file".to_string()
        } else {
            tried.join(", ")
        };
        Err(SshError::Auth {
            target: ep.label(),
            tried,
        })
    }
}
