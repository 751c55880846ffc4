//! callcap: capture, line up and bundle the evidence of end-to-end-encryption
//! faults in a Matrix deployment during a live call.

pub mod analyze;
pub mod app;
pub mod bundle;
pub mod capture;
pub mod check;
pub mod cli;
pub mod commands;
pub mod config;
pub mod debug_loggers;
pub mod demo;
pub mod domain;
pub mod live;
pub mod model;
pub mod recover;
pub mod sources;
pub mod ui;
pub mod verdicts;
