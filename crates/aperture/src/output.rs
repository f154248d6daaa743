//! Small helpers for what people read (the formats are `aperture_core::human`'s, shared with
//! the libraries' reports).

use aperture_core::human::{HumanBytes, HumanCount};

pub use aperture_core::human::clip;

pub fn bytes(n: u64) -> String {
    HumanBytes(n).to_string()
}

pub fn count(n: u64) -> String {
    HumanCount(n).to_string()
}

pub fn json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
