//! Data that crosses layers: what the journal stores. Both the IO layers
//! (`sources`, `capture`, `bundle`) and the pure App depend on these types,
//! not on each other.

pub mod journal_entry;
