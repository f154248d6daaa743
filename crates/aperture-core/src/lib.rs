//! Aperture's plain domain types: content hashes, asset ids, media kinds, metadata, insights
//! with their typed values, and the static descriptions of analyzers.
//!
//! Nothing here does IO or needs a runtime, so every other crate can share these types.
//!
//! ```
//! use aperture_core::{ContentHash, MediaKind};
//!
//! let hash = ContentHash::of(b"hello");
//! assert_eq!(hash.to_string().parse::<ContentHash>().unwrap(), hash);
//! assert_eq!("image".parse::<MediaKind>().unwrap(), MediaKind::Image);
//! ```

mod analyzer;
mod hash;
pub mod human;
mod id;
mod insight;
mod key;
mod kind;
mod metadata;
mod time;
pub mod value;
mod vector;

pub use analyzer::AnalyzerSpec;
pub use hash::{ContentHash, hex};
pub use id::AssetId;
pub use insight::{Insight, Place, Rect};
pub use key::KeyOwner;
pub use kind::MediaKind;
pub use metadata::{Gps, MediaMetadata};
pub use time::UnixMillis;
pub use value::{InsightValue, InsightValueError, Vector};
pub use vector::{decode_vector, dot, encode_vector};

/// A value that failed to parse from its text form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {value:?}: {reason}")]
pub struct ParseError {
    /// What was being parsed, e.g. `media kind`.
    pub what: &'static str,
    /// The text that failed (its first 80 characters).
    pub value: String,
    /// Why it failed.
    pub reason: &'static str,
}

impl ParseError {
    pub(crate) fn new(what: &'static str, value: &str, reason: &'static str) -> Self {
        // Keep errors small even when someone pastes a huge value.
        let value: String = value.chars().take(80).collect();
        Self {
            what,
            value,
            reason,
        }
    }
}
