//! A preview browsers can play: when a video's codecs or container are not ones Chromium
//! plays (MPEG-4 Part 2 in AVI, WMV, ProRes, HEVC, …), an H.264/AAC MP4 of at most 720 lines
//! is made once with ffmpeg and stored beside the asset. The original is never changed and is
//! still what a download gets.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aperture_core::{AnalyzerSpec, Insight, InsightValue, MediaKind, Place, UnixMillis, value};

use crate::{Analyzer, Error, Input, Output};

/// What the `preview` analyzer is, before anything loads.
pub const SPEC: AnalyzerSpec = AnalyzerSpec {
    name: "preview",
    version: "1",
    kinds: &[MediaKind::Video],
    priority: 90,
    reads: &[],
    produces: &[InsightValue::PREVIEW],
};

/// The derived object a preview is stored as.
pub const NAME: &str = "preview-720.mp4";

/// Video codecs Chromium decodes without proprietary add-ons beyond H.264.
const PLAYABLE_VIDEO: &[&str] = &["h264", "vp8", "vp9", "av1"];
/// Audio codecs it decodes.
const PLAYABLE_AUDIO: &[&str] = &["aac", "mp3", "opus", "vorbis", "flac"];

/// The analyzer.
#[derive(Debug, Clone)]
pub struct Preview {
    /// The `ffmpeg` program.
    pub ffmpeg: PathBuf,
    /// Encoding is stopped when it runs longer than this many times the video's length, plus
    /// a minute. Default: 4.
    pub max_speed_factor: f64,
}

impl Default for Preview {
    fn default() -> Self {
        Self {
            ffmpeg: PathBuf::from("ffmpeg"),
            max_speed_factor: 4.0,
        }
    }
}

/// Whether a browser plays the file as it is: MP4/MOV or WebM/Matroska with codecs it knows.
pub fn playable(container: Option<&str>, video: Option<&str>, audio: Option<&str>) -> bool {
    let container_ok = container.is_some_and(|c| c.contains("mp4") || c.contains("webm"));
    let video_ok = video.is_some_and(|v| PLAYABLE_VIDEO.contains(&v));
    let audio_ok = audio.is_none_or(|a| PLAYABLE_AUDIO.contains(&a));
    container_ok && video_ok && audio_ok
}

impl Analyzer for Preview {
    fn spec(&self) -> &'static AnalyzerSpec {
        &SPEC
    }

    fn version(&self) -> String {
        SPEC.version.into()
    }

    fn analyze(&self, input: &Input<'_>) -> Result<Output, Error> {
        let asset = input.asset;
        let meta = &asset.metadata;
        if asset.kind != MediaKind::Video {
            return Err(Error::NotApplicable {
                reason: format!("{} is {}, not a video", asset.name, asset.mime),
            });
        }
        if playable(
            meta.container.as_deref(),
            meta.video_codec.as_deref(),
            meta.audio_codec.as_deref(),
        ) {
            return Err(Error::NotApplicable {
                reason: format!("browsers play {} as it is", asset.name),
            });
        }
        let out = tempfile::Builder::new()
            .prefix("aperture-preview-")
            .suffix(".mp4")
            .tempfile()
            .map_err(|e| Error::Transient {
                reason: format!("cannot make a preview of {}: {e}", asset.name),
            })?
            .into_temp_path();
        let length = Duration::from_millis(meta.duration_ms.unwrap_or(3_600_000));
        let limit = length.mul_f64(self.max_speed_factor) + Duration::from_secs(60);
        encode(&self.ffmpeg, input.path, &out, limit).map_err(|reason| Error::BadInput {
            reason: format!("cannot make a preview of {}: {reason}", asset.name),
        })?;
        let bytes = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
        let (width, height) = match (meta.width, meta.height) {
            (Some(w), Some(h)) if h > 720 => ((w * 720 / h) & !1, 720),
            (Some(w), Some(h)) => (w, h),
            _ => (0, 0),
        };
        Ok(Output {
            insights: vec![Insight {
                asset: asset.id,
                analyzer: SPEC.name.into(),
                analyzer_version: self.version(),
                model: None,
                model_version: None,
                value: value::Preview {
                    name: NAME.into(),
                    mime: "video/mp4".into(),
                    width,
                    height,
                    bytes,
                }
                .into(),
                confidence: None,
                language: None,
                place: Place::Whole,
                created_at: UnixMillis::now(),
            }],
            derived: Vec::new(),
            derived_files: vec![(NAME.into(), out)],
        })
    }
}

/// Runs ffmpeg to make the preview, killing it past `limit`.
fn encode(ffmpeg: &Path, input: &Path, out: &Path, limit: Duration) -> Result<(), String> {
    let mut child = Command::new(ffmpeg)
        .args(["-nostdin", "-hide_banner", "-v", "error", "-y", "-i"])
        .arg(crate::video::input_url(input))
        .args([
            "-map",
            "0:v:0",
            "-map",
            "0:a:0?",
            "-vf",
            "scale=w=-2:h=min(720\\,ih):flags=bicubic,format=yuv420p",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            "26",
            "-c:a",
            "aac",
            "-b:a",
            "128k",
            "-ac",
            "2",
            "-movflags",
            "+faststart",
            "-f",
            "mp4",
        ])
        .arg(out)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run ffmpeg: {e}"))?;
    let mut stderr = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(s) = stderr.as_mut() {
            let _ = s.take(64 * 1024).read_to_string(&mut text);
        }
        text
    });
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let said = reader.join().unwrap_or_default();
                return if status.success() {
                    Ok(())
                } else {
                    Err(said
                        .lines()
                        .find(|l| !l.trim().is_empty())
                        .map_or_else(|| format!("ffmpeg failed ({status})"), str::to_owned))
                };
            }
            Ok(None) if started.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "encoding ran past {} s and was stopped",
                    limit.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => return Err(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_what_browsers_play() {
        let mp4 = Some("mov,mp4,m4a,3gp,3g2,mj2");
        assert!(playable(mp4, Some("h264"), Some("aac")));
        assert!(playable(mp4, Some("h264"), None));
        assert!(playable(Some("matroska,webm"), Some("vp9"), Some("opus")));
        assert!(!playable(mp4, Some("hevc"), Some("aac")));
        assert!(!playable(mp4, Some("prores"), None));
        assert!(!playable(Some("avi"), Some("mpeg4"), Some("mp3")));
        assert!(!playable(Some("asf"), Some("wmv2"), Some("wmav2")));
        assert!(!playable(mp4, Some("h264"), Some("pcm_s16le")));
    }
}
