//! The journal on disk and the evidence bundle made from it.

pub mod export;
pub mod journal;
pub mod manifest;
pub mod report;
pub mod timeline;
