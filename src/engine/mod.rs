//! The ETL engine: rules, the streaming pipeline and reject files.
pub mod derive;
pub mod lines;
pub mod ordered;
pub mod pipeline;
pub mod rejects;
pub mod retry;
pub mod rules;
