pub mod csv;
pub mod sql;
