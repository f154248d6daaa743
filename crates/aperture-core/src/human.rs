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

/// A moment in audio or video as `hh:mm:ss` (`00:01:23`).
pub fn clock(ms: u64) -> String {
    let s = ms / 1000;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// Where in an asset, for a line of text: ` [00:01:23–00:01:31]` for a time range,
/// ` [page 3]` for a page, nothing for the whole asset or a region of an image.
pub fn where_in(place: &crate::Place) -> String {
    use crate::Place;
    match place {
        Place::Time {
            start_ms, end_ms, ..
        } => format!(" [{}–{}]", clock(*start_ms), clock(*end_ms)),
        Place::Page { page, .. } => format!(" [page {page}]"),
        Place::Whole | Place::Region { .. } => String::new(),
    }
}

/// `hh:mm:ss.mmm`, as WebVTT cues write times.
pub fn clock_millis(ms: u64) -> String {
    format!("{}.{:03}", clock(ms), ms % 1000)
}

/// The inverse of [`clock`], more lenient: `1:23`, `00:01:23`, `83`, `83.5`, `00:01:23.450`
/// (hours, minutes and seconds, the seconds with an optional fraction) in milliseconds;
/// `None` for anything else.
pub fn parse_clock(text: &str) -> Option<u64> {
    let parts: Vec<&str> = text.trim().split(':').collect();
    if parts.is_empty() || parts.len() > 3 {
        return None;
    }
    let (last, whole) = parts.split_last()?;
    let mut ms = 0u64;
    for part in whole {
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) || part.len() > 6 {
            return None;
        }
        ms = ms.checked_mul(60)?.checked_add(part.parse::<u64>().ok()?)?;
    }
    let seconds: f64 = last.parse().ok()?;
    if !last.bytes().all(|b| b.is_ascii_digit() || b == b'.') || !(0.0..1e7).contains(&seconds) {
        return None;
    }
    if !whole.is_empty() && seconds >= 60.0 {
        return None;
    }
    // With hours given, the minutes are under 60 too.
    if whole.len() == 2 && whole[1].parse::<u64>().ok()? >= 60 {
        return None;
    }
    ms.checked_mul(60_000)?
        .checked_add((seconds * 1000.0).round() as u64)
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
    fn clocks_print_and_parse() {
        assert_eq!(clock(83_450), "00:01:23");
        assert_eq!(clock(3_600_000 * 7 + 1), "07:00:00");
        assert_eq!(clock_millis(83_450), "00:01:23.450");
        for (text, ms) in [
            ("00:01:23", 83_000),
            ("1:23", 83_000),
            ("83", 83_000),
            ("83.5", 83_500),
            ("00:01:23.450", 83_450),
            ("2:00:00", 7_200_000),
        ] {
            assert_eq!(parse_clock(text), Some(ms), "{text}");
        }
        for bad in [
            "", "1:2:3:4", "1:60", "1:60:00", "a:10", "-5", "1:-5", "1e3", ":5",
        ] {
            assert_eq!(parse_clock(bad), None, "{bad}");
        }
    }

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
