//! cutover: a terminal console that drives a legacy-data cutover weekend.
pub mod control;
pub mod db;
pub mod engine;
pub mod journal;
pub mod reconcile;
pub mod runbook;
pub mod sinks;
pub mod sources;
pub mod steps;
pub mod headless;
pub mod report;
