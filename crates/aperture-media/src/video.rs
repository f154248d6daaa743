//! Video frames through `ffmpeg`: decoded, turned upright (ffmpeg applies the display matrix),
//! sampled at a constant rate, scaled down and streamed through bounded memory.
//!
//! `ffmpeg` runs as a subprocess writing PPM frames to a pipe: two frames wait in the pipe's
//! channel at most, whatever the video's length or resolution, and a decoder that stalls is
//! killed. (A subprocess rather than `ffmpeg-next` against the system's libav*: the pipe costs
//! little at the small sizes shot detection reads, a crash in a decoder cannot take the worker
//! down, and the build needs no libav headers.)
//!
//! ```no_run
//! use std::path::Path;
//! use aperture_media::video::{DecodeOptions, frames};
//!
//! let opts = DecodeOptions::default();
//! for frame in frames(Path::new("film.mp4"), "film.mp4", 25.0, &opts)? {
//!     let frame = frame?;
//!     println!("{} ms: {}×{}", frame.time_ms, frame.image.width(), frame.image.height());
//! }
//! # Ok::<(), aperture_media::video::DecodeError>(())
//! ```

use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use image::RgbImage;

use crate::av::{INPUT_GUARDS, input_url, strip_address};

/// The largest frame, in pixels, a decoder may be asked to make: 8K is 33 million. A header
/// that claims more (16,000 × 16,000) is refused before anything is allocated for it.
pub const MAX_PIXELS: u64 = 40_000_000;

/// The most of ffmpeg's error output kept to explain a failure.
const MAX_STDERR: usize = 64 * 1024;

/// How frames are decoded.
#[derive(Debug, Clone)]
pub struct DecodeOptions {
    /// The `ffmpeg` program, found on `PATH` unless a path is given. Default: `ffmpeg`.
    pub ffmpeg: PathBuf,
    /// Decoder threads. Default: 2.
    pub threads: usize,
    /// The decoder is killed when no frame arrives for this long (a hung or looping decoder).
    /// Default: 60 seconds.
    pub stall_timeout: Duration,
    /// Frames larger than this many pixels are refused by the decoder. Default: [`MAX_PIXELS`].
    pub max_pixels: u64,
    /// Frames are scaled down to fit a box this wide and three quarters as high, the aspect
    /// kept (square pixels). Default: 160 (160 × 90 for 16:9).
    pub width: u32,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            ffmpeg: PathBuf::from("ffmpeg"),
            threads: 2,
            stall_timeout: Duration::from_secs(60),
            max_pixels: MAX_PIXELS,
            width: 160,
        }
    }
}

/// Why frames could not be read. Every message names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// `ffmpeg` is not installed.
    #[error("cannot decode {file}: ffmpeg not found (apt-get install ffmpeg)")]
    NoFfmpeg {
        /// The file's name.
        file: String,
    },
    /// The decoder produced no frame for [`DecodeOptions::stall_timeout`] and was killed.
    #[error("decoding {file} stalled: no frame for {} s, so ffmpeg was stopped", after.as_secs_f64())]
    Stalled {
        /// The file's name.
        file: String,
        /// How long it waited.
        after: Duration,
    },
    /// Encoding a preview ran past [`PreviewOptions::timeout`] and was stopped.
    #[error("encoding a preview of {file} ran past {} s, so ffmpeg was stopped", after.as_secs())]
    TimedOut {
        /// The file's name.
        file: String,
        /// The limit.
        after: Duration,
    },
    /// The decoder failed, or wrote something that is not a frame.
    #[error("cannot decode {file}: {message}")]
    Failed {
        /// The file's name.
        file: String,
        /// What ffmpeg said (its first error line), or what was wrong with its output.
        message: String,
    },
    /// Running ffmpeg failed (no process could be started, a pipe broke).
    #[error("cannot run ffmpeg on {file}: {source}")]
    Io {
        /// The file's name.
        file: String,
        /// The OS error.
        source: io::Error,
    },
}

/// One decoded frame.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Its position among the sampled frames, from 0.
    pub index: u64,
    /// When it is shown, in milliseconds from the start (`index / fps`).
    pub time_ms: u64,
    /// The picture, upright and scaled.
    pub image: RgbImage,
}

/// Frames of a video as they are decoded; the decoder is stopped when this is dropped.
pub struct Frames {
    child: Child,
    frames: Receiver<Result<RgbImage, DecodeError>>,
    stderr: Option<Stderr>,
    file: String,
    fps: f64,
    /// The first frame's number.
    first: u64,
    /// Frames received so far.
    next: u64,
    stall_timeout: Duration,
    done: bool,
}

/// Starts decoding the first video stream of `path` at `fps` frames a second (a constant rate:
/// frames are repeated or dropped as the source's timing says, so variable frame rate phone
/// video comes out evenly spaced). `file` names the file in errors.
pub fn frames(
    path: &Path,
    file: &str,
    fps: f64,
    opts: &DecodeOptions,
) -> Result<Frames, DecodeError> {
    frames_from(path, file, fps, 0, None, opts)
}

/// Like [`frames`], from frame `first` (counted at `fps` from the start, reached by seeking)
/// for at most `count` frames; frames are numbered and timed from the start of the video.
/// A stretch that starts past the end of the video has no frames, and that is no error.
pub fn frames_from(
    path: &Path,
    file: &str,
    fps: f64,
    first: u64,
    count: Option<u64>,
    opts: &DecodeOptions,
) -> Result<Frames, DecodeError> {
    let fps = if fps.is_finite() && fps > 0.0 {
        fps
    } else {
        25.0
    };
    // Square pixels, then into the box: a tall or anamorphic stream stays small.
    let (w, h) = (opts.width.max(4), (opts.width.max(4) * 3 / 4));
    let filter = format!(
        "fps={fps}:start_time=0,scale=w=iw*sar:h=ih:flags=fast_bilinear,setsar=1,\
         scale=w=min({w}\\,iw):h=min({h}\\,ih):force_original_aspect_ratio=decrease:flags=fast_bilinear"
    );
    // Deblocking is skipped: it costs a quarter of H.264 decoding and changes nothing at the
    // size frames are read at. (`frame_at`, whose frames are kept, decodes in full.)
    let seek = format!("{:.6}", first as f64 / fps);
    let mut input: Vec<&str> = vec!["-skip_loop_filter", "all"];
    if first > 0 {
        input.extend(["-ss", &seek]);
    }
    let limit = count.map(|n| n.to_string());
    let output: Option<Vec<&str>> = limit.as_deref().map(|n| vec!["-frames:v", n]);
    let (child, frames, stderr) = spawn(path, file, opts, &input, &filter, output.as_deref())?;
    Ok(Frames {
        child,
        frames,
        stderr: Some(stderr),
        file: file.to_owned(),
        fps,
        first,
        next: 0,
        stall_timeout: opts.stall_timeout,
        done: false,
    })
}

/// The frame shown at `time_ms`, upright, scaled to fit `max_side` (never enlarged), with
/// square pixels.
pub fn frame_at(
    path: &Path,
    file: &str,
    time_ms: u64,
    max_side: u32,
    opts: &DecodeOptions,
) -> Result<RgbImage, DecodeError> {
    let side = max_side.max(2);
    let filter = format!(
        "scale=w=iw*sar:h=ih,setsar=1,\
         scale=w=min({side}\\,iw):h=min({side}\\,ih):force_original_aspect_ratio=decrease:flags=area"
    );
    let seek = format!("{:.3}", time_ms as f64 / 1000.0);
    let (mut child, frames, stderr) = spawn(
        path,
        file,
        opts,
        &["-ss", &seek],
        &filter,
        Some(&["-frames:v", "1"]),
    )?;
    let got = frames.recv_timeout(opts.stall_timeout);
    stop(&mut child);
    let said = stderr.finish(path, file);
    match got {
        Ok(frame) => frame,
        Err(RecvTimeoutError::Timeout) => Err(DecodeError::Stalled {
            file: file.to_owned(),
            after: opts.stall_timeout,
        }),
        Err(RecvTimeoutError::Disconnected) => Err(DecodeError::Failed {
            file: file.to_owned(),
            message: said.unwrap_or_else(|| {
                format!("no video frame at {}", aperture_core::human::clock(time_ms))
            }),
        }),
    }
}

impl Frames {
    /// The constant rate frames come at.
    pub fn fps(&self) -> f64 {
        self.fps
    }

    fn fail(&mut self, error: DecodeError) -> Option<Result<Frame, DecodeError>> {
        self.done = true;
        stop(&mut self.child);
        Some(Err(error))
    }
}

impl Iterator for Frames {
    type Item = Result<Frame, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.frames.recv_timeout(self.stall_timeout) {
            Ok(Ok(image)) => {
                let index = self.first + self.next;
                self.next += 1;
                Some(Ok(Frame {
                    index,
                    time_ms: (index as f64 * 1000.0 / self.fps).round() as u64,
                    image,
                }))
            }
            Ok(Err(e)) => self.fail(e),
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
                    count: self.next,
                    unit: "frames",
                    // A stretch past the end has no frames; a whole video must have some.
                    empty_is_fine: self.first > 0,
                    nothing: "no video frame could be decoded",
                    stream: "video",
                };
                ended(&mut self.child, self.stderr.take(), &self.file, progress).map(Err)
            }
        }
    }
}

impl Drop for Frames {
    fn drop(&mut self) {
        if !self.done {
            stop(&mut self.child);
        }
    }
}

type Spawned = (Child, Receiver<Result<RgbImage, DecodeError>>, Stderr);

/// Starts ffmpeg on the first video stream of `path` with `filter`, PPM frames on stdout, and
/// threads that pass frames through a two-frame channel and keep the start of stderr.
fn spawn(
    path: &Path,
    file: &str,
    opts: &DecodeOptions,
    input_args: &[&str],
    filter: &str,
    output_args: Option<&[&str]>,
) -> Result<Spawned, DecodeError> {
    let threads = opts.threads.max(1).to_string();
    let mut child = Command::new(&opts.ffmpeg)
        .args([
            "-nostdin",
            "-hide_banner",
            "-v",
            "error",
            "-threads",
            &threads,
        ])
        .args(INPUT_GUARDS)
        .args(["-max_pixels", &opts.max_pixels.to_string()])
        .args(input_args)
        .arg("-i")
        .arg(input_url(path))
        .args(["-map", "0:v:0", "-an", "-sn", "-dn", "-vf", filter])
        .args(output_args.unwrap_or_default())
        .args(["-f", "image2pipe", "-c:v", "ppm", "pipe:1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| cannot_start(file, source))?;
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        stop(&mut child);
        return Err(DecodeError::Io {
            file: file.to_owned(),
            source: io::Error::other("ffmpeg's output pipes are missing"),
        });
    };
    let (tx, rx) = mpsc::sync_channel(2);
    let started = std::thread::Builder::new()
        .name("ffmpeg-frames".into())
        .spawn({
            let file = file.to_owned();
            move || read_frames(stdout, &file, &tx)
        })
        .and_then(|_| Stderr::drain(stderr));
    match started {
        Ok(stderr) => Ok((child, rx, stderr)),
        Err(source) => {
            stop(&mut child);
            Err(DecodeError::Io {
                file: file.to_owned(),
                source,
            })
        }
    }
}

/// ffmpeg's error output, read to its end on a thread (so ffmpeg never blocks writing it),
/// the first [`MAX_STDERR`] bytes kept.
pub(crate) struct Stderr(JoinHandle<Vec<u8>>);

impl Stderr {
    pub(crate) fn drain(mut pipe: impl Read + Send + 'static) -> io::Result<Self> {
        std::thread::Builder::new()
            .name("ffmpeg-stderr".into())
            .spawn(move || {
                let (mut kept, mut buf) = (Vec::new(), [0u8; 4096]);
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let room = MAX_STDERR.saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                }
                kept
            })
            .map(Stderr)
    }

    /// Waits for the end of the output (call once ffmpeg has exited or been killed) and
    /// returns its first line, with addresses and the file's URL replaced by its name.
    pub(crate) fn finish(self, path: &Path, file: &str) -> Option<String> {
        let kept = self.0.join().ok()?;
        let text = String::from_utf8_lossy(&kept);
        let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
        let line = if path.as_os_str().is_empty() {
            line.to_owned()
        } else {
            line.replace(&*input_url(path).to_string_lossy(), file)
        };
        Some(strip_address(&line))
    }
}

/// How a preview is encoded.
#[derive(Debug, Clone)]
pub struct PreviewOptions {
    /// The program, the threads (encoding too) and the largest frame accepted.
    pub decode: DecodeOptions,
    /// Lines of the preview at most. Default: 720.
    pub max_lines: u32,
    /// Never more than this much of the video is encoded. Default: 6 hours.
    pub max_duration: Duration,
    /// Encoding is stopped when it has run this long. Default: 4 hours.
    pub timeout: Duration,
}

impl Default for PreviewOptions {
    fn default() -> Self {
        Self {
            decode: DecodeOptions::default(),
            max_lines: 720,
            max_duration: Duration::from_secs(6 * 3600),
            timeout: Duration::from_secs(4 * 3600),
        }
    }
}

/// Encodes the first video stream and the first audio stream of `path` as an H.264/AAC MP4
/// that browsers play, at most [`PreviewOptions::max_lines`] lines (an even number, square
/// pixels), its index at the front so playback starts before the download ends; writes it to
/// `out`. `file` names the file in errors.
pub fn encode_preview(
    path: &Path,
    file: &str,
    out: &Path,
    opts: &PreviewOptions,
) -> Result<(), DecodeError> {
    let threads = opts.decode.threads.max(1).to_string();
    let lines = opts.max_lines.max(2);
    let filter = format!(
        "scale=w=iw*sar:h=ih,setsar=1,\
         scale=w=-2:h=trunc(min({lines}\\,ih)/2)*2:flags=bicubic,format=yuv420p"
    );
    let mut child = Command::new(&opts.decode.ffmpeg)
        .args(["-nostdin", "-hide_banner", "-v", "error", "-y"])
        .args(["-threads", &threads])
        .args(INPUT_GUARDS)
        .args(["-max_pixels", &opts.decode.max_pixels.to_string()])
        .arg("-i")
        .arg(input_url(path))
        .args(["-map", "0:v:0", "-map", "0:a:0?", "-vf", &filter])
        .args(["-t", &opts.max_duration.as_secs().to_string()])
        .args(["-c:v", "libx264", "-preset", "veryfast", "-crf", "26"])
        .args([
            "-threads", &threads, "-c:a", "aac", "-b:a", "128k", "-ac", "2",
        ])
        .args(["-movflags", "+faststart", "-f", "mp4"])
        .arg(out)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| cannot_start(file, source))?;
    let stderr = match child.stderr.take().map(Stderr::drain) {
        Some(Ok(stderr)) => stderr,
        other => {
            stop(&mut child);
            return Err(DecodeError::Io {
                file: file.to_owned(),
                source: match other {
                    Some(Err(e)) => e,
                    _ => io::Error::other("ffmpeg's error pipe is missing"),
                },
            });
        }
    };
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > opts.timeout => {
                stop(&mut child);
                let _ = stderr.finish(path, file);
                return Err(DecodeError::TimedOut {
                    file: file.to_owned(),
                    after: opts.timeout,
                });
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(100)),
            Err(source) => {
                stop(&mut child);
                return Err(DecodeError::Io {
                    file: file.to_owned(),
                    source,
                });
            }
        }
    };
    let said = stderr.finish(path, file);
    if status.success() {
        Ok(())
    } else {
        Err(DecodeError::Failed {
            file: file.to_owned(),
            message: said.unwrap_or_else(|| format!("ffmpeg failed ({status})")),
        })
    }
}

/// Reads PPM frames until the pipe ends or the receiver goes away.
fn read_frames(stdout: impl Read, file: &str, tx: &SyncSender<Result<RgbImage, DecodeError>>) {
    let mut reader = BufReader::with_capacity(1 << 16, stdout);
    loop {
        let frame = match read_ppm(&mut reader) {
            Ok(Some(frame)) => Ok(frame),
            Ok(None) => return,
            Err(message) => Err(DecodeError::Failed {
                file: file.to_owned(),
                message,
            }),
        };
        let failed = frame.is_err();
        if tx.send(frame).is_err() || failed {
            return;
        }
    }
}

/// One binary PPM (`P6 W H 255`, then W × H × 3 bytes); `None` at a clean end of the stream.
fn read_ppm(reader: &mut impl BufRead) -> Result<Option<RgbImage>, String> {
    if reader.fill_buf().map_err(|e| e.to_string())?.is_empty() {
        return Ok(None);
    }
    let mut fields = [0u32; 3];
    let magic = token(reader)?;
    if magic != "P6" {
        return Err(format!("ffmpeg wrote {magic:?}, not a PPM frame"));
    }
    for field in &mut fields {
        *field = token(reader)?
            .parse()
            .map_err(|_| "a PPM frame header that is not a number".to_owned())?;
    }
    let [width, height, max] = fields;
    let bytes = u64::from(width) * u64::from(height) * 3;
    if max != 255 || width == 0 || height == 0 || bytes > MAX_PIXELS * 3 {
        return Err(format!(
            "an unexpected frame of {width}×{height} (max {max})"
        ));
    }
    let mut data = vec![0; bytes as usize];
    reader
        .read_exact(&mut data)
        .map_err(|e| format!("a frame was cut short: {e}"))?;
    Ok(RgbImage::from_raw(width, height, data))
}

/// The next whitespace-separated header field, and the one whitespace byte after it.
fn token(reader: &mut impl BufRead) -> Result<String, String> {
    let mut field = Vec::new();
    let mut byte = [0u8];
    loop {
        if reader.read(&mut byte).map_err(|e| e.to_string())? == 0 {
            return Err("a frame header was cut short".into());
        }
        if byte[0].is_ascii_whitespace() {
            if field.is_empty() {
                continue;
            }
            return String::from_utf8(field).map_err(|_| "a frame header that is not text".into());
        }
        if field.len() > 16 {
            return Err("a frame header field is too long".into());
        }
        field.push(byte[0]);
    }
}

/// Why ffmpeg did not start: not installed, or another OS error.
pub(crate) fn cannot_start(file: &str, source: io::Error) -> DecodeError {
    match source.kind() {
        io::ErrorKind::NotFound => DecodeError::NoFfmpeg {
            file: file.to_owned(),
        },
        _ => DecodeError::Io {
            file: file.to_owned(),
            source,
        },
    }
}

/// How far a decoder got, for [`ended`].
pub(crate) struct Progress {
    /// Frames or seconds delivered.
    pub count: u64,
    /// What `count` counts.
    pub unit: &'static str,
    /// Whether nothing at all is a normal end (a stretch past the end of the file).
    pub empty_is_fine: bool,
    /// What to say when nothing was decoded and ffmpeg said nothing.
    pub nothing: &'static str,
    /// The kind of stream read: `video`, `audio`.
    pub stream: &'static str,
}

/// The end of a decoder's output: its exit says whether that was the end of the file (`None`)
/// or a failure. A crash (a signal) fails; a non-zero exit after some output is damage late
/// in the file, and what was decoded stands; a non-zero exit before any is the file's fault,
/// said in ffmpeg's words (with "no audio stream" and the like made plain).
pub(crate) fn ended(
    child: &mut Child,
    stderr: Option<Stderr>,
    file: &str,
    progress: Progress,
) -> Option<DecodeError> {
    let status = child.wait();
    let said = stderr.and_then(|e| e.finish(Path::new(""), file));
    let failed = |message: String| DecodeError::Failed {
        file: file.to_owned(),
        message,
    };
    match status {
        Ok(s) if s.success() && (progress.count > 0 || progress.empty_is_fine) => None,
        Ok(s) if s.code().is_none() => Some(failed(format!(
            "ffmpeg crashed ({s}) after {} {}{}",
            progress.count,
            progress.unit,
            said.map(|l| format!(": {l}")).unwrap_or_default()
        ))),
        Ok(s) if progress.count > 0 => {
            tracing::warn!(file, status = %s, error = ?said, "ffmpeg stopped early");
            None
        }
        Ok(_) => Some(failed(match said {
            Some(line) if line.contains("matches no streams") => {
                format!("it has no {} stream", progress.stream)
            }
            Some(line) => line,
            None => progress.nothing.into(),
        })),
        Err(source) => Some(DecodeError::Io {
            file: file.to_owned(),
            source,
        }),
    }
}

pub(crate) fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ppm_frames_and_refuses_what_is_not_one() {
        let mut two = b"P6\n2 1\n255\n\x01\x02\x03\x04\x05\x06".to_vec();
        two.extend_from_slice(b"P6 1 1 255 \x07\x08\x09");
        let mut reader = BufReader::new(&two[..]);
        let first = read_ppm(&mut reader).unwrap().unwrap();
        assert_eq!((first.width(), first.height()), (2, 1));
        assert_eq!(first.get_pixel(1, 0).0, [4, 5, 6]);
        assert_eq!(
            read_ppm(&mut reader).unwrap().unwrap().get_pixel(0, 0).0,
            [7, 8, 9]
        );
        assert!(read_ppm(&mut reader).unwrap().is_none());

        for bad in [
            &b"P5\n1 1\n255\n\0"[..],
            b"P6\n1 1\n65535\n\0\0\0\0\0\0",
            b"P6\n100000 100000\n255\n",
            b"P6\n2 2\n255\n\0\0\0",
            b"P6\n2",
        ] {
            assert!(read_ppm(&mut BufReader::new(bad)).is_err(), "{bad:?}");
        }
    }
}
