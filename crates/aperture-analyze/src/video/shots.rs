//! Shot detection on small frames, one frame at a time, in bounded memory.
//!
//! - **Hard cuts**: the content score of consecutive frames (the mean change of hue,
//!   saturation and value, as PySceneDetect's content detector measures it) judged against
//!   its neighbours' (as its adaptive detector does), so a cut stands out of fast motion; a
//!   single flash frame (the frames around it alike) is not a cut.
//! - **Gradual transitions** (dissolves, fades through black or white): over a sliding window
//!   of half a second, a large change whose middle frames are *blends* of its ends: each
//!   middle frame is fitted as `α·first + (1−α)·last`, and a dissolve leaves a small residual
//!   with `α` between the ends, where camera motion leaves a large one and a cut leaves `α`
//!   at 0 or 1. Overlapping windows merge into one transition, trimmed to the frames that
//!   really blend.
//! - **Black and static segments**: runs of black frames of a second or more, and shots in
//!   which nothing moves for two seconds or more, are marked as such.
//!
//! Memory: a ring of the last few seconds of frames (at 160 pixels wide, about 45 KB each) and
//! five numbers per frame.

use std::collections::VecDeque;

use aperture_core::value::{ShotContent, Transition};
use image::RgbImage;

/// What the detector decides by; the defaults are tuned on the edits the tests build and on
/// the Big Buck Bunny trailer.
#[derive(Debug, Clone)]
pub struct Params {
    /// A cut's content score must reach this (0–255 scale).
    pub cut_min: f32,
    /// … and this many times the mean of the two frames on either side.
    pub cut_ratio: f32,
    /// A cut this strong needs only [`Params::cut_ratio_strong`] times its neighbours.
    pub cut_strong: f32,
    /// The neighbour ratio a strong cut needs.
    pub cut_ratio_strong: f32,
    /// Shots shorter than this many seconds are not cut off (a cut this close to the last is
    /// dropped).
    pub min_shot_s: f64,
    /// The window a gradual transition is looked for over, in seconds.
    pub window_s: f64,
    /// The change over a window that may be a gradual transition.
    pub gradual_min: f32,
    /// How far a middle frame may lie from the blend of the window's ends (as a share of the
    /// ends' difference).
    pub blend_residual: f32,
    /// The longest gradual transition, in seconds (also the ring of frames kept).
    pub max_gradual_s: f64,
    /// A frame whose mean value (0–255) is below this, with little spread, is black.
    pub black_luma: f32,
    /// A black run this long (seconds) is a segment of its own.
    pub black_segment_s: f64,
    /// A shot whose frames change less than this on average is static …
    pub static_max: f32,
    /// … when it lasts this many seconds.
    pub static_min_s: f64,
}

impl Default for Params {
    /// Content scores are on PySceneDetect's scale (its content detector cuts at 27, its
    /// adaptive one at 3 × the neighbours with at least 15); the blend test's numbers are
    /// shares of a window's change. Tuned on the tests' ffmpeg edits and the trailer.
    fn default() -> Self {
        Self {
            cut_min: 14.0,
            cut_ratio: 3.0,
            cut_strong: 30.0,
            cut_ratio_strong: 1.8,
            min_shot_s: 0.3,
            window_s: 0.5,
            gradual_min: 18.0,
            blend_residual: 0.3,
            max_gradual_s: 3.0,
            black_luma: 24.0,
            black_segment_s: 1.0,
            static_max: 0.6,
            static_min_s: 2.0,
        }
    }
}

/// A change from one shot to the next, in frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Boundary {
    /// Cut, fade or dissolve.
    pub kind: Transition,
    /// A cut's first new frame; a gradual transition's first blended frame.
    pub start: u64,
    /// A cut's first new frame; a gradual transition's last blended frame.
    pub end: u64,
}

impl Boundary {
    /// The frame the next shot is counted from: the cut, or a gradual transition's middle.
    pub fn at(&self) -> u64 {
        (self.start + self.end).div_ceil(2)
    }
}

/// One shot, in frames.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    /// First frame.
    pub start: u64,
    /// One past the last frame.
    pub end: u64,
    /// How it begins.
    pub transition: Transition,
    /// Black or static, if it is.
    pub content: Option<ShotContent>,
    /// The frame that stands for it: sharp, not black, not mid-transition (`None` for a black
    /// segment).
    pub keyframe: Option<u64>,
    /// How sharp the keyframe is (variance of the Laplacian of its luma).
    pub sharpness: f32,
}

/// What the detector found.
#[derive(Debug, Clone, Default)]
pub struct Detection {
    /// Frames read.
    pub frames: u64,
    /// Every transition, in order.
    pub boundaries: Vec<Boundary>,
    /// The shots they make, covering every frame.
    pub shots: Vec<Span>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Stats {
    /// Content score against the previous frame.
    diff: f32,
    /// Mean value, 0–255.
    luma: f32,
    /// Standard deviation of the value.
    spread: f32,
    /// The share of pixels that are not dark (value above 64): text on black is not black.
    lit: f32,
    /// Variance of the Laplacian of the value.
    sharpness: f32,
}

struct Ring {
    frames: VecDeque<(u64, Frame)>,
    capacity: usize,
}

/// A frame as the detector keeps it: HSV for scores, and RGB means of 8 × 8 blocks for the
/// blend test (block means blend exactly as pixels do, and the small motion of a moving
/// scene averages out of them).
struct Frame {
    rgb: Vec<f32>,
    hsv: Vec<[u8; 3]>,
}

const BLOCK: u32 = 8;

/// A detector for one video at `fps` frames a second; feed it every frame, in order.
pub struct Detector {
    params: Params,
    fps: f64,
    stats: Vec<Stats>,
    ring: Ring,
    size: Option<(u32, u32)>,
    cuts: Vec<u64>,
    /// Windows that passed the blend test, merged as they come: (first, last) frame.
    evidence: Option<(u64, u64)>,
    gradual: Vec<Boundary>,
}

impl Detector {
    /// A detector with `params` for frames coming at `fps`.
    pub fn new(fps: f64, params: Params) -> Self {
        let fps = if fps.is_finite() && fps > 0.0 {
            fps
        } else {
            25.0
        };
        let capacity = (params.max_gradual_s * fps).ceil() as usize + 4;
        Self {
            params,
            fps,
            stats: Vec::new(),
            ring: Ring {
                frames: VecDeque::with_capacity(capacity),
                capacity,
            },
            size: None,
            cuts: Vec::new(),
            evidence: None,
            gradual: Vec::new(),
        }
    }

    /// Frames per second, as given.
    pub fn fps(&self) -> f64 {
        self.fps
    }

    /// Reads the next frame. Frames of another size than the first are scaled to it.
    pub fn push(&mut self, image: &RgbImage) {
        let image = match self.size {
            None => {
                self.size = Some(image.dimensions());
                std::borrow::Cow::Borrowed(image)
            }
            Some((w, h)) if image.dimensions() != (w, h) => std::borrow::Cow::Owned(
                image::imageops::resize(image, w, h, image::imageops::FilterType::Triangle),
            ),
            Some(_) => std::borrow::Cow::Borrowed(image),
        };
        let index = self.stats.len() as u64;
        let frame = Frame::new(&image);
        let (luma, spread, lit) = frame.value_stats();
        let sharpness = laplacian_variance(&image);
        let diff = self
            .ring
            .last()
            .map_or(0.0, |(_, previous)| content_score(previous, &frame));
        self.stats.push(Stats {
            diff,
            luma,
            spread,
            lit,
            sharpness,
        });
        self.ring.push(index, frame);
        // A cut at frame c is judged once two frames after it have been seen.
        if index >= 2 {
            self.judge_cut(index - 2);
        }
        self.look_for_gradual(index);
    }

    /// Finishes: the last frames' cuts, the last gradual transition, and the shots.
    pub fn finish(mut self) -> Detection {
        let frames = self.stats.len() as u64;
        for c in frames.saturating_sub(2)..frames {
            self.judge_cut(c);
        }
        self.close_gradual();
        let boundaries = self.boundaries();
        let shots = self.shots(&boundaries);
        Detection {
            frames,
            boundaries,
            shots,
        }
    }

    fn frames_for(&self, seconds: f64) -> u64 {
        ((seconds * self.fps).round() as u64).max(1)
    }

    fn is_black(&self, i: u64) -> bool {
        let s = self.stats[i as usize];
        // Titles on black are not black: fewer than 0.3 % of the pixels may be lit.
        s.luma < self.params.black_luma && s.spread < self.params.black_luma && s.lit < 0.003
    }

    fn is_white(&self, i: u64) -> bool {
        let s = self.stats[i as usize];
        // A flash or a fade through white: bright and flat.
        s.luma > 235.0 && s.spread < 16.0
    }

    fn judge_cut(&mut self, c: u64) {
        if c == 0 {
            return;
        }
        let p = &self.params;
        let d = |i: u64| self.stats.get(i as usize).map(|s| s.diff);
        let score = self.stats[c as usize].diff;
        if score < p.cut_min {
            return;
        }
        let neighbours: Vec<f32> = [c.wrapping_sub(2), c - 1, c + 1, c + 2]
            .into_iter()
            .filter(|&i| i >= 1 && i != c)
            .filter_map(d)
            .collect();
        let around = if neighbours.is_empty() {
            0.0
        } else {
            neighbours.iter().sum::<f32>() / neighbours.len() as f32
        };
        let ratio = score / around.max(0.5);
        if ratio < p.cut_ratio && !(score >= p.cut_strong && ratio >= p.cut_ratio_strong) {
            return;
        }
        // A flash: the frames on either side of the changed one are alike.
        if let (Some(before), Some(after)) = (self.ring.get(c - 1), self.ring.get(c + 1))
            && self.ring.get(c).is_some()
            && content_score(before, after) < score * 0.3
            && self
                .stats
                .get(c as usize + 1)
                .is_some_and(|s| s.diff >= p.cut_min)
        {
            return;
        }
        // … or the return from one: this frame is like the one before the flash.
        if c >= 2
            && let (Some(before), Some(now)) = (self.ring.get(c - 2), self.ring.get(c))
            && content_score(before, now) < score * 0.3
        {
            return;
        }
        let min = self.frames_for(p.min_shot_s);
        if let Some(&last) = self.cuts.last()
            && c - last < min
        {
            // Too close to the last cut: keep the stronger of the two.
            if score > self.stats[last as usize].diff {
                self.cuts.pop();
            } else {
                return;
            }
        }
        self.cuts.push(c);
    }

    /// Tests the window ending at frame `i` for a blend, and closes the transition found so
    /// far once the windows stop passing.
    fn look_for_gradual(&mut self, i: u64) {
        let k = self.frames_for(self.params.window_s).max(4);
        if i < k {
            return;
        }
        let passed = self.window_blends(i - k, i);
        match (&mut self.evidence, passed) {
            (Some((_, last)), true) => *last = i,
            (None, true) => self.evidence = Some((i - k, i)),
            (Some((_, last)), false) if i > *last + k => self.close_gradual(),
            _ => {}
        }
        // A run of evidence longer than the ring is motion, not a transition.
        if let Some((first, last)) = self.evidence
            && last - first >= self.ring.capacity as u64 - 2
        {
            self.evidence = None;
        }
    }

    /// Whether the frames between `a` and `b` are blends of those two.
    fn window_blends(&self, a: u64, b: u64) -> bool {
        let (Some(first), Some(last)) = (self.ring.get(a), self.ring.get(b)) else {
            return false;
        };
        let total = content_score(first, last);
        if total < self.params.gradual_min {
            return false;
        }
        // A cut inside the window is a cut, not a blend; so is one frame carrying most of the
        // window's change. (Cuts are found in order: the first after `a` is enough.)
        let next_cut = self.cuts.partition_point(|&c| c <= a);
        if self.cuts.get(next_cut).is_some_and(|&c| c <= b)
            || self.stats[a as usize + 1..=b as usize]
                .iter()
                .any(|s| s.diff >= total * 0.6)
        {
            return false;
        }
        // Steady motion (a zoom, a pan) changes as much before the window as in it; a
        // transition adds change of its own.
        let k = b - a;
        if a > k {
            let mean = |from: u64, to: u64| {
                self.stats[from as usize..=to as usize]
                    .iter()
                    .map(|s| s.diff)
                    .sum::<f32>()
                    / (to - from + 1) as f32
            };
            if mean(a + 1, b) < 1.5 * mean(a - k, a) + 0.5 {
                return false;
            }
        }
        let mut alphas = Vec::new();
        for m in [a + (b - a) / 4, a + (b - a) / 2, a + 3 * (b - a) / 4] {
            let Some(middle) = self.ring.get(m) else {
                return false;
            };
            let (alpha, residual) = blend_fit(first, last, middle);
            if residual > self.params.blend_residual {
                return false;
            }
            alphas.push(alpha);
        }
        // The middle must be on its way from one end to the other, not at either.
        let mid = alphas[1];
        (0.12..=0.88).contains(&mid) && alphas[0] >= alphas[2] - 0.05
    }

    /// Turns the merged windows into one transition, trimmed to the frames that blend.
    fn close_gradual(&mut self) {
        let Some((first, last)) = self.evidence.take() else {
            return;
        };
        let (Some(a), Some(b)) = (self.ring.get(first), self.ring.get(last)) else {
            return;
        };
        let mut start = first;
        let mut end = last;
        for m in first..=last {
            if let Some(frame) = self.ring.get(m)
                && blend_fit(a, b, frame).0 < 0.95
            {
                start = m;
                break;
            }
        }
        for m in (first..=last).rev() {
            if let Some(frame) = self.ring.get(m)
                && blend_fit(a, b, frame).0 > 0.05
            {
                end = m;
                break;
            }
        }
        if end <= start {
            return;
        }
        let dark = (start..=end).any(|m| self.is_black(m) || self.is_white(m))
            || self.is_black(first)
            || self.is_black(last)
            || self.is_white(first)
            || self.is_white(last);
        self.gradual.push(Boundary {
            kind: if dark {
                Transition::Fade
            } else {
                Transition::Dissolve
            },
            start,
            end,
        });
    }

    /// Cuts and gradual transitions in order, a cut inside a gradual transition dropped, and
    /// runs of black between content counted as fades.
    fn boundaries(&self) -> Vec<Boundary> {
        let mut gradual = self.gradual.clone();
        gradual.extend(self.fades_through_black());
        gradual.sort_by_key(|b| b.start);
        // Overlapping findings of one transition are one.
        let mut all: Vec<Boundary> = Vec::with_capacity(gradual.len() + self.cuts.len());
        for g in gradual {
            match all.last_mut() {
                // Pieces of one transition (a dissolve into a fade) a window apart are one.
                Some(last) if g.start <= last.end + self.frames_for(self.params.window_s) => {
                    last.end = last.end.max(g.end);
                    if g.kind == Transition::Fade {
                        last.kind = Transition::Fade;
                    }
                }
                _ => all.push(g),
            }
        }
        // A fade in from black at the very start opens the first shot; it is no transition.
        if let Some(first) = all.first()
            && first.start > 0
            && (0..first.start).all(|i| self.is_black(i))
        {
            all.remove(0);
        }
        let gradual = all.clone();
        for &c in &self.cuts {
            let inside = gradual.iter().any(|g| c + 2 >= g.start && c <= g.end + 2);
            if !inside {
                all.push(Boundary {
                    kind: Transition::Cut,
                    start: c,
                    end: c,
                });
            }
        }
        all.sort_by_key(|b| b.start);
        // Black between two boundaries: a fade out, black, and a fade in make one fade
        // (unless the black is long enough to be a segment of its own).
        let long_black = self.frames_for(self.params.black_segment_s);
        let mut merged: Vec<Boundary> = Vec::new();
        for b in all {
            if let Some(prev) = merged.last_mut()
                && b.start > prev.end
                && b.start - prev.end < long_black
                && (prev.end + 1..b.start).all(|i| self.is_black(i) || self.is_white(i))
            {
                prev.end = b.end;
                prev.kind = Transition::Fade;
                continue;
            }
            merged.push(b);
        }
        merged
    }

    /// Short runs of black between pictures, with the fade out before and the fade
    /// in after them (the value falling into the run and rising out of it). Runs long enough
    /// to be segments of their own are left to [`Detector::shots`].
    fn fades_through_black(&self) -> Vec<Boundary> {
        let frames = self.stats.len() as u64;
        let long = self.frames_for(self.params.black_segment_s);
        let dark = |i: u64| self.is_black(i);
        let luma = |i: u64| self.stats[i as usize].luma;
        let mut out = Vec::new();
        let mut i = 0;
        while i < frames {
            if !dark(i) {
                i += 1;
                continue;
            }
            let run_start = i;
            while i < frames && dark(i) {
                i += 1;
            }
            let run_end = i; // one past
            if run_start == 0 || run_end == frames || run_end - run_start >= long {
                continue;
            }
            let max_ramp = self.frames_for(self.params.max_gradual_s / 2.0);
            let (mut start, mut end) = (run_start, run_end - 1);
            let towards_run = |from: u64, to: u64| {
                (luma(from) - luma(to)).abs() > 1.0
                    && (luma(from) - luma(run_start)).abs() > (luma(to) - luma(run_start)).abs()
            };
            while start > 1 && run_start - start < max_ramp && towards_run(start - 1, start) {
                start -= 1;
            }
            while end + 1 < frames && end + 1 - run_end < max_ramp && towards_run(end + 1, end) {
                end += 1;
            }
            // One black frame with no fade around it is a glitch, not a transition.
            if end > start {
                out.push(Boundary {
                    kind: Transition::Fade,
                    start,
                    end,
                });
            }
        }
        out
    }

    fn shots(&self, boundaries: &[Boundary]) -> Vec<Span> {
        let frames = self.stats.len() as u64;
        if frames == 0 {
            return Vec::new();
        }
        // Shot starts: 0, each boundary's middle, and the edges of long black runs.
        let mut starts: Vec<(u64, Transition)> = vec![(0, Transition::Start)];
        starts.extend(boundaries.iter().map(|b| (b.at(), b.kind)));
        let long_black = self.frames_for(self.params.black_segment_s);
        let mut run = None;
        for i in 0..=frames {
            let black = i < frames && self.is_black(i);
            match (run, black) {
                (None, true) => run = Some(i),
                (Some(s), false) => {
                    if i - s >= long_black {
                        starts.push((s, Transition::Fade));
                        if i < frames {
                            starts.push((i, Transition::Fade));
                        }
                    }
                    run = None;
                }
                _ => {}
            }
        }
        starts.sort_by_key(|s| s.0);
        starts.dedup_by(|later, earlier| {
            // Starts within a few frames of each other are one (a fade found both ways).
            later.0 < earlier.0 + 3
        });
        let mut shots = Vec::with_capacity(starts.len());
        for (n, &(start, transition)) in starts.iter().enumerate() {
            let end = starts.get(n + 1).map_or(frames, |s| s.0);
            if end <= start {
                continue;
            }
            shots.push(self.span(start, end, transition, boundaries));
        }
        shots
    }

    fn span(&self, start: u64, end: u64, transition: Transition, boundaries: &[Boundary]) -> Span {
        let len = end - start;
        // Only the transitions that touch this shot (boundaries are in order): a film's
        // thousand shots cost a thousand short scans, not a million.
        let first = boundaries.partition_point(|b| b.end + 2 < start);
        let near: Vec<Boundary> = boundaries[first..]
            .iter()
            .take_while(|b| b.start <= end + 2)
            .copied()
            .collect();
        let in_transition = |i: u64| near.iter().any(|b| i + 1 >= b.start && i <= b.end + 1);
        let black = (start..end).filter(|&i| self.is_black(i)).count() as u64;
        let content = if black * 10 >= len * 9 {
            Some(ShotContent::Black)
        } else {
            // Motion inside the shot, leaving out the transitions into and out of it.
            let calm: Vec<f32> = (start + 1..end)
                .filter(|&i| !in_transition(i))
                .map(|i| self.stats[i as usize].diff)
                .collect();
            let moving = calm.iter().sum::<f32>() / calm.len().max(1) as f32;
            (moving < self.params.static_max
                && calm.len() as u64 >= self.frames_for(self.params.static_min_s))
            .then_some(ShotContent::Static)
        };
        let mut keyframe = None;
        let mut sharpness = 0.0;
        if content != Some(ShotContent::Black) {
            // The sharpest frame away from the shot's edges and from any transition.
            let margin = len / 7;
            let candidates = || {
                (start + margin..end - margin)
                    .filter(|&i| !self.is_black(i) && !self.is_white(i) && !in_transition(i))
            };
            let best = candidates()
                .max_by(|&x, &y| {
                    self.stats[x as usize]
                        .sharpness
                        .total_cmp(&self.stats[y as usize].sharpness)
                })
                .or_else(|| (start..end).find(|&i| !self.is_black(i)));
            if let Some(best) = best {
                keyframe = Some(best);
                sharpness = self.stats[best as usize].sharpness;
            }
        }
        Span {
            start,
            end,
            transition,
            content,
            keyframe,
            sharpness,
        }
    }
}

impl Ring {
    fn push(&mut self, index: u64, frame: Frame) {
        if self.frames.len() == self.capacity {
            self.frames.pop_front();
        }
        self.frames.push_back((index, frame));
    }

    fn last(&self) -> Option<&(u64, Frame)> {
        self.frames.back()
    }

    fn get(&self, index: u64) -> Option<&Frame> {
        let first = self.frames.front()?.0;
        let at = index.checked_sub(first)? as usize;
        self.frames.get(at).map(|(_, f)| f)
    }
}

impl Frame {
    fn new(image: &RgbImage) -> Self {
        let hsv = image.pixels().map(|p| to_hsv(p[0], p[1], p[2])).collect();
        let (bw, bh) = (
            image.width().div_ceil(BLOCK) as usize,
            image.height().div_ceil(BLOCK) as usize,
        );
        let mut sums = vec![0f32; bw * bh * 3];
        let mut counts = vec![0f32; bw * bh];
        for (x, y, p) in image.enumerate_pixels() {
            let at = (y / BLOCK) as usize * bw + (x / BLOCK) as usize;
            counts[at] += 1.0;
            for c in 0..3 {
                sums[at * 3 + c] += f32::from(p[c]);
            }
        }
        for (at, n) in counts.iter().enumerate() {
            for c in 0..3 {
                sums[at * 3 + c] /= n.max(1.0);
            }
        }
        Self { rgb: sums, hsv }
    }

    fn value_stats(&self) -> (f32, f32, f32) {
        let n = self.hsv.len().max(1) as f32;
        let mean = self.hsv.iter().map(|p| f32::from(p[2])).sum::<f32>() / n;
        let lit = self.hsv.iter().filter(|p| p[2] > 64).count() as f32 / n;
        let var = self
            .hsv
            .iter()
            .map(|p| (f32::from(p[2]) - mean).powi(2))
            .sum::<f32>()
            / n;
        (mean, var.sqrt(), lit)
    }
}

/// HSV as OpenCV scales it for 8 bits (hue 0–179), which PySceneDetect's scores are in.
fn to_hsv(r: u8, g: u8, b: u8) -> [u8; 3] {
    let (r, g, b) = (i32::from(r), i32::from(g), i32::from(b));
    let v = r.max(g).max(b);
    let min = r.min(g).min(b);
    let delta = v - min;
    let s = if v == 0 { 0 } else { (255 * delta + v / 2) / v };
    let h = if delta == 0 {
        0
    } else if v == r {
        60 * (g - b) / delta
    } else if v == g {
        120 + 60 * (b - r) / delta
    } else {
        240 + 60 * (r - g) / delta
    };
    let h = if h < 0 { h + 360 } else { h } / 2;
    [h as u8, s as u8, v as u8]
}

/// PySceneDetect's content score: the mean absolute change of hue, saturation and value,
/// averaged over the three.
fn content_score(a: &Frame, b: &Frame) -> f32 {
    let mut sums = [0u64; 3];
    for (p, q) in a.hsv.iter().zip(&b.hsv) {
        for c in 0..3 {
            sums[c] += u64::from(p[c].abs_diff(q[c]));
        }
    }
    let n = a.hsv.len().max(1) as f32;
    sums.iter().map(|&s| s as f32 / n).sum::<f32>() / 3.0
}

/// Fits `middle ≈ α·a + (1−α)·b`: returns `α` and the mean residual as a share of the mean
/// difference between `a` and `b`.
fn blend_fit(a: &Frame, b: &Frame, middle: &Frame) -> (f32, f32) {
    let (mut num, mut den, mut spread) = (0f64, 0f64, 0f64);
    for ((&x, &y), &m) in a.rgb.iter().zip(&b.rgb).zip(&middle.rgb) {
        let d = f64::from(x - y);
        num += f64::from(m - y) * d;
        den += d * d;
        spread += d.abs();
    }
    if den <= f64::EPSILON {
        return (0.5, f32::INFINITY);
    }
    let alpha = (num / den).clamp(0.0, 1.0);
    let mut residual = 0f64;
    for ((&x, &y), &m) in a.rgb.iter().zip(&b.rgb).zip(&middle.rgb) {
        let blend = alpha * f64::from(x) + (1.0 - alpha) * f64::from(y);
        residual += (f64::from(m) - blend).abs();
    }
    (alpha as f32, (residual / spread.max(1.0)) as f32)
}

/// The variance of the 4-neighbour Laplacian of the luma: high for a sharp frame.
fn laplacian_variance(image: &RgbImage) -> f32 {
    let (w, h) = (image.width() as usize, image.height() as usize);
    if w < 3 || h < 3 {
        return 0.0;
    }
    let luma: Vec<f32> = image
        .pixels()
        .map(|p| 0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2]))
        .collect();
    let (mut sum, mut sq, mut n) = (0f64, 0f64, 0f64);
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let c = luma[y * w + x];
            let l = f64::from(
                luma[y * w + x - 1]
                    + luma[y * w + x + 1]
                    + luma[(y - 1) * w + x]
                    + luma[(y + 1) * w + x]
                    - 4.0 * c,
            );
            sum += l;
            sq += l * l;
            n += 1.0;
        }
    }
    let mean = sum / n;
    (sq / n - mean * mean) as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    /// A frame of a "scene": a textured picture that scene `seed` owns, shifted by `t`
    /// pixels (camera motion).
    fn scene(seed: u32, t: u32) -> RgbImage {
        let hash = |mut n: u32| {
            n = n.wrapping_mul(0x9e37_79b1) ^ (n >> 15);
            n = n.wrapping_mul(0x85eb_ca6b) ^ (n >> 13);
            (n >> 24) as u8
        };
        RgbImage::from_fn(64, 36, |x, y| {
            // Blocky texture (8 px tiles) that moves with `t`, plus fine grain.
            let (bx, by) = ((x + t) / 8, y / 8);
            let tile = |k: u32| hash(bx ^ (by << 8) ^ (seed << 16) ^ (k << 28));
            let grain = |k: u32| hash((x + t) ^ (y << 8) ^ (seed << 16) ^ (k << 28) ^ 0x5555);
            Rgb(std::array::from_fn(|c| {
                let c = c as u32 + 1;
                tile(c) / 2 + grain(c) / 8 + 40
            }))
        })
    }

    fn blend(a: &RgbImage, b: &RgbImage, alpha: f32) -> RgbImage {
        RgbImage::from_fn(a.width(), a.height(), |x, y| {
            let (p, q) = (a.get_pixel(x, y), b.get_pixel(x, y));
            Rgb(std::array::from_fn(|c| {
                (alpha * f32::from(p[c]) + (1.0 - alpha) * f32::from(q[c])).round() as u8
            }))
        })
    }

    fn black() -> RgbImage {
        RgbImage::from_pixel(64, 36, Rgb([4, 4, 4]))
    }

    fn detect(frames: &[RgbImage]) -> Detection {
        let mut d = Detector::new(25.0, Params::default());
        for f in frames {
            d.push(f);
        }
        d.finish()
    }

    #[test]
    fn finds_hard_cuts_in_moving_scenes_and_ignores_a_flash() {
        let mut frames = Vec::new();
        for s in 0..4 {
            for t in 0..40 {
                frames.push(scene(s, t));
            }
        }
        // A one-frame flash in the middle of the last scene.
        frames[140] = RgbImage::from_pixel(64, 36, Rgb([250, 250, 250]));
        let found = detect(&frames);
        let cuts: Vec<u64> = found.boundaries.iter().map(|b| b.start).collect();
        assert_eq!(cuts, [40, 80, 120], "{found:?}");
        assert!(found.boundaries.iter().all(|b| b.kind == Transition::Cut));
        assert_eq!(found.shots.len(), 4);
        assert_eq!(found.shots[0].transition, Transition::Start);
        for shot in &found.shots {
            let k = shot.keyframe.unwrap();
            assert!(k >= shot.start && k < shot.end && k != 140);
        }
    }

    #[test]
    fn finds_a_dissolve_and_a_fade_through_black() {
        let (a, b, c) = (scene(1, 0), scene(2, 0), scene(3, 0));
        let mut frames = vec![a.clone(); 40];
        // A 20-frame dissolve from a to b, frames 40..60.
        for i in 0..20 {
            frames.push(blend(&a, &b, 1.0 - (i as f32 + 1.0) / 21.0));
        }
        frames.extend(std::iter::repeat_n(b.clone(), 40));
        // Fade out over 10 frames (100..110), 5 black (110..115), fade in over 10 (115..125).
        for i in 0..10 {
            frames.push(blend(&b, &black(), 1.0 - (i as f32 + 1.0) / 11.0));
        }
        frames.extend(std::iter::repeat_n(black(), 5));
        for i in 0..10 {
            frames.push(blend(&c, &black(), (i as f32 + 1.0) / 11.0));
        }
        frames.extend(std::iter::repeat_n(c, 40));
        let found = detect(&frames);
        assert_eq!(found.boundaries.len(), 2, "{:?}", found.boundaries);
        let (dissolve, fade) = (found.boundaries[0], found.boundaries[1]);
        assert_eq!(dissolve.kind, Transition::Dissolve);
        assert!(
            dissolve.start.abs_diff(40) <= 3 && dissolve.end.abs_diff(59) <= 3,
            "{dissolve:?}"
        );
        assert_eq!(fade.kind, Transition::Fade);
        assert!(
            fade.start.abs_diff(100) <= 3 && fade.end.abs_diff(124) <= 3,
            "{fade:?}"
        );
        assert_eq!(found.shots.len(), 3);
        assert_eq!(found.shots[1].transition, Transition::Dissolve);
        // Still pictures: each shot is static, and no keyframe sits in a transition.
        for shot in &found.shots {
            let k = shot.keyframe.unwrap();
            assert!(
                found
                    .boundaries
                    .iter()
                    .all(|b| k + 1 < b.start || k > b.end + 1)
            );
        }
    }

    #[test]
    fn a_long_black_stretch_is_a_segment_and_a_pan_is_not_a_transition() {
        let mut frames = Vec::new();
        // A slow pan (1 px a frame) over 3 s: change, but no blend.
        for t in 0..75 {
            frames.push(scene(5, t));
        }
        frames.extend(std::iter::repeat_n(black(), 40));
        frames.extend(std::iter::repeat_n(scene(6, 0), 60));
        let found = detect(&frames);
        let kinds: Vec<_> = found.shots.iter().map(|s| (s.start, s.content)).collect();
        assert_eq!(
            kinds,
            [
                (0, None),
                (75, Some(ShotContent::Black)),
                (115, Some(ShotContent::Static))
            ],
            "{:?}",
            found.boundaries
        );
        assert_eq!(found.shots[1].keyframe, None);
    }

    #[test]
    fn hsv_matches_opencv() {
        assert_eq!(to_hsv(255, 0, 0), [0, 255, 255]);
        assert_eq!(to_hsv(0, 255, 0), [60, 255, 255]);
        assert_eq!(to_hsv(0, 0, 255), [120, 255, 255]);
        assert_eq!(to_hsv(128, 128, 128), [0, 0, 128]);
    }

    #[test]
    fn blends_are_told_from_their_ends() {
        let (a, b) = (Frame::new(&scene(1, 0)), Frame::new(&scene(2, 0)));
        let mid = Frame::new(&blend(&scene(1, 0), &scene(2, 0), 0.3));
        let (alpha, residual) = blend_fit(&a, &b, &mid);
        assert!(
            (alpha - 0.3).abs() < 0.02 && residual < 0.05,
            "{alpha} {residual}"
        );
        let moved = Frame::new(&scene(1, 24));
        assert!(blend_fit(&a, &b, &moved).1 > 0.3);
    }
}
