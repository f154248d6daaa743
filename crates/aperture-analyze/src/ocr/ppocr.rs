//! PP-OCRv6 (small, or with the tiny detector) through ONNX Runtime: a DB text detector
//! finds the lines, a CTC recogniser reads each. Pre- and post-processing follow rapidocr 3.10.0, the reference
//! implementation of these models, with the detector's input capped at 960 pixels a side
//! (rapidocr's default scales the short side up to 736, four times slower for the same
//! accuracy on our evaluation set).

use std::path::Path;

use image::{DynamicImage, RgbImage};
use ort::value::TensorRef;

use super::Line;
use super::geometry::{self, RotatedRect};
use crate::Error;
use crate::onnx::Sessions;
use crate::resize::{self, Filter};

/// The detector's input: longest side at most this, both sides multiples of 32.
const DET_MAX_SIDE: u32 = 960;
/// Images larger than this are scaled down first (rapidocr's global limit).
const MAX_SIDE: u32 = 2000;
const DB_THRESHOLD: f32 = 0.3;
const BOX_THRESHOLD: f32 = 0.5;
const UNCLIP_RATIO: f32 = 1.6;
const MAX_CANDIDATES: usize = 1000;
const MIN_SIDE: f32 = 3.0;
/// The recogniser's input height, and the narrowest batch width (as rapidocr: 48 × 320).
const REC_HEIGHT: u32 = 48;
const REC_MIN_WIDTH: u32 = 320;
/// A line as wide as 60 times its height is cut there: the recogniser's context is finite.
const REC_MAX_RATIO: f32 = 60.0;
const REC_BATCH: usize = 6;
/// Lines read with less confidence are dropped (rapidocr's `text_score`).
const MIN_SCORE: f32 = 0.5;
/// Lines whose tops differ by less than this many detector pixels are one row.
const SAME_ROW: f32 = 10.0;

/// PP-OCRv6: a text detector and a recogniser, run on ONNX Runtime. The recogniser's calls
/// run side by side ([`crate::onnx::image_sessions`]); the detector has one session of every
/// core, since a call on a large photo holds about 85 MB: two at once took the hostile corpus
/// (`tests/it/hostile.rs`) to 612–623 MB, past its 600 MB bound (539 MB with one).
pub struct PpOcr {
    det: Sessions,
    rec: Sessions,
    /// Index 0 is the CTC blank; the last entry is a space.
    charset: Vec<String>,
}

impl PpOcr {
    /// Loads the detector `det` (PP-OCRv6's small or tiny one: both take and give the same
    /// shapes) and `rec.onnx` from the model folder; the recogniser's alphabet is in its ONNX
    /// metadata (`character`).
    pub fn load(library: &Path, folder: &Path, det: &Path) -> Result<Self, Error> {
        let det = crate::onnx::one_session(library, det)?;
        let rec = crate::onnx::image_sessions(library, &folder.join("rec.onnx"))?;
        let alphabet = {
            rec.with(|session| session.metadata().ok().and_then(|m| m.custom("character")))
                .ok_or_else(|| Error::Transient {
                    reason: format!(
                        "{} has no `character` metadata (the recogniser's alphabet)",
                        folder.join("rec.onnx").display()
                    ),
                })?
        };
        let mut charset = vec![String::new()];
        charset.extend(alphabet.lines().map(str::to_owned));
        charset.push(" ".into());
        Ok(Self { det, rec, charset })
    }

    /// Every line of text in the image, in reading order, with boxes in its pixels.
    pub fn read(&self, image: &DynamicImage) -> Result<Vec<Line>, Error> {
        self.run(image).map_err(|e| Error::Transient {
            reason: format!("text recognition failed: {e}"),
        })
    }

    fn run(&self, image: &DynamicImage) -> ort::Result<Vec<Line>> {
        let rgb = resize::rgb(image);
        let (w, h) = rgb.dimensions();
        if w < 4 || h < 4 {
            return Ok(Vec::new());
        }
        // The working image: at most MAX_SIDE; boxes are mapped back at the end.
        let scale = (MAX_SIDE as f32 / w.max(h) as f32).min(1.0);
        let work = if scale < 1.0 {
            std::borrow::Cow::Owned(resize::resize(
                &rgb,
                None,
                ((w as f32 * scale).round() as u32).max(1),
                ((h as f32 * scale).round() as u32).max(1),
                Filter::Bilinear,
            ))
        } else {
            rgb
        };
        let rects = self.detect(&work)?;
        let crops: Vec<RgbImage> = rects.iter().map(|r| geometry::crop(&work, r)).collect();
        let texts = self.recognise(&crops)?;
        let back = 1.0 / scale;
        let mut lines: Vec<Line> = rects
            .iter()
            .zip(texts)
            .filter(|(_, (text, score))| *score >= MIN_SCORE && !text.trim().is_empty())
            .map(|(rect, (text, score))| Line {
                text: text.trim().to_owned(),
                confidence: score,
                quad: rect.scaled(back, back).corners(),
            })
            .collect();
        reading_order(&mut lines, SAME_ROW * back);
        Ok(lines)
    }

    /// Text regions as rotated rectangles in `image`'s pixels.
    fn detect(&self, image: &RgbImage) -> ort::Result<Vec<RotatedRect>> {
        let (w, h) = image.dimensions();
        let ratio = (DET_MAX_SIDE as f32 / w.max(h) as f32).min(1.0);
        let side = |s: u32| (((s as f32 * ratio) / 32.0).round() as u32).max(1) * 32;
        let (dw, dh) = (side(w), side(h));
        let resized = resize::resize(image, None, dw, dh, Filter::Bilinear);
        let input = bgr_planes(&resized, dw as usize);
        let shape = [1usize, 3, dh as usize, dw as usize];
        let prob: Vec<f32> = self.det.with(|det| -> ort::Result<Vec<f32>> {
            let outputs = det.run(ort::inputs![TensorRef::from_array_view((
                shape,
                input.as_slice()
            ))?])?;
            let (_, data) = outputs[0].try_extract_tensor::<f32>()?;
            Ok(data.to_vec())
        })?;
        let (mw, mh) = (dw as usize, dh as usize);
        if prob.len() != mw * mh {
            return Err(ort::Error::new(format!(
                "the detector gave {} values for a {mw}×{mh} map",
                prob.len()
            )));
        }
        let binary: Vec<bool> = prob.iter().map(|&p| p > DB_THRESHOLD).collect();
        let mask = dilate(&binary, mw, mh);
        let (sx, sy) = (w as f32 / mw as f32, h as f32 / mh as f32);
        let mut rects = Vec::new();
        for region in geometry::regions(&mask, mw, mh, MAX_CANDIDATES) {
            let hull = geometry::convex_hull(&region);
            let Some(rect) = geometry::min_area_rect(&hull) else {
                continue;
            };
            if rect.len_v < MIN_SIDE {
                continue;
            }
            if mean_inside(&prob, mw, mh, &rect) < BOX_THRESHOLD {
                continue;
            }
            let d = rect.len_u * rect.len_v * UNCLIP_RATIO / (2.0 * (rect.len_u + rect.len_v));
            let grown = rect.grown(d);
            if grown.len_v < MIN_SIDE + 2.0 {
                continue;
            }
            rects.push(grown.scaled(sx, sy));
        }
        Ok(rects)
    }

    /// (text, confidence) of each crop, in batches of similar widths.
    fn recognise(&self, crops: &[RgbImage]) -> ort::Result<Vec<(String, f32)>> {
        let ratio = |c: &RgbImage| c.width() as f32 / c.height().max(1) as f32;
        let mut order: Vec<usize> = (0..crops.len()).collect();
        order.sort_by(|&a, &b| ratio(&crops[a]).total_cmp(&ratio(&crops[b])));
        let mut out = vec![(String::new(), 0.0); crops.len()];
        for batch in order.chunks(REC_BATCH) {
            let widest = batch
                .iter()
                .map(|&i| ratio(&crops[i]).min(REC_MAX_RATIO))
                .fold(REC_MIN_WIDTH as f32 / REC_HEIGHT as f32, f32::max);
            let width = (REC_HEIGHT as f32 * widest) as usize;
            let plane = REC_HEIGHT as usize * width;
            // Padding is 0 after normalisation, as in rapidocr.
            let mut input = vec![0f32; batch.len() * 3 * plane];
            for (slot, &i) in batch.iter().enumerate() {
                let crop = &crops[i];
                let w = ((REC_HEIGHT as f32 * ratio(crop)).ceil() as u32).clamp(1, width as u32);
                let line = resize::resize(crop, None, w, REC_HEIGHT, Filter::Bilinear);
                let planes = &mut input[slot * 3 * plane..(slot + 1) * 3 * plane];
                for (x, y, p) in line.enumerate_pixels() {
                    let at = y as usize * width + x as usize;
                    for c in 0..3 {
                        // BGR
                        planes[c * plane + at] = f32::from(p[2 - c]) / 127.5 - 1.0;
                    }
                }
            }
            let shape = [batch.len(), 3, REC_HEIGHT as usize, width];
            self.rec.with(|rec| -> ort::Result<()> {
                let outputs = rec.run(ort::inputs![TensorRef::from_array_view((
                    shape,
                    input.as_slice()
                ))?])?;
                let (dims, data) = outputs[0].try_extract_tensor::<f32>()?;
                let (steps, classes) = match dims[..] {
                    [n, t, c]
                        if n as usize == batch.len() && data.len() == (n * t * c) as usize =>
                    {
                        (t as usize, c as usize)
                    }
                    _ => {
                        return Err(ort::Error::new(format!(
                            "the recogniser gave a {dims:?} output for {} lines",
                            batch.len()
                        )));
                    }
                };
                for (slot, &i) in batch.iter().enumerate() {
                    let seq = &data[slot * steps * classes..(slot + 1) * steps * classes];
                    out[i] = self.ctc_decode(seq, steps, classes);
                }
                Ok(())
            })?;
        }
        Ok(out)
    }

    /// Greedy CTC: the best class per step, repeats merged, blanks dropped; the confidence
    /// is the mean probability of the characters kept.
    fn ctc_decode(&self, seq: &[f32], steps: usize, classes: usize) -> (String, f32) {
        let (mut text, mut sum, mut kept, mut previous) = (String::new(), 0f32, 0usize, 0usize);
        for t in 0..steps {
            let row = &seq[t * classes..(t + 1) * classes];
            let (best, p) =
                row.iter().enumerate().fold(
                    (0, f32::MIN),
                    |acc, (i, &p)| if p > acc.1 { (i, p) } else { acc },
                );
            if best != 0
                && best != previous
                && let Some(ch) = self.charset.get(best)
            {
                text.push_str(ch);
                sum += p;
                kept += 1;
            }
            previous = best;
        }
        let confidence = if kept == 0 { 0.0 } else { sum / kept as f32 };
        (text, confidence)
    }
}

/// RGB pixels as three BGR planes, `(x / 255 − 0.5) / 0.5`.
fn bgr_planes(image: &RgbImage, width: usize) -> Vec<f32> {
    let plane = width * image.height() as usize;
    let mut out = vec![0f32; 3 * plane];
    for (i, p) in image.pixels().enumerate() {
        for c in 0..3 {
            out[c * plane + i] = f32::from(p[2 - c]) / 127.5 - 1.0;
        }
    }
    out
}

/// A 2 × 2 dilation (OpenCV's, anchored at the centre: each pixel takes the maximum of
/// itself and its neighbours up and to the left).
fn dilate(mask: &[bool], w: usize, h: usize) -> Vec<bool> {
    let mut out = mask.to_vec();
    for y in 0..h {
        for x in 0..w {
            if !out[y * w + x] {
                out[y * w + x] = (x > 0 && mask[y * w + x - 1])
                    || (y > 0 && mask[(y - 1) * w + x])
                    || (x > 0 && y > 0 && mask[(y - 1) * w + x - 1]);
            }
        }
    }
    out
}

/// The mean probability inside a rectangle of the map: how sure the detector is of it.
fn mean_inside(prob: &[f32], w: usize, h: usize, rect: &RotatedRect) -> f32 {
    let (x0, y0, x1, y1) = rect.bounds();
    let (x0, y0) = (x0.floor().max(0.0) as usize, y0.floor().max(0.0) as usize);
    let (x1, y1) = (
        (x1.ceil() as usize).min(w.saturating_sub(1)),
        (y1.ceil() as usize).min(h.saturating_sub(1)),
    );
    let (mut sum, mut n) = (0f32, 0usize);
    for y in y0..=y1 {
        for x in x0..=x1 {
            if rect.contains(x as f32 + 0.5, y as f32 + 0.5) {
                sum += prob[y * w + x];
                n += 1;
            }
        }
    }
    if n == 0 { 0.0 } else { sum / n as f32 }
}

/// Top to bottom, and left to right within a row (lines whose tops are within `row` pixels).
fn reading_order(lines: &mut [Line], row: f32) {
    let top = |l: &Line| l.quad[0];
    lines.sort_by(|a, b| top(a).1.total_cmp(&top(b).1));
    // Insertion passes, as rapidocr: a line moves before its left neighbour in the same row.
    for i in 0..lines.len() {
        let mut j = i;
        while j > 0
            && (top(&lines[j]).1 - top(&lines[j - 1]).1).abs() < row
            && top(&lines[j]).0 < top(&lines[j - 1]).0
        {
            lines.swap(j, j - 1);
            j -= 1;
        }
    }
}
