//! The journal on disk and the evidence bundle made from it.

pub mod archive;
pub mod debug_loggers;
pub mod export;
pub mod html;
pub mod journal;
pub mod manifest;
pub mod metrics_csv;
pub mod redactions;
pub mod report;
mod report_metrics;
mod report_sections;
pub mod timeline;
