//! Voice activity: which stretches of a stream of samples hold sound worth transcribing.
//!
//! An energy detector with an adaptive noise floor: a 30 ms frame is active when it is louder
//! than −50 dBFS and 9 dB above the floor. The floor starts at −60 dBFS, drops at once to a
//! quieter frame, rises towards louder inactive frames, and creeps up under active ones
//! (0.13 dB a second, so a minute of talk stays talk). Three active frames open a stretch
//! (with 200 ms before them), 600 ms without one close it (keeping 200 ms after the last). A
//! stretch longer than 30 s — one Whisper window — is cut at its quietest frame in its last
//! ten seconds. Silence and quiet hum never reach the recogniser. Loud noise and music do: the
//! recogniser's own no-speech and confidence guards drop them.

use std::collections::VecDeque;

/// A frame, in milliseconds.
const FRAME_MS: u64 = 30;
/// Frames quieter than this (dBFS) are never speech.
const QUIETEST: f32 = -50.0;
/// An active frame is this much louder than the noise floor (dB).
const ABOVE_FLOOR: f32 = 9.0;
/// Where the floor starts (dBFS).
const FIRST_FLOOR: f32 = -60.0;
/// How fast the floor rises under inactive frames, in dB per frame (1.7 dB a second) …
const FLOOR_RISE: f32 = 0.05;
/// … and under active ones (0.13 dB a second).
const FLOOR_CREEP: f32 = 0.004;
/// Active frames in a row that open a stretch.
const OPEN_AFTER: usize = 3;
/// Inactive frames in a row that close it (600 ms).
const CLOSE_AFTER: usize = 20;
/// Kept before the first active frame and after the last (ms).
const PAD_MS: u64 = 200;
/// The longest stretch: one Whisper window (ms).
pub(crate) const LONGEST_MS: u64 = 30_000;
/// A long stretch is cut in its last this many milliseconds.
const CUT_WITHIN_MS: u64 = 10_000;

/// A stretch of sound to transcribe.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// Where it starts, in milliseconds from the start of the stream.
    pub start_ms: u64,
    /// Where it ends.
    pub end_ms: u64,
    /// Its samples.
    pub samples: Vec<f32>,
}

/// An open stretch.
struct Open {
    /// Its first sample's position in the stream.
    start: u64,
    samples: Vec<f32>,
    /// Samples up to the end of the last active frame.
    last_active: usize,
    /// The quietest frame in the cutting zone: (dBFS, where it ends in `samples`).
    quietest: Option<(f32, usize)>,
}

/// The detector: push samples as they come, collect the stretches it closes.
pub struct Detector {
    rate: u64,
    frame: usize,
    pad: usize,
    partial: Vec<f32>,
    /// Samples consumed in whole frames.
    position: u64,
    floor: Option<f32>,
    active_run: usize,
    inactive_run: usize,
    /// The last samples while no stretch is open (the pad and a frame or three).
    before: VecDeque<f32>,
    open: Option<Open>,
}

impl Detector {
    /// A detector for samples at `rate` a second.
    pub fn new(rate: u32) -> Self {
        let rate = u64::from(rate.max(1000));
        Self {
            rate,
            frame: (rate * FRAME_MS / 1000) as usize,
            pad: (rate * PAD_MS / 1000) as usize,
            partial: Vec::new(),
            position: 0,
            floor: None,
            active_run: 0,
            inactive_run: 0,
            before: VecDeque::new(),
            open: None,
        }
    }

    fn ms(&self, samples: u64) -> u64 {
        samples * 1000 / self.rate
    }

    /// Reads the next samples; returns the stretches they closed.
    pub fn push(&mut self, samples: &[f32]) -> Vec<Window> {
        let mut closed = Vec::new();
        self.partial.extend_from_slice(samples);
        let whole = self.partial.len() / self.frame * self.frame;
        let frames: Vec<f32> = self.partial.drain(..whole).collect();
        for frame in frames.chunks_exact(self.frame) {
            self.frame_in(frame, &mut closed);
        }
        closed
    }

    /// Ends the stream: the stretch still open, if any.
    pub fn finish(mut self) -> Option<Window> {
        let rest = std::mem::take(&mut self.partial);
        if let Some(open) = self.open.as_mut() {
            open.samples.extend_from_slice(&rest);
        }
        let open = self.open.take()?;
        let keep = (open.last_active + self.pad).min(open.samples.len());
        Some(self.window(open.start, open.samples[..keep].to_vec()))
    }

    fn window(&self, start: u64, samples: Vec<f32>) -> Window {
        Window {
            start_ms: self.ms(start),
            end_ms: self.ms(start + samples.len() as u64),
            samples,
        }
    }

    fn frame_in(&mut self, frame: &[f32], closed: &mut Vec<Window>) {
        let energy = frame.iter().map(|s| s * s).sum::<f32>() / frame.len() as f32;
        let db = 10.0 * (energy + 1e-12).log10();
        let floor = *self.floor.get_or_insert(FIRST_FLOOR);
        let active = db > QUIETEST && db > floor + ABOVE_FLOOR;
        // Never under the first floor: one digitally silent frame must not make every
        // sound above the gate speech for minutes.
        self.floor = Some(if db < floor {
            db.max(FIRST_FLOOR)
        } else if active {
            floor + FLOOR_CREEP
        } else {
            floor + FLOOR_RISE
        });
        self.position += frame.len() as u64;
        if active {
            self.active_run += 1;
            self.inactive_run = 0;
        } else {
            self.active_run = 0;
            self.inactive_run += 1;
        }
        let longest = (self.rate * LONGEST_MS / 1000) as usize;
        let cut_zone = (self.rate * (LONGEST_MS - CUT_WITHIN_MS) / 1000) as usize;
        match self.open.as_mut() {
            None => {
                self.before.extend(frame);
                let keep = self.pad + OPEN_AFTER * self.frame;
                while self.before.len() > keep {
                    self.before.pop_front();
                }
                if self.active_run >= OPEN_AFTER {
                    let samples: Vec<f32> = self.before.drain(..).collect();
                    let start = self.position - samples.len() as u64;
                    self.open = Some(Open {
                        start,
                        last_active: samples.len(),
                        samples,
                        quietest: None,
                    });
                }
            }
            Some(open) => {
                // A window never outgrows Whisper's 30 s: cut before this frame would.
                if open.samples.len() + frame.len() > longest {
                    let cut = open.quietest.map_or(open.samples.len(), |(_, at)| at);
                    let rest = open.samples.split_off(cut);
                    let start = open.start;
                    let first = std::mem::replace(&mut open.samples, rest);
                    open.start = start + first.len() as u64;
                    open.last_active = open.last_active.saturating_sub(cut);
                    open.quietest = None;
                    closed.push(Window {
                        start_ms: start * 1000 / self.rate,
                        end_ms: (start + first.len() as u64) * 1000 / self.rate,
                        samples: first,
                    });
                }
                open.samples.extend_from_slice(frame);
                if active {
                    open.last_active = open.samples.len();
                }
                if open.samples.len() > cut_zone && open.quietest.is_none_or(|(q, _)| db <= q) {
                    open.quietest = Some((db, open.samples.len()));
                }
                if self.inactive_run >= CLOSE_AFTER {
                    let open = self.open.take().expect("open");
                    let keep = (open.last_active + self.pad).min(open.samples.len());
                    // What followed the stretch is the lead-in of the next one.
                    self.before.clear();
                    self.before
                        .extend(&open.samples[open.samples.len().saturating_sub(self.pad)..]);
                    closed.push(self.window(open.start, open.samples[..keep].to_vec()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: u32 = 16_000;

    fn tone(seconds: f64, amplitude: f32) -> Vec<f32> {
        (0..(seconds * f64::from(RATE)) as usize)
            .map(|i| amplitude * (i as f32 * 440.0 * std::f32::consts::TAU / RATE as f32).sin())
            .collect()
    }

    fn run(samples: &[f32]) -> Vec<(u64, u64)> {
        let mut d = Detector::new(RATE);
        let mut out: Vec<Window> = samples
            .chunks(RATE as usize)
            .flat_map(|c| d.push(c))
            .collect();
        out.extend(d.finish());
        for w in &out {
            // To the millisecond the times are kept at.
            assert!((w.samples.len() as u64).abs_diff((w.end_ms - w.start_ms) * 16) < 16);
            assert!(w.samples.len() <= 30 * RATE as usize, "{}", w.samples.len());
        }
        out.iter().map(|w| (w.start_ms, w.end_ms)).collect()
    }

    #[test]
    fn silence_and_quiet_hum_are_skipped() {
        assert!(run(&vec![0.0; 10 * RATE as usize]).is_empty());
        // White noise under −50 dBFS (a quiet room).
        let mut state = 1u32;
        let noise: Vec<f32> = (0..10 * RATE)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state as f32 / u32::MAX as f32 - 0.5) * 0.01
            })
            .collect();
        assert!(run(&noise).is_empty());
    }

    #[test]
    fn sound_between_silences_is_found_with_its_times() {
        let mut s = vec![0.0; RATE as usize];
        s.extend(tone(2.0, 0.3));
        s.extend(vec![0.0; 2 * RATE as usize]);
        s.extend(tone(1.0, 0.3));
        s.extend(vec![0.0; RATE as usize / 2]);
        let found = run(&s);
        assert_eq!(found.len(), 2, "{found:?}");
        // With 200 ms either side (a frame or so of slack).
        assert!(
            found[0].0.abs_diff(800) <= 40 && found[0].1.abs_diff(3200) <= 40,
            "{found:?}"
        );
        assert!(found[1].0.abs_diff(4800) <= 40, "{found:?}");
    }

    #[test]
    fn a_long_stretch_is_cut_into_windows_whisper_takes() {
        // A little silence, then 70 s of sound with a dip at 25 s.
        let mut s = vec![0.0; 1234];
        s.extend(tone(25.0, 0.3));
        s.extend(tone(0.3, 0.02));
        s.extend(tone(44.7, 0.3));
        let found = run(&s);
        assert!(found.len() >= 3, "{found:?}");
        assert!(found.iter().all(|(a, b)| b - a <= 30_000), "{found:?}");
        assert!(
            found[0].1.abs_diff(25_380) <= 300,
            "cut at the dip: {found:?}"
        );
        assert!(
            found.windows(2).all(|p| p[0].1 == p[1].0),
            "no gap: {found:?}"
        );
    }
}
