//! Domain knowledge: the KEs, Synapse's log format, the client's reports,
//! HAR files, secrets to redact.

pub mod diag;
pub mod element_log;
pub mod har;
pub mod histogram;
pub mod ke;
pub mod log_format;
pub mod membership;
pub mod prometheus_api;
pub mod redact;
pub mod sfu_log;
pub mod signatures;
pub mod stall;
pub mod synapse_log;
pub mod synapse_metrics;

pub use ke::{Ke, KeSet, PerKe};

/// The log an ignored benchmark measures: the file `CALLCAP_SCAN_LOG`
/// names, else what `generate` makes.
#[cfg(test)]
pub(crate) fn bench_log_or(generate: impl FnOnce() -> Vec<u8>) -> Vec<u8> {
    match std::env::var_os("CALLCAP_SCAN_LOG") {
        Some(p) => std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.to_string_lossy())),
        None => generate(),
    }
}
