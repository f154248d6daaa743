use serde::{Deserialize, Serialize};

use crate::{AssetId, UnixMillis};

/// One thing an analyzer found in an asset, with who found it and where.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Insight {
    /// The asset this was found in.
    pub asset: AssetId,
    /// The analyzer's name, e.g. `labels`, `ocr`.
    pub analyzer: String,
    /// The analyzer's version: when it changes, the analyzer runs again and the new run's
    /// insights replace these.
    pub analyzer_version: String,
    /// The model and its version, when a model produced this.
    pub model: Option<String>,
    /// The model's version or fingerprint, when a model produced this.
    pub model_version: Option<String>,
    /// What the value is: `label`, `ocr_line`, `text`, `language`, `phash`, ...
    pub kind: String,
    /// The finding itself; its shape depends on `kind`.
    pub value: serde_json::Value,
    /// How sure the analyzer was, 0–1, when it says.
    pub confidence: Option<f32>,
    /// BCP 47 tag of the text in `value`, when it is text.
    pub language: Option<String>,
    /// Where in the asset this applies.
    pub place: Place,
    /// When the analyzer produced it.
    pub created_at: UnixMillis,
}

/// Where in the asset an insight applies.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Place {
    /// The asset as a whole.
    Whole,
    /// A region of an image.
    Region {
        /// The region.
        rect: Rect,
    },
    /// A page of a document (1-based), optionally a region of it.
    Page {
        /// The page number, counting from 1.
        page: u32,
        /// The region of the page, if not all of it.
        rect: Option<Rect>,
    },
    /// A time range of audio or video, optionally a region of the frames.
    Time {
        /// Start, in milliseconds from the beginning.
        start_ms: u64,
        /// End, in milliseconds from the beginning.
        end_ms: u64,
        /// The region of the frames, if not all of them.
        rect: Option<Rect>,
    },
}

/// A box in relative coordinates (0–1 of width and height), so it survives thumbnails.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rect {
    /// Left edge, 0–1 of the width.
    pub x: f32,
    /// Top edge, 0–1 of the height.
    pub y: f32,
    /// Width, 0–1 of the image width.
    pub w: f32,
    /// Height, 0–1 of the image height.
    pub h: f32,
}

impl Place {
    /// The page, time range and box as separate columns, for storage and filtering.
    pub fn columns(&self) -> (Option<u32>, Option<(u64, u64)>, Option<Rect>) {
        match *self {
            Place::Whole => (None, None, None),
            Place::Region { rect } => (None, None, Some(rect)),
            Place::Page { page, rect } => (Some(page), None, rect),
            Place::Time {
                start_ms,
                end_ms,
                rect,
            } => (None, Some((start_ms, end_ms)), rect),
        }
    }

    /// The inverse of [`Place::columns`].
    pub fn from_columns(page: Option<u32>, time: Option<(u64, u64)>, rect: Option<Rect>) -> Self {
        match (page, time, rect) {
            (Some(page), _, rect) => Place::Page { page, rect },
            (None, Some((start_ms, end_ms)), rect) => Place::Time {
                start_ms,
                end_ms,
                rect,
            },
            (None, None, Some(rect)) => Place::Region { rect },
            (None, None, None) => Place::Whole,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn place_columns_round_trip() {
        let rect = Rect {
            x: 0.1,
            y: 0.2,
            w: 0.3,
            h: 0.4,
        };
        for place in [
            Place::Whole,
            Place::Region { rect },
            Place::Page {
                page: 3,
                rect: None,
            },
            Place::Page {
                page: 1,
                rect: Some(rect),
            },
            Place::Time {
                start_ms: 1000,
                end_ms: 2500,
                rect: None,
            },
            Place::Time {
                start_ms: 0,
                end_ms: 40,
                rect: Some(rect),
            },
        ] {
            let (page, time, r) = place.columns();
            assert_eq!(Place::from_columns(page, time, r), place);
        }
    }
}
