//! Everything the catalog holds about one asset, as `aperture show` prints it.

use std::fmt;

use aperture_catalog::{Asset, Job, Source};
use aperture_core::human::{HumanBytes, clock};
use aperture_core::{AssetId, Insight, InsightValue, MediaKind, Place};
use serde::Serialize;

use crate::{Lake, Result};

/// An asset with where it came from, its jobs and its insights.
#[derive(Debug, Clone, Serialize)]
pub struct AssetDetail {
    /// The asset.
    pub asset: Asset,
    /// Every path it was ingested from.
    pub sources: Vec<Source>,
    /// What analyzers found.
    pub insights: Vec<Insight>,
    /// Its analysis jobs.
    pub jobs: Vec<Job>,
}

impl Lake {
    /// The asset `id` with its sources, insights and jobs, read in one blocking call.
    pub async fn detail(&self, id: AssetId) -> Result<AssetDetail> {
        self.catalog(move |c| {
            Ok(AssetDetail {
                asset: c.asset(id)?,
                sources: c.sources(id)?,
                insights: c.insights(id)?,
                jobs: c.jobs_of(id)?,
            })
        })
        .await
    }

    /// The asset's image with every face found blurred beyond recognition, for export (the
    /// face detector only detects: nothing about a face is kept). Only images; the model is
    /// `aperture models install face-detector`.
    pub async fn blur_faces(&self, id: AssetId) -> Result<aperture_analyze::faces::Blurred> {
        let asset = self.catalog(move |c| c.asset(id)).await?;
        if asset.kind != MediaKind::Image {
            return Err(crate::Error::InvalidInput {
                what: format!("asset {id} ({})", asset.name),
                reason: format!("it is {}: faces are blurred in images only", asset.kind),
            });
        }
        let models = self.config.models_dir.clone();
        let file = crate::worker::local_copy(&self.blobs, &asset, false).await?;
        tokio::task::spawn_blocking(move || {
            let blur = aperture_analyze::faces::FaceBlur::load(&models).map_err(|e| {
                crate::Error::InvalidInput {
                    what: "face blurring".into(),
                    reason: e.to_string(),
                }
            })?;
            blur.blur(&asset, file.path())
                .map_err(|e| crate::Error::InvalidInput {
                    what: format!("asset {id} ({})", asset.name),
                    reason: e.to_string(),
                })
        })
        .await?
    }

    /// The frame of video `id` shown at `time_ms`, as a JPEG at up to `max_side` pixels a
    /// side, decoded from the verified original.
    pub async fn frame(&self, id: AssetId, time_ms: u64, max_side: u32) -> Result<Vec<u8>> {
        let asset = self.catalog(move |c| c.asset(id)).await?;
        if asset.kind != MediaKind::Video {
            return Err(crate::Error::InvalidInput {
                what: format!("asset {id} ({})", asset.name),
                reason: format!("it is {}, not a video", asset.kind),
            });
        }
        // The blob in place on a local store (verified first), a temporary copy otherwise.
        let file = crate::worker::local_copy(&self.blobs, &asset, false).await?;
        let name = asset.name.clone();
        let opts = aperture_media::video::DecodeOptions {
            ffmpeg: self.config.media.ffmpeg.clone(),
            ..Default::default()
        };
        tokio::task::spawn_blocking(move || {
            let image =
                aperture_media::video::frame_at(file.path(), &name, time_ms, max_side, &opts)
                    .map_err(|e| crate::Error::InvalidInput {
                        what: format!("the frame at {} of {name}", clock(time_ms)),
                        reason: e.to_string(),
                    })?;
            let mut jpeg = Vec::new();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
                .encode_image(&image)
                .map_err(|e| crate::Error::InvalidInput {
                    what: format!("the frame at {} of {name}", clock(time_ms)),
                    reason: e.to_string(),
                })?;
            Ok(jpeg)
        })
        .await?
    }
}

/// Each shot of a video with its time, its transition and what was seen in it.
fn write_shots(f: &mut fmt::Formatter<'_>, insights: &[Insight]) -> fmt::Result {
    let mut shots: Vec<(&Insight, u64, u64)> = insights
        .iter()
        .filter_map(|i| match (&i.value, i.place) {
            (
                InsightValue::Shot(_),
                Place::Time {
                    start_ms, end_ms, ..
                },
            ) => Some((i, start_ms, end_ms)),
            _ => None,
        })
        .collect();
    if shots.is_empty() {
        return Ok(());
    }
    shots.sort_by_key(|s| s.1);
    writeln!(f, "shots        {}", shots.len())?;
    for (shot, start, end) in shots {
        let InsightValue::Shot(value) = &shot.value else {
            continue;
        };
        let content = value
            .content
            .map(|c| {
                format!(
                    " {}",
                    serde_json::to_value(c)
                        .unwrap_or_default()
                        .as_str()
                        .unwrap_or("")
                )
            })
            .unwrap_or_default();
        let transition = serde_json::to_value(value.transition).unwrap_or_default();
        write!(
            f,
            "  {}–{}  {:<8}{content}",
            clock(start),
            clock(end),
            transition.as_str().unwrap_or("")
        )?;
        let within = |i: &&Insight| match i.place {
            Place::Time {
                start_ms, end_ms, ..
            } => start_ms < end && start < end_ms,
            _ => false,
        };
        let labels: Vec<&str> = insights
            .iter()
            .filter(within)
            .filter(|i| i.confidence.unwrap_or(0.0) >= 0.2)
            .filter_map(|i| match &i.value {
                InsightValue::Label(l) => l.name.split(',').next(),
                _ => None,
            })
            .collect();
        if !labels.is_empty() {
            write!(f, "  {}", labels.join(", "))?;
        }
        let text: Vec<&str> = insights
            .iter()
            .filter(within)
            .filter_map(|i| match &i.value {
                InsightValue::OcrLine(l) => Some(l.text.as_str()),
                _ => None,
            })
            .collect();
        if !text.is_empty() {
            write!(
                f,
                "  «{}»",
                aperture_core::human::clip(&text.join(" / "), 80)
            )?;
        }
        writeln!(f)?;
    }
    Ok(())
}

/// An insight's value for people: a feature vector is shown by its size (JSON has it all).
fn readable(value: &InsightValue) -> serde_json::Value {
    let mut json = value.to_json_value();
    if let (Some(v), Some(map)) = (value.as_vector(), json.as_object_mut()) {
        map.insert("vector".into(), format!("<{} floats>", v.dims()).into());
    }
    json
}

impl fmt::Display for AssetDetail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = &self.asset;
        writeln!(f, "id           {}", a.id)?;
        writeln!(f, "name         {}", a.name)?;
        writeln!(f, "collection   {}", a.collection)?;
        writeln!(f, "kind         {} ({})", a.kind, a.mime)?;
        writeln!(f, "size         {} ({} bytes)", HumanBytes(a.size), a.size)?;
        writeln!(f, "blake3       {}", a.hash)?;
        writeln!(f, "ingested     {}", a.ingested_at.to_rfc3339())?;
        if let Some(t) = &a.captured_at {
            writeln!(f, "captured     {t}")?;
        }
        if let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(&a.metadata) {
            for (key, value) in fields.iter().filter(|(k, _)| *k != "captured_at") {
                let text = match value {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                writeln!(f, "{:<12} {text}", key.replace('_', " "))?;
            }
        }
        writeln!(f, "sources      {}", self.sources.len())?;
        for s in &self.sources {
            writeln!(f, "  {} (first seen {})", s.path, s.first_seen.to_rfc3339())?;
        }
        writeln!(f, "jobs         {}", self.jobs.len())?;
        for j in &self.jobs {
            let error = j.last_error.as_deref().map(|e| format!(": {e}"));
            let what = match (j.part, j.parts) {
                (Some(p), _) => format!(
                    " (part {} of {}, from {})",
                    p.index,
                    p.count,
                    aperture_core::human::clock(p.start_ms)
                ),
                (None, n) if n > 0 => format!(" ({n} parts)"),
                _ => String::new(),
            };
            writeln!(
                f,
                "  {:<12} {}{what}{}",
                j.analyzer,
                j.state,
                error.unwrap_or_default()
            )?;
        }
        write_shots(f, &self.insights)?;
        write!(f, "insights     {}", self.insights.len())?;
        for i in &self.insights {
            let confidence = i.confidence.map(|c| format!(" ({c:.2})"));
            write!(
                f,
                "\n  {} {}: {}{}{}",
                i.analyzer,
                i.kind(),
                readable(&i.value),
                confidence.unwrap_or_default(),
                aperture_core::human::where_in(&i.place)
            )?;
        }
        Ok(())
    }
}
