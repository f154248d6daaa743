//! A preview browsers can play: when a video's codecs or container are not ones Chromium
//! plays (MPEG-4 Part 2 in AVI, WMV, ProRes, HEVC, …), an H.264/AAC MP4 of at most 720 lines
//! is made once (`aperture_media::video::encode_preview`) and stored beside the asset. The
//! original is never changed and is still what a download gets.

use aperture_core::{AnalyzerSpec, Insight, InsightValue, MediaKind, Place, UnixMillis, value};
use aperture_media::video::{PreviewOptions, encode_preview};

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

/// Video codecs Chromium decodes (H.264 with the codecs Debian's build has).
const PLAYABLE_VIDEO: &[&str] = &["h264", "vp8", "vp9", "av1"];
/// Audio codecs it decodes.
const PLAYABLE_AUDIO: &[&str] = &["aac", "mp3", "opus", "vorbis", "flac"];

/// The analyzer.
#[derive(Debug, Clone, Default)]
pub struct Preview {
    /// How previews are encoded: the program, threads, size and limits.
    pub options: PreviewOptions,
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
        let limit = self.options.max_duration;
        if meta
            .duration_ms
            .is_some_and(|ms| u128::from(ms) > limit.as_millis())
        {
            return Err(Error::BadInput {
                reason: format!(
                    "{} lasts longer than the {} limit for video",
                    asset.name,
                    aperture_core::human::clock(limit.as_millis() as u64)
                ),
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
        encode_preview(input.path, &asset.name, &out, &self.options)
            .map_err(crate::video::decode_error)?;
        let bytes = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
        // What the encoder was asked for; the stored file is what it is.
        let lines = u64::from(self.options.max_lines);
        let (width, height) = match (meta.width, meta.height) {
            (Some(w), Some(h)) if u64::from(h) > lines && h > 0 => (
                (u64::from(w) * lines / u64::from(h)) as u32 & !1,
                lines as u32,
            ),
            (Some(w), Some(h)) => (w, h & !1),
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
