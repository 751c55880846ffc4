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
