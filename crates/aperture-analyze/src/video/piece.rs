//! One stretch of a video, and how stretches join into one timeline.
//!
//! A stretch is decoded with a margin on either side ([`MARGIN_S`]) so that the detector has
//! seen what comes before its first frame and after its last: a transition near an edge is
//! judged as it would be in one pass over the whole video. Each stretch keeps only what
//! happens inside it: the shot starts that fall in it, and the pieces of shots it covers.
//! Joining takes every stretch's starts, in order, so a shot that runs across an edge, having
//! no start there, stays one shot.

use std::collections::BTreeMap;

use aperture_core::value::{ShotContent, Transition};
use base64::Engine as _;
use image::RgbImage;
use serde::{Deserialize, Serialize};

use super::shots::Span;

/// Seconds decoded before and after a stretch, for context: longer than the longest gradual
/// transition and the detector's windows.
pub const MARGIN_S: f64 = 5.0;

/// What one stretch of a video holds, in frames of the whole video (at the sampling rate).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Piece {
    /// The stretch's first frame.
    pub first: u64,
    /// One past the last frame decoded in it (for the last stretch, the video's end).
    pub end: u64,
    /// When the last frame decoded in it is shown, in milliseconds.
    pub last_ms: u64,
    /// The shots that start in it, with how they start.
    pub starts: Vec<(u64, Transition)>,
    /// The shots it covers, cut to the stretch.
    pub segments: Vec<Segment>,
    /// Storyboard tiles due in it, by number.
    #[serde(with = "jpeg_tiles")]
    pub tiles: BTreeMap<u32, RgbImage>,
}

/// A shot, or the part of one that lies in a stretch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// First frame.
    pub start: u64,
    /// One past the last frame.
    pub end: u64,
    /// Black or static, as the detector judged the whole shot it saw.
    pub content: Option<ShotContent>,
    /// The sharpest frame away from transitions, if any.
    pub keyframe: Option<u64>,
    /// How sharp that frame is.
    pub sharpness: f32,
}

impl Piece {
    /// What the detector found over frames `offset..` (the margin included), kept to the
    /// stretch `first..until` (`None`: to the end).
    pub fn new(spans: &[Span], offset: u64, decoded: u64, first: u64, until: Option<u64>) -> Self {
        let end = until.map_or(offset + decoded, |u| u.min(offset + decoded));
        let inside = |f: u64| f >= first && f < end;
        let starts = spans
            .iter()
            .map(|s| (s.start + offset, s.transition))
            // A span from where the decoder started (past the video's start) is no shot start.
            .filter(|&(f, _)| inside(f) && (f > offset || f == 0))
            .collect();
        let segments = spans
            .iter()
            .filter_map(|s| {
                let (start, stop) = ((s.start + offset).max(first), (s.end + offset).min(end));
                (start < stop).then(|| Segment {
                    start,
                    end: stop,
                    content: s.content,
                    keyframe: s.keyframe.map(|k| k + offset),
                    sharpness: s.sharpness,
                })
            })
            .collect();
        Self {
            first,
            end,
            last_ms: 0,
            starts,
            segments,
            tiles: BTreeMap::new(),
        }
    }

    /// The stored form, kept by the queue until the stretches are joined.
    pub fn to_bytes(&self) -> Result<Vec<u8>, String> {
        serde_json::to_vec(self).map_err(|e| e.to_string())
    }

    /// Reads the stored form back.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }
}

/// The shots of the whole video from its stretches (in any order), and its frame count: a
/// shot's content is its pieces' when they all agree, its keyframe the sharpest of theirs.
pub fn join(pieces: &[Piece]) -> (Vec<Span>, u64) {
    let frames = pieces.iter().map(|p| p.end).max().unwrap_or(0);
    let mut starts: Vec<(u64, Transition)> = pieces
        .iter()
        .flat_map(|p| p.starts.iter().copied())
        .filter(|s| s.0 < frames)
        .collect();
    starts.sort_by_key(|s| s.0);
    // Starts within a few frames of each other are one, as the detector has it; a stretch
    // that saw none at frame 0 still begins the video's first shot there.
    starts.dedup_by(|later, earlier| later.0 < earlier.0 + 3);
    if starts.first().is_none_or(|s| s.0 > 0) {
        starts.insert(0, (0, Transition::Start));
    }
    let mut segments: Vec<&Segment> = pieces.iter().flat_map(|p| &p.segments).collect();
    segments.sort_by_key(|s| s.start);
    let mut shots = Vec::with_capacity(starts.len());
    for (n, &(start, transition)) in starts.iter().enumerate() {
        let end = starts.get(n + 1).map_or(frames, |s| s.0);
        if end <= start {
            continue;
        }
        let first = segments.partition_point(|s| s.end <= start);
        let inside: Vec<&Segment> = segments[first..]
            .iter()
            .take_while(|s| s.start < end)
            .copied()
            .collect();
        let content = inside
            .first()
            .and_then(|s| s.content)
            .filter(|c| inside.iter().all(|s| s.content == Some(*c)));
        let best = inside
            .iter()
            .filter(|s| s.keyframe.is_some_and(|k| k >= start && k < end))
            .max_by(|a, b| a.sharpness.total_cmp(&b.sharpness));
        shots.push(Span {
            start,
            end,
            transition,
            content,
            keyframe: if content == Some(ShotContent::Black) {
                None
            } else {
                best.and_then(|s| s.keyframe)
            },
            sharpness: best.map_or(0.0, |s| s.sharpness),
        });
    }
    (shots, frames)
}

/// Tiles as small JPEGs in base64: a few kilobytes each in the queue, not 40.
mod jpeg_tiles {
    use super::*;

    pub fn serialize<S: serde::Serializer>(
        tiles: &BTreeMap<u32, RgbImage>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let encoded: BTreeMap<u32, String> = tiles
            .iter()
            .map(|(n, tile)| {
                let bytes = crate::thumbnail::jpeg(tile, 100, "a storyboard tile")
                    .map_err(serde::ser::Error::custom)?;
                Ok((*n, base64::engine::general_purpose::STANDARD.encode(bytes)))
            })
            .collect::<Result<_, S::Error>>()?;
        encoded.serialize(serializer)
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<BTreeMap<u32, RgbImage>, D::Error> {
        let encoded = BTreeMap::<u32, String>::deserialize(deserializer)?;
        encoded
            .into_iter()
            .map(|(n, text)| {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .map_err(serde::de::Error::custom)?;
                let tile = image::load_from_memory_with_format(&bytes, image::ImageFormat::Jpeg)
                    .map_err(serde::de::Error::custom)?;
                Ok((n, tile.into_rgb8()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(start: u64, end: u64, transition: Transition, keyframe: u64, sharp: f32) -> Span {
        Span {
            start,
            end,
            transition,
            content: None,
            keyframe: Some(keyframe),
            sharpness: sharp,
        }
    }

    /// Two stretches of 100 frames, a shot running across their edge: the first stretch saw
    /// it start at 40; the second, decoding from 80, saw the same shot from its own start
    /// and a cut at 150.
    #[test]
    fn a_shot_across_an_edge_stays_one() {
        let one = Piece::new(
            &[
                span(0, 40, Transition::Start, 20, 1.0),
                span(40, 120, Transition::Cut, 90, 5.0),
            ],
            0,
            120,
            0,
            Some(100),
        );
        let two = Piece::new(
            &[
                span(0, 70, Transition::Start, 30, 9.0),
                span(70, 120, Transition::Cut, 100, 2.0),
            ],
            80,
            120,
            100,
            None,
        );
        assert_eq!(one.starts, [(0, Transition::Start), (40, Transition::Cut)]);
        assert_eq!(
            two.starts,
            [(150, Transition::Cut)],
            "no start at the margin"
        );
        assert_eq!((one.end, two.end), (100, 200));
        let two = Piece::from_bytes(&two.to_bytes().unwrap()).unwrap();
        let (shots, frames) = join(&[two, one]);
        assert_eq!(frames, 200);
        assert_eq!(
            shots
                .iter()
                .map(|s| (s.start, s.end, s.transition, s.keyframe))
                .collect::<Vec<_>>(),
            [
                (0, 40, Transition::Start, Some(20)),
                // The sharper keyframe of its two pieces: 110 (second stretch's 30 + 80).
                (40, 150, Transition::Cut, Some(110)),
                (150, 200, Transition::Cut, Some(180)),
            ]
        );
    }

    #[test]
    fn tiles_survive_the_queue() {
        let mut piece = Piece::default();
        piece
            .tiles
            .insert(7, RgbImage::from_pixel(16, 9, image::Rgb([200, 30, 30])));
        let back = Piece::from_bytes(&piece.to_bytes().unwrap()).unwrap();
        let tile = &back.tiles[&7];
        assert_eq!(tile.dimensions(), (16, 9));
        assert!(tile.get_pixel(8, 4).0[0] > 180);
        assert!(Piece::from_bytes(b"{").is_err());
    }
}
