//! The application layer against real (SQLite, local or in-memory) backends.

mod parts;
mod worker;
