//! Small helpers for what people read.

use indicatif::{HumanBytes, HumanCount};

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

/// Shortens text to `max` characters for a table cell.
pub fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Prints up to `limit` lines of a list, then how many were left out.
pub fn capped(lines: impl ExactSizeIterator<Item = String>, limit: usize, hint: &str) {
    let total = lines.len();
    for line in lines.take(limit) {
        println!("  {line}");
    }
    if total > limit {
        println!("  … and {} more ({hint})", total - limit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clips_on_characters() {
        assert_eq!(clip("naïve façade", 20), "naïve façade");
        assert_eq!(clip("naïve façade", 6), "naïve…");
    }
}
