//! cutover: a terminal console that drives a legacy-data cutover weekend.
//!
//! `runbook` parses and lints the plan, `steps` executes it (owning the `journal` writes),
//! `engine` moves rows from `sources` to `sinks`, `reconcile` produces the evidence,
//! `app` holds the console's state and `tui` / `headless` show it.
pub mod app;
pub mod control;
pub mod datetime;
pub mod db;
pub mod demo;
pub mod describe;
pub mod disk;
pub mod engine;
#[doc(hidden)]
pub mod farewell;
pub mod fault;
pub mod figures;
pub mod headless;
pub mod journal;
pub mod keyset;
pub mod log_feed;
pub mod notify;
pub mod preflight;
pub mod reconcile;
pub mod report;
pub mod runbook;
pub mod runview;
pub mod sign;
pub mod signals;
pub mod signoff;
pub mod sources;
pub mod steps;
pub mod target;
#[doc(hidden)]
pub mod testdb;
pub mod tui;
pub mod urls;
pub mod values;
pub mod watch;
pub mod window;
pub mod words;
