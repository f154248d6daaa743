//! The pictures an image analyzer reads: an image itself, or a video's keyframes, each with
//! its place; and the merging of what persists over consecutive shots into one insight.

use std::collections::HashMap;
use std::path::PathBuf;

use aperture_core::{Insight, InsightValue, MediaKind, Place, Rect};
use image::DynamicImage;

use crate::{Error, Input, image_input};

/// A picture standing for part of an asset: a video's keyframe and its shot's time range.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Where in the asset it stands: the shot's [`Place::Time`].
    pub place: Place,
    /// A local JPEG of it.
    pub path: PathBuf,
}

/// Calls `each` with every picture of the asset and its place: an image once with
/// [`Place::Whole`], a video once per keyframe with its shot's time range. Pictures are
/// decoded one at a time, so a video with a thousand shots holds one in memory.
pub fn for_each_picture(
    input: &Input<'_>,
    mut each: impl FnMut(Place, DynamicImage) -> Result<(), Error>,
) -> Result<(), Error> {
    let asset = input.asset;
    match asset.kind {
        MediaKind::Video => {
            if input.frames.is_empty() {
                return Err(Error::NotApplicable {
                    reason: format!(
                        "{} has no keyframes yet (the video analyzer stores them)",
                        asset.name
                    ),
                });
            }
            for frame in input.frames {
                let image = image::open(&frame.path).map_err(|e| Error::Transient {
                    reason: format!(
                        "cannot read a keyframe of {} ({}): {e}",
                        asset.name,
                        frame.path.display()
                    ),
                })?;
                each(frame.place, image)?;
            }
            Ok(())
        }
        _ => each(Place::Whole, image_input::decode(asset, input.path)?),
    }
}

/// `place` narrowed to `rect` of its picture: a region of an image, or of a shot's frames.
pub fn within(place: Place, rect: Rect) -> Place {
    match place {
        Place::Time {
            start_ms, end_ms, ..
        } => Place::Time {
            start_ms,
            end_ms,
            rect: Some(rect),
        },
        Place::Page { page, .. } => Place::Page {
            page,
            rect: Some(rect),
        },
        Place::Whole | Place::Region { .. } => Place::Region { rect },
    }
}

/// Insights that say the same thing (the same label, the same line of text) over touching
/// time ranges become one insight spanning them, with the highest confidence: a caption on
/// screen through fifty shots is one caption, not fifty. Other insights pass unchanged; the
/// order of first appearance is kept.
pub fn merge_runs(insights: Vec<Insight>) -> Vec<Insight> {
    let mut out: Vec<Insight> = Vec::with_capacity(insights.len());
    // Per key, the index in `out` of its latest run.
    let mut open: HashMap<String, usize> = HashMap::new();
    for insight in insights {
        let (
            Place::Time {
                start_ms, end_ms, ..
            },
            Some(key),
        ) = (insight.place, same_as(&insight))
        else {
            out.push(insight);
            continue;
        };
        if let Some(&at) = open.get(&key)
            && let Place::Time {
                start_ms: run_start,
                end_ms: run_end,
                rect,
            } = out[at].place
            && start_ms <= run_end
            && end_ms >= run_start
        {
            let run = &mut out[at];
            run.place = Place::Time {
                start_ms: run_start.min(start_ms),
                end_ms: run_end.max(end_ms),
                rect,
            };
            run.confidence = match (run.confidence, insight.confidence) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            continue;
        }
        open.insert(key, out.len());
        out.push(insight);
    }
    out
}

/// What makes two insights "the same" over time: the label, or the line's words (case and
/// spacing aside). Vectors and scores are per shot, never merged.
fn same_as(insight: &Insight) -> Option<String> {
    match &insight.value {
        InsightValue::Label(l) => Some(format!("label\0{}", l.name)),
        InsightValue::OcrLine(l) => {
            let words: Vec<String> = l.text.split_whitespace().map(str::to_lowercase).collect();
            (!words.is_empty()).then(|| format!("ocr\0{}", words.join(" ")))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aperture_core::{AssetId, UnixMillis, value};

    fn at(value: InsightValue, start_ms: u64, end_ms: u64, confidence: f32) -> Insight {
        Insight {
            asset: AssetId::new(),
            analyzer: "ocr".into(),
            analyzer_version: "1".into(),
            model: None,
            model_version: None,
            value,
            confidence: Some(confidence),
            language: None,
            place: Place::Time {
                start_ms,
                end_ms,
                rect: None,
            },
            created_at: UnixMillis(0),
        }
    }

    fn line(text: &str) -> InsightValue {
        value::OcrLine {
            text: text.into(),
            quad: [[0.0; 2]; 4],
            engine: "ppocr".into(),
        }
        .into()
    }

    #[test]
    fn what_persists_over_touching_shots_is_one_insight() {
        let merged = merge_runs(vec![
            at(line("BREAKING NEWS"), 0, 1000, 0.9),
            at(line("Weather"), 0, 1000, 0.8),
            at(line("breaking  news"), 1000, 2500, 0.95),
            at(line("BREAKING NEWS"), 2500, 4000, 0.7),
            // After a gap, the same words again are a new appearance.
            at(line("BREAKING NEWS"), 9000, 9500, 0.7),
        ]);
        let spans: Vec<(String, Place, Option<f32>)> = merged
            .iter()
            .map(|i| (i.value.text().unwrap().to_owned(), i.place, i.confidence))
            .collect();
        let time = |start_ms, end_ms| Place::Time {
            start_ms,
            end_ms,
            rect: None,
        };
        assert_eq!(
            spans,
            [
                ("BREAKING NEWS".into(), time(0, 4000), Some(0.95)),
                ("Weather".into(), time(0, 1000), Some(0.8)),
                ("BREAKING NEWS".into(), time(9000, 9500), Some(0.7)),
            ]
        );
    }
}
