//! Data that crosses layers: what a source reports (its status, a database
//! poll, a metrics reading), what the capture makes of a client file, and what the journal
//! stores. The IO layers (`sources`, `capture`, `bundle`) and the pure App
//! both depend on these types, not on each other.

pub mod checklist;
pub mod client;
pub mod db;
pub mod debug_loggers;
pub mod journal_entry;
pub mod metrics;
pub mod server_logs;
pub mod status;

pub use db::{DbChange, DbPoll, Row};
pub use status::SourceStatus;
