//! Synapse's loggers raised to DEBUG for the capture and reverted on every
//! way out (runbook §0/§4).

pub mod shell;
pub mod yaml;
