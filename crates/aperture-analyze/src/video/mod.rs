//! Video: shots, keyframes, a thumbnail and a storyboard, from one streaming decode.
//!
//! The `video` analyzer decodes the first video stream once, small and at a constant rate
//! ([`aperture_media::video`]), and feeds each frame to the shot detector ([`shots`]) and the
//! storyboard ([`storyboard`]). Each shot's keyframe is then decoded again at up to 1280
//! pixels by seeking to it, and stored as `shot-N.jpg`; the sharpest becomes the thumbnail.
//! The image analyzers read those keyframes afterwards (see [`crate::Input::frames`]), each
//! insight carrying its shot's time range.
//!
//! A video longer than [`VideoOptions::chunk`] is split ([`Analyzer::split`]): each stretch
//! is decoded by a job of its own, on any worker, with a margin either side, and keeps what
//! happens inside it ([`piece::Piece`]); one job then joins the stretches into the shots of
//! the whole ([`piece::join`]) and extracts their keyframes. A short video is one stretch,
//! joined at once: both paths are the same code.

pub mod piece;
pub mod preview;
pub mod shots;
pub mod storyboard;

use std::time::Duration;

use aperture_core::value::{self, ShotContent};
use aperture_core::{AnalyzerSpec, Insight, InsightValue, MediaKind, Place, UnixMillis};
use aperture_media::video::{self as decode, DecodeError, DecodeOptions};
use bytes::Bytes;
use image::RgbImage;

use aperture_catalog::MAX_PARTS;
use aperture_catalog::jobs::{Part, PartResult, Stretch};
use piece::Piece;

use crate::thumbnail::jpeg;
use crate::{Analyzer, Error, Input, Output};

/// What the `video` analyzer is, before anything loads.
pub const SPEC: AnalyzerSpec = AnalyzerSpec {
    name: "video",
    version: "1",
    kinds: &[MediaKind::Video],
    priority: 120,
    reads: &[],
    produces: &[
        InsightValue::SHOT,
        InsightValue::THUMBNAIL,
        InsightValue::STORYBOARD,
    ],
};

/// The analyzer's settings.
#[derive(Debug, Clone)]
pub struct VideoOptions {
    /// How frames are decoded (the program, threads, the stall timeout).
    pub decode: DecodeOptions,
    /// Longer videos are refused. Default: 6 hours.
    pub max_duration: Duration,
    /// Frames are sampled at the video's own rate up to this many a second. Default: 30.
    pub max_fps: f64,
    /// Keyframes are stored at most this many pixels a side. Default: 1280.
    pub keyframe_side: u32,
    /// The thumbnail's side. Default: 256 (as images').
    pub thumbnail_side: u32,
    /// Keyframes kept at most, for the longest shots (each is a seek and a JPEG held until the
    /// job ends): a pathological file cut every few frames for hours stays bounded.
    /// Default: 1000.
    pub max_keyframes: usize,
    /// Shot detection's thresholds.
    pub shots: shots::Params,
    /// Longer videos are split into parts of this length, analysed as jobs of their own (on
    /// any worker, at once) and joined into one timeline. Default: 10 minutes.
    pub chunk: Duration,
}

impl Default for VideoOptions {
    fn default() -> Self {
        Self {
            decode: DecodeOptions::default(),
            max_duration: Duration::from_secs(6 * 3600),
            max_fps: 30.0,
            keyframe_side: 1280,
            thumbnail_side: 256,
            max_keyframes: 1000,
            shots: shots::Params::default(),
            chunk: Duration::from_secs(600),
        }
    }
}

/// The analyzer.
#[derive(Debug, Clone, Default)]
pub struct Video {
    /// Its settings.
    pub options: VideoOptions,
}

/// The name of shot `index`'s keyframe among the asset's derived objects.
pub fn keyframe_name(index: u32) -> String {
    format!("shot-{index}.jpg")
}

impl Analyzer for Video {
    fn spec(&self) -> &'static AnalyzerSpec {
        &SPEC
    }

    fn version(&self) -> String {
        format!("{}-{}", SPEC.version, self.options.keyframe_side)
    }

    fn analyze(&self, input: &Input<'_>) -> Result<Output, Error> {
        let plan = self.plan(input)?;
        let piece = self.piece(input, &plan, 0, None, true)?;
        self.whole(input, &plan, vec![piece])
    }

    fn split(&self, input: &Input<'_>) -> Result<Option<Vec<Stretch>>, Error> {
        let plan = self.plan(input)?;
        // Only containers with an index seek to a frame reliably; in the others (MPEG-TS,
        // AVI, raw streams) a seek may land past the keyframe a stretch needs.
        let seekable = input.asset.metadata.container.as_deref().is_some_and(|c| {
            ["mp4", "mov", "matroska", "webm"]
                .iter()
                .any(|k| c.contains(k))
        });
        let Some(duration) = plan.duration_ms.filter(|_| seekable) else {
            return Ok(None);
        };
        let chunk = (self.options.chunk.as_millis() as u64)
            .max(duration.div_ceil(MAX_PARTS as u64))
            .max(1000);
        Ok(crate::parts::even(duration, chunk))
    }

    fn analyze_part(&self, input: &Input<'_>, part: &Part) -> Result<Vec<u8>, Error> {
        let plan = self.plan(input)?;
        let first = plan.frame_at(part.start_ms);
        let until = part.end_ms.map(|ms| plan.frame_at(ms));
        let mut piece = self.piece(input, &plan, first, until, true)?;
        // A stretch that should have frames but whose seek found none (a file whose index
        // lies): decoded from the start instead, slowly but surely.
        if piece.end <= first && plan.duration_ms.is_some_and(|d| part.start_ms + 1000 < d) {
            piece = self.piece(input, &plan, first, until, false)?;
        }
        piece.to_bytes().map_err(|e| Error::Transient {
            reason: format!(
                "{}: part {} cannot be stored: {e}",
                input.asset.name, part.index
            ),
        })
    }

    fn join(&self, input: &Input<'_>, parts: &[PartResult]) -> Result<Output, Error> {
        let plan = self.plan(input)?;
        let pieces = parts
            .iter()
            .map(|p| {
                Piece::from_bytes(&p.result).map_err(|e| Error::BadInput {
                    reason: format!(
                        "{}: what part {} of {} found cannot be read back ({e}); \
                         `aperture reindex video` analyses it again",
                        input.asset.name, p.part.index, p.part.count
                    ),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.whole(input, &plan, pieces)
    }
}

/// How a video is sampled, decided from its metadata before any frame is decoded.
struct Plan {
    /// Frames a second sampled.
    fps: f64,
    /// Frames past this number are past the duration limit.
    max_frames: u64,
    /// The duration the metadata gives.
    duration_ms: Option<u64>,
}

impl Plan {
    /// The frame shown at `ms`.
    fn frame_at(&self, ms: u64) -> u64 {
        (ms as f64 * self.fps / 1000.0).round() as u64
    }

    /// When frame `f` is shown.
    fn ms(&self, f: u64) -> u64 {
        (f as f64 * 1000.0 / self.fps).round() as u64
    }
}

impl Video {
    /// Checks the asset against the limits and decides the sampling rate.
    fn plan(&self, input: &Input<'_>) -> Result<Plan, Error> {
        let asset = input.asset;
        if asset.kind != MediaKind::Video {
            return Err(Error::NotApplicable {
                reason: format!("{} is {}, not a video", asset.name, asset.mime),
            });
        }
        let meta = &asset.metadata;
        let max = self.options.max_duration;
        if let Some(ms) = meta.duration_ms
            && ms > max.as_millis() as u64
        {
            return Err(Error::BadInput {
                reason: format!(
                    "{} lasts {}, longer than the {} limit for video",
                    asset.name,
                    aperture_core::human::clock(ms),
                    aperture_core::human::clock(max.as_millis() as u64)
                ),
            });
        }
        if let (Some(w), Some(h)) = (meta.width, meta.height)
            && u64::from(w) * u64::from(h) > self.options.decode.max_pixels
        {
            return Err(Error::BadInput {
                reason: format!(
                    "{}: its frames claim {w} × {h} pixels, more than the {} million a video \
                     may have",
                    asset.name,
                    self.options.decode.max_pixels / 1_000_000
                ),
            });
        }
        let fps = meta
            .frame_rate
            .filter(|f| f.is_finite() && *f > 0.0)
            .unwrap_or(25.0);
        // Above the cap, every second (or third) frame: evenly spaced still.
        let fps = fps / (fps / self.options.max_fps.max(1.0)).ceil().max(1.0);
        Ok(Plan {
            fps,
            max_frames: (max.as_secs_f64() * fps).ceil() as u64 + 1,
            duration_ms: meta.duration_ms,
        })
    }

    /// Decodes frames `first..until` (`None`: to the end) with a margin either side, and
    /// keeps what the detector found in them and the storyboard tiles due in them.
    fn piece(
        &self,
        input: &Input<'_>,
        plan: &Plan,
        first: u64,
        until: Option<u64>,
        seek: bool,
    ) -> Result<Piece, Error> {
        let asset = input.asset;
        let margin = (piece::MARGIN_S * plan.fps).ceil() as u64;
        let offset = first.saturating_sub(margin);
        let count = until.map(|u| u + margin - offset);
        // Without seeking, frames before the margin are decoded and dropped.
        let (start, count) = if seek {
            (offset, count)
        } else {
            (0, count.map(|n| n + offset))
        };
        // Each storyboard tile belongs to the stretch its time falls in.
        let since_ms = plan.ms(first);
        let max = self.options.max_duration;
        let mut detector = shots::Detector::new(plan.fps, self.options.shots.clone());
        let mut board = self.storyboard(plan);
        let (mut decoded, mut last_ms) = (0, 0);
        for frame in decode::frames_from(
            input.path,
            &asset.name,
            plan.fps,
            start,
            count,
            &self.options.decode,
        )
        .map_err(decode_error)?
        {
            let frame = frame.map_err(decode_error)?;
            if frame.index < offset {
                continue;
            }
            if frame.index >= plan.max_frames {
                return Err(Error::BadInput {
                    reason: format!(
                        "{} goes on past the {} limit for video",
                        asset.name,
                        aperture_core::human::clock(max.as_millis() as u64)
                    ),
                });
            }
            detector.push(&frame.image);
            let mine = frame.index >= first && until.is_none_or(|u| frame.index < u);
            if mine {
                board.offer_since(since_ms, frame.time_ms, &frame.image);
                last_ms = frame.time_ms;
            }
            decoded += 1;
        }
        let found = detector.finish();
        if first == 0 && found.frames == 0 {
            return Err(Error::BadInput {
                reason: format!("{}: no video frame could be decoded", asset.name),
            });
        }
        let mut piece = Piece::new(&found.shots, offset, decoded, first, until);
        piece.last_ms = last_ms;
        piece.tiles = board.into_tiles();
        Ok(piece)
    }

    /// The storyboard's layout: the same in every part, from the metadata.
    fn storyboard(&self, plan: &Plan) -> storyboard::Builder {
        storyboard::Builder::new(
            plan.duration_ms
                .unwrap_or(self.options.max_duration.as_millis() as u64),
        )
    }

    /// The shots, their keyframes, the thumbnail and the storyboard of the whole video, from
    /// the pieces of it.
    fn whole(&self, input: &Input<'_>, plan: &Plan, pieces: Vec<Piece>) -> Result<Output, Error> {
        let asset = input.asset;
        // A stretch in the middle with no frames (past its seek) would leave a hole.
        let mut pieces = pieces;
        pieces.sort_by_key(|p| p.first);
        for (n, pair) in pieces.windows(2).enumerate() {
            let later_has_frames = pieces[n + 1..].iter().any(|p| p.end > p.first);
            if pair[0].end < pair[1].first && later_has_frames {
                return Err(Error::BadInput {
                    reason: format!(
                        "{}: no frames from {} to {}, yet frames after: the video cannot be \
                         read in parts",
                        asset.name,
                        aperture_core::human::clock(plan.ms(pair[0].end)),
                        aperture_core::human::clock(plan.ms(pair[1].first))
                    ),
                });
            }
        }
        let (found, frames) = piece::join(&pieces);
        if frames == 0 {
            return Err(Error::BadInput {
                reason: format!("{}: no video frame could be decoded", asset.name),
            });
        }
        let last_ms = pieces.iter().map(|p| p.last_ms).max().unwrap_or(0);
        let end_ms = plan.duration_ms.unwrap_or(0).max(last_ms + plan.ms(1));
        let mut board = self.storyboard(plan);
        for piece in pieces {
            for (n, tile) in piece.tiles {
                board.insert(n, tile);
            }
        }

        let mut insights = Vec::new();
        let mut derived = Vec::new();
        let mut best: Option<(f32, RgbImage)> = None;
        // The longest shots get keyframes when there are more than the cap.
        let mut by_length: Vec<usize> = (0..found.len()).collect();
        by_length.sort_by_key(|&i| std::cmp::Reverse(found[i].end - found[i].start));
        let with_keyframe: std::collections::HashSet<usize> = by_length
            .into_iter()
            .take(self.options.max_keyframes)
            .collect();
        for (index, shot) in found.iter().enumerate() {
            let keyframe_index = shot.keyframe.filter(|_| with_keyframe.contains(&index));
            let index = index as u32;
            let mut keyframe = None;
            if let Some(k) = keyframe_index {
                let image = decode::frame_at(
                    input.path,
                    &asset.name,
                    plan.ms(k),
                    self.options.keyframe_side,
                    &self.options.decode,
                )
                .map_err(decode_error)?;
                let name = keyframe_name(index);
                derived.push((name.clone(), Bytes::from(jpeg(&image, 85, &asset.name)?)));
                keyframe = Some(name);
                let score = shot.sharpness
                    * if shot.content == Some(ShotContent::Static) {
                        0.5
                    } else {
                        1.0
                    };
                if best.as_ref().is_none_or(|(s, _)| score > *s) {
                    best = Some((score, image));
                }
            }
            insights.push(
                self.insight(
                    asset,
                    value::Shot {
                        index,
                        transition: shot.transition,
                        content: shot.content,
                        keyframe,
                    }
                    .into(),
                    Place::Time {
                        start_ms: plan.ms(shot.start),
                        end_ms: if shot.end == frames {
                            end_ms
                        } else {
                            plan.ms(shot.end)
                        },
                        rect: None,
                    },
                ),
            );
        }
        if let Some((_, image)) = best {
            let side = self.options.thumbnail_side;
            let small = image::DynamicImage::ImageRgb8(image)
                .thumbnail(side, side)
                .into_rgb8();
            let bytes = jpeg(&small, 80, &asset.name)?;
            let name = format!("thumbnail-{side}.jpg");
            insights.push(
                self.insight(
                    asset,
                    value::Thumbnail {
                        name: name.clone(),
                        mime: "image/jpeg".into(),
                        width: small.width(),
                        height: small.height(),
                        bytes: bytes.len() as u64,
                    }
                    .into(),
                    Place::Whole,
                ),
            );
            derived.push((name, Bytes::from(bytes)));
        }
        if let Some((sprite, vtt, board)) = board.finish(end_ms, "storyboard.jpg", "storyboard.vtt")
        {
            derived.push((board.sprite.clone(), Bytes::from(sprite)));
            derived.push((board.vtt.clone(), Bytes::from(vtt)));
            insights.push(self.insight(asset, board.into(), Place::Whole));
        }
        Ok(Output {
            insights,
            derived,
            derived_files: Vec::new(),
        })
    }

    fn insight(
        &self,
        asset: &aperture_catalog::Asset,
        value: InsightValue,
        place: Place,
    ) -> Insight {
        Insight {
            asset: asset.id,
            analyzer: SPEC.name.into(),
            analyzer_version: self.version(),
            model: None,
            model_version: None,
            value,
            confidence: None,
            language: None,
            place,
            created_at: UnixMillis::now(),
        }
    }
}

/// A missing ffmpeg or a failed process start may pass; a file that will not decode will not.
pub(crate) fn decode_error(e: DecodeError) -> Error {
    match e {
        DecodeError::NoFfmpeg { .. } | DecodeError::Io { .. } => Error::Transient {
            reason: e.to_string(),
        },
        _ => Error::BadInput {
            reason: e.to_string(),
        },
    }
}
