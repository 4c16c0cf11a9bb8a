//! cutover: a terminal console that drives a legacy-data cutover weekend.
pub mod control;
pub mod demo;
pub mod journal;
pub mod runbook;
