//! Every task of a capture under one supervisor: the sources, the
//! background checks, the DEBUG loggers and the capture task itself run in
//! one [`JoinSet`], each under a name. A task that panics or gives up is
//! seen the moment it ends (not at exit), so the console can say so.

use std::collections::HashMap;
use std::future::Future;
use tokio::task::{Id, JoinError, JoinHandle, JoinSet};

/// How a task ended badly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// It returned an error: the source cannot work at all (a refused host
    /// key at the first connection of a headless capture).
    Failed(String),
    /// It panicked: a defect, but the capture goes on without it.
    Panicked(String),
}

/// A task that ended badly, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskEnd {
    pub name: String,
    pub failure: Failure,
}

impl TaskEnd {
    /// The reason, as the status line and the journal say it.
    pub fn reason(&self) -> String {
        match &self.failure {
            Failure::Failed(r) => r.clone(),
            Failure::Panicked(r) => format!("the {} task stopped: it panicked: {r}", self.name),
        }
    }
}

/// The capture's tasks.
#[derive(Default)]
pub struct Tasks {
    set: JoinSet<Result<(), String>>,
    names: HashMap<Id, String>,
}

impl Tasks {
    pub fn new() -> Tasks {
        Tasks::default()
    }

    /// Runs `fut` as the task `name`; an `Err` it returns is a failure.
    pub fn spawn<F>(&mut self, name: &str, fut: F)
    where
        F: Future<Output = Result<(), String>> + Send + 'static,
    {
        let id = self.set.spawn(fut).id();
        self.names.insert(id, name.to_string());
    }

    /// Watches a task spawned elsewhere: its panic is a failure.
    pub fn adopt(&mut self, name: &str, handle: JoinHandle<()>) {
        self.spawn(name, async move {
            match handle.await {
                Ok(()) => Ok(()),
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(_) => Ok(()),
            }
        });
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// Waits for the next task that fails; tasks that end well are let go
    /// on the way. Never resolves while no task is left (for `select!`).
    pub async fn next_failure(&mut self) -> TaskEnd {
        loop {
            match self.set.join_next_with_id().await {
                None => std::future::pending::<()>().await,
                Some(r) => {
                    if let Some(end) = self.ended(r) {
                        return end;
                    }
                }
            }
        }
    }

    /// Waits for the next task to end: `None` when none is left, `Some(None)`
    /// when it ended well. Safe to cancel (for `select!`).
    pub async fn join_next(&mut self) -> Option<Option<TaskEnd>> {
        let r = self.set.join_next_with_id().await?;
        Some(self.ended(r))
    }

    /// Stops every task left.
    pub fn abort_all(&mut self) {
        self.set.abort_all();
    }

    fn ended(&mut self, r: Result<(Id, Result<(), String>), JoinError>) -> Option<TaskEnd> {
        let (id, failure) = match r {
            Ok((id, Ok(()))) => {
                self.names.remove(&id);
                return None;
            }
            Ok((id, Err(reason))) => (id, Failure::Failed(reason)),
            Err(e) if e.is_panic() => {
                let id = e.id();
                (id, Failure::Panicked(panic_text(e.into_panic())))
            }
            // Aborted: asked for.
            Err(e) => {
                self.names.remove(&e.id());
                return None;
            }
        };
        let name = self.names.remove(&id).unwrap_or_else(|| "task".into());
        Some(TaskEnd { name, failure })
    }
}

/// A panic's message, when it has one.
pub(crate) fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_panic_and_an_error_are_seen_by_name_when_they_happen() {
        let mut t = Tasks::new();
        t.spawn("quiet", async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(())
        });
        t.spawn("well", async { Ok(()) });
        t.spawn("server-log", async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            panic!("index out of bounds")
        });
        let first = tokio::time::timeout(Duration::from_secs(5), t.next_failure()).await;
        assert_eq!(
            first.ok(),
            Some(TaskEnd {
                name: "server-log".into(),
                failure: Failure::Panicked("index out of bounds".into())
            })
        );
        t.adopt(
            "downloads",
            tokio::spawn(async { panic!("{}", String::from("owned")) }),
        );
        t.spawn("database", async { Err("refused for good".into()) });
        let mut next = Vec::new();
        for _ in 0..2 {
            if let Ok(e) = tokio::time::timeout(Duration::from_secs(5), t.next_failure()).await {
                next.push(e.reason());
            }
        }
        next.sort();
        assert_eq!(
            next,
            [
                "refused for good",
                "the downloads task stopped: it panicked: owned"
            ]
        );
        // The one left is stopped when asked.
        t.abort_all();
        assert_eq!(t.join_next().await, Some(None));
        assert_eq!(t.join_next().await, None);
        assert!(t.is_empty());
    }
}
