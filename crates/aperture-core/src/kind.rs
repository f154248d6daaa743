use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ParseError;

/// What an asset is, decided from its bytes (never from its name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    /// Pictures, still or animated (GIF, animated WebP).
    Image,
    /// Moving pictures, with or without sound.
    Video,
    /// Sound only.
    Audio,
    /// PDFs, office documents, HTML and plain text.
    Document,
    /// Anything else: kept as a generic file, never refused.
    Other,
}

impl MediaKind {
    /// Every kind. The order is a stored format: the vector index records a kind as its
    /// position here, so new kinds go at the end and none is ever reordered.
    pub const ALL: [MediaKind; 5] = [
        MediaKind::Image,
        MediaKind::Video,
        MediaKind::Audio,
        MediaKind::Document,
        MediaKind::Other,
    ];

    /// The lowercase name used in URLs, queries, JSON and the catalog; `FromStr` accepts any case.
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Image => "image",
            MediaKind::Video => "video",
            MediaKind::Audio => "audio",
            MediaKind::Document => "document",
            MediaKind::Other => "other",
        }
    }
}

impl fmt::Display for MediaKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for MediaKind {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MediaKind::ALL
            .into_iter()
            .find(|kind| kind.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                ParseError::new(
                    "media kind",
                    s,
                    "expected image, video, audio, document or other",
                )
            })
    }
}
