//! cutover: a terminal console that drives a legacy-data cutover weekend.
pub mod app;
pub mod control;
pub mod journal;
pub mod runbook;
pub mod tui;
