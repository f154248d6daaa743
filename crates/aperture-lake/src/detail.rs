//! Everything the catalog holds about one asset, as `aperture show` prints it.

use std::fmt;

use aperture_catalog::{Asset, Job, Source};
use aperture_core::human::HumanBytes;
use aperture_core::{AssetId, Insight, InsightValue};
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
            writeln!(
                f,
                "  {:<12} {}{}",
                j.analyzer,
                j.state,
                error.unwrap_or_default()
            )?;
        }
        write!(f, "insights     {}", self.insights.len())?;
        for i in &self.insights {
            let confidence = i.confidence.map(|c| format!(" ({c:.2})"));
            write!(
                f,
                "\n  {} {}: {}{}",
                i.analyzer,
                i.kind(),
                readable(&i.value),
                confidence.unwrap_or_default()
            )?;
        }
        Ok(())
    }
}
