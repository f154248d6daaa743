//! Sound through `ffmpeg`: the first audio stream of any file ffmpeg reads (WAV, MP3, M4A/AAC,
//! OGG/Opus, FLAC, AMR, the sound of a video), as 16 kHz mono samples, streamed in chunks of
//! a second through a channel that holds two: an hour of sound never sits in memory.
//!
//! Other audio streams (a second language track, commentary) are left alone: the first is the
//! one players play.
//!
//! ```no_run
//! use std::path::Path;
//! use aperture_media::audio::{AudioOptions, samples};
//!
//! let mut seconds = 0;
//! for chunk in samples(Path::new("talk.mp3"), "talk.mp3", 0, None, &AudioOptions::default())? {
//!     seconds += chunk?.len() / 16_000;
//! }
//! # Ok::<(), aperture_media::video::DecodeError>(())
//! ```

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::Duration;

use crate::av::INPUT_GUARDS;
use crate::av::input_url;
use crate::video::{DecodeError, Progress, Stderr, cannot_start, ended, stop};

/// Samples a second.
pub const SAMPLE_RATE: u32 = 16_000;

/// Samples per chunk: one second.
const CHUNK: usize = SAMPLE_RATE as usize;

/// How sound is decoded.
#[derive(Debug, Clone)]
pub struct AudioOptions {
    /// The `ffmpeg` program, found on `PATH` unless a path is given. Default: `ffmpeg`.
    pub ffmpeg: PathBuf,
    /// The decoder is killed when no sample arrives for this long. Default: 60 seconds.
    pub stall_timeout: Duration,
}

impl Default for AudioOptions {
    fn default() -> Self {
        Self {
            ffmpeg: "ffmpeg".into(),
            stall_timeout: Duration::from_secs(60),
        }
    }
}

/// Chunks of samples as they are decoded (the last may be shorter); the decoder is stopped
/// when this is dropped.
pub struct Samples {
    child: Child,
    chunks: Receiver<io::Result<Vec<f32>>>,
    stderr: Option<Stderr>,
    file: String,
    stall_timeout: Duration,
    /// Samples received so far.
    read: u64,
    done: bool,
}

/// Starts decoding the first audio stream of `path` from `start_ms`, for `duration_ms` (to
/// the end when `None`), resampled to [`SAMPLE_RATE`] mono. `file` names the file in errors.
pub fn samples(
    path: &Path,
    file: &str,
    start_ms: u64,
    duration_ms: Option<u64>,
    opts: &AudioOptions,
) -> Result<Samples, DecodeError> {
    let mut cmd = Command::new(&opts.ffmpeg);
    cmd.args(["-nostdin", "-hide_banner", "-v", "error"])
        .args(INPUT_GUARDS);
    if start_ms > 0 {
        cmd.args(["-ss", &format!("{:.3}", start_ms as f64 / 1000.0)]);
    }
    cmd.arg("-i").arg(input_url(path));
    cmd.args(["-map", "0:a:0", "-vn", "-sn", "-dn", "-ac", "1"])
        .args(["-ar", &SAMPLE_RATE.to_string()]);
    if let Some(ms) = duration_ms {
        cmd.args(["-t", &format!("{:.3}", ms as f64 / 1000.0)]);
    }
    let mut child = cmd
        .args(["-c:a", "pcm_f32le", "-f", "f32le", "pipe:1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| cannot_start(file, source))?;
    let (Some(mut stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        stop(&mut child);
        return Err(DecodeError::Io {
            file: file.to_owned(),
            source: io::Error::other("ffmpeg's output pipes are missing"),
        });
    };
    let stderr = match Stderr::drain(stderr) {
        Ok(stderr) => stderr,
        Err(source) => {
            stop(&mut child);
            return Err(DecodeError::Io {
                file: file.to_owned(),
                source,
            });
        }
    };
    let (tx, rx) = mpsc::sync_channel(2);
    let reader = std::thread::Builder::new()
        .name("ffmpeg-audio".into())
        .spawn(move || {
            let mut bytes = vec![0u8; CHUNK * 4];
            loop {
                let mut filled = 0;
                while filled < bytes.len() {
                    match stdout.read(&mut bytes[filled..]) {
                        Ok(0) => break,
                        Ok(n) => filled += n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            return;
                        }
                    }
                }
                let chunk: Vec<f32> = bytes[..filled - filled % 4]
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                let last = filled < bytes.len();
                if (!chunk.is_empty() && tx.send(Ok(chunk)).is_err()) || last {
                    return;
                }
            }
        });
    if let Err(source) = reader {
        stop(&mut child);
        return Err(DecodeError::Io {
            file: file.to_owned(),
            source,
        });
    }
    Ok(Samples {
        child,
        chunks: rx,
        stderr: Some(stderr),
        file: file.to_owned(),
        stall_timeout: opts.stall_timeout,
        read: 0,
        done: false,
    })
}

impl Samples {
    fn fail(&mut self, error: DecodeError) -> Option<Result<Vec<f32>, DecodeError>> {
        self.done = true;
        stop(&mut self.child);
        Some(Err(error))
    }
}

impl Iterator for Samples {
    type Item = Result<Vec<f32>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.chunks.recv_timeout(self.stall_timeout) {
            Ok(Ok(chunk)) => {
                self.read += chunk.len() as u64;
                Some(Ok(chunk))
            }
            Ok(Err(source)) => {
                let error = DecodeError::Io {
                    file: self.file.clone(),
                    source,
                };
                self.fail(error)
            }
            Err(RecvTimeoutError::Timeout) => {
                let error = DecodeError::Stalled {
                    file: self.file.clone(),
                    after: self.stall_timeout,
                };
                self.fail(error)
            }
            Err(RecvTimeoutError::Disconnected) => {
                self.done = true;
                let progress = Progress {
                    count: self.read,
                    unit: "samples",
                    empty_is_fine: false,
                    nothing: "no sound could be decoded",
                    stream: "audio",
                };
                ended(&mut self.child, self.stderr.take(), &self.file, progress).map(Err)
            }
        }
    }
}

impl Drop for Samples {
    fn drop(&mut self) {
        if !self.done {
            stop(&mut self.child);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::ffmpeg;

    fn all(path: &Path, start_ms: u64, duration_ms: Option<u64>) -> Result<Vec<f32>, DecodeError> {
        let mut out = Vec::new();
        let name = path.file_name().unwrap().to_str().unwrap();
        for chunk in samples(path, name, start_ms, duration_ms, &AudioOptions::default())? {
            out.extend(chunk?);
        }
        Ok(out)
    }

    #[test]
    fn decodes_to_sixteen_kilohertz_mono_in_stretches() {
        let dir = tempfile::tempdir().unwrap();
        // 2.5 s of a 440 Hz tone at 44.1 kHz stereo, as MP3.
        let mp3 = ffmpeg(
            dir.path(),
            &[
                "-f",
                "lavfi",
                "-i",
                "sine=f=440:d=2.5",
                "-ac",
                "2",
                "-ar",
                "44100",
            ],
            "tone.mp3",
        );
        let whole = all(&mp3, 0, None).unwrap();
        // MP3 adds a little padding at the start.
        assert!((39_500..=41_500).contains(&whole.len()), "{}", whole.len());
        let peak = whole.iter().fold(0f32, |m, s| m.max(s.abs()));
        assert!((0.05..=1.0).contains(&peak), "{peak}");
        // A stretch: 1 s from 1 s.
        let part = all(&mp3, 1000, Some(1000)).unwrap();
        assert!(part.len().abs_diff(16_000) <= 200, "{}", part.len());
    }

    #[test]
    fn a_file_without_sound_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let silent = ffmpeg(
            dir.path(),
            &[
                "-f",
                "lavfi",
                "-i",
                "testsrc2=s=64x48:d=1",
                "-c:v",
                "libx264",
            ],
            "mute.mp4",
        );
        let err = all(&silent, 0, None).unwrap_err().to_string();
        assert!(
            err.contains("mute.mp4") && err.contains("no audio stream"),
            "{err}"
        );
    }
}
