pub mod csv;
pub mod csv_records;
