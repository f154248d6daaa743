//! Numbers for people: byte sizes in binary units and counts with thousands separators, as
//! reports print them.

use std::fmt;

/// A byte size: `512 B`, `1.50 KiB`, `3.25 GiB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanBytes(pub u64);

impl fmt::Display for HumanBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
        if self.0 < 1024 {
            return write!(f, "{} B", self.0);
        }
        let mut value = self.0 as f64 / 1024.0;
        let mut unit = 0;
        while value >= 1024.0 && unit < UNITS.len() - 1 {
            value /= 1024.0;
            unit += 1;
        }
        write!(f, "{value:.2} {}", UNITS[unit])
    }
}

/// A count with thousands separators: `1,234,567`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanCount(pub u64);

impl fmt::Display for HumanCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.0.to_string();
        let mut out = String::with_capacity(digits.len() + digits.len() / 3);
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        f.write_str(&out)
    }
}

/// `text` cut to at most `max` characters, with `…` where it was cut.
pub fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Up to `limit` lines, indented, then how many were left out and where to see them all.
pub fn capped(lines: &[String], limit: usize, hint: &str) -> String {
    let mut out = String::new();
    for line in lines.iter().take(limit) {
        out.push_str("  ");
        out.push_str(line);
        out.push('\n');
    }
    if lines.len() > limit {
        out.push_str(&format!("  … and {} more ({hint})\n", lines.len() - limit));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_counts_read_as_people_write_them() {
        assert_eq!(HumanBytes(0).to_string(), "0 B");
        assert_eq!(HumanBytes(1023).to_string(), "1023 B");
        assert_eq!(HumanBytes(1536).to_string(), "1.50 KiB");
        assert_eq!(HumanBytes(5 << 30).to_string(), "5.00 GiB");
        assert_eq!(HumanCount(0).to_string(), "0");
        assert_eq!(HumanCount(999).to_string(), "999");
        assert_eq!(HumanCount(1000).to_string(), "1,000");
        assert_eq!(HumanCount(1_234_567).to_string(), "1,234,567");
        assert_eq!(clip("naïve façade", 20), "naïve façade");
        assert_eq!(clip("naïve façade", 6), "naïve…");
    }
}
