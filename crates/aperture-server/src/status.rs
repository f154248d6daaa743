//! Indexing status and the Prometheus metrics.

use std::sync::Arc;

use aperture_catalog::{JobState, Scope};
use aperture_search::SearchIndex;
use axum::extract::State as Shared;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::State;
use super::auth::Caller;
use super::error::ApiResult;

/// Indexing status and metrics.
pub fn routes() -> Router<Arc<State>> {
    Router::new()
        .route("/api/v1/status", get(status))
        .route("/metrics", get(metrics))
}

async fn status(Shared(state): Shared<Arc<State>>, caller: Caller) -> ApiResult<Json<Value>> {
    caller.require(Scope::Read)?;
    if caller.view.sees_all() {
        return Ok(Json(state.status_cached().await?));
    }
    // A token for some collections sees the work of those only: the queue of the others, or
    // that work is under way there, is none of its business.
    let view = caller.view.clone();
    let (assets, counts) = aperture_lake::blocking(&state.lake.catalog, move |c| {
        let ids = view.collection_ids(c, None)?;
        Ok::<_, aperture_lake::Error>(c.counts_in(&ids)?)
    })
    .await?;
    let (jobs, queued) = job_states(&counts);
    Ok(Json(json!({
        "assets": assets,
        "jobs": jobs,
        "index": null,
        "busy": queued > 0,
    })))
}

/// Jobs by state as the status shows them, and how many are still to run.
fn job_states(counts: &[(JobState, u64)]) -> (serde_json::Map<String, Value>, u64) {
    let mut jobs = serde_json::Map::new();
    for s in JobState::ALL {
        let n: u64 = counts.iter().filter(|(k, _)| *k == s).map(|(_, n)| n).sum();
        jobs.insert(s.as_str().to_owned(), Value::from(n));
    }
    let queued = counts
        .iter()
        .filter(|(s, _)| s.is_pending())
        .map(|(_, n)| n)
        .sum::<u64>();
    (jobs, queued)
}

/// What `/api/v1/status` says, computed at most once a second however many pages poll it.
pub async fn compute_status(state: &State) -> ApiResult<Value> {
    let (counts, assets, last) = state
        .lake
        .catalog(|c| Ok((c.state_counts()?, c.asset_count()?, c.last_change()?)))
        .await?;
    let (jobs, queued) = job_states(&counts);
    let (documents, position) = index_figures(state.index()).await?;
    let pending = last - position;
    let busy = queued > 0 || pending > 0;
    Ok(json!({
        "assets": assets,
        "jobs": jobs,
        "index": {
            "documents": documents,
            "pending_changes": pending.max(0),
        },
        "busy": busy,
    }))
}

/// The index's documents and change-feed position (0 and 0 before there is one): read on the
/// blocking pool, since the shared index asks its server.
async fn index_figures(index: Option<Arc<SearchIndex>>) -> ApiResult<(u64, i64)> {
    let Some(index) = index else {
        return Ok((0, 0));
    };
    let figures = tokio::task::spawn_blocking(move || -> aperture_search::Result<(u64, i64)> {
        Ok((index.documents()?, index.position()?))
    })
    .await
    .map_err(aperture_lake::Error::from)?
    .map_err(aperture_lake::Error::from)?;
    Ok(figures)
}

async fn metrics(Shared(state): Shared<Arc<State>>, caller: Caller) -> ApiResult<Response> {
    caller.require(Scope::Admin)?;
    let (counts, assets) = state
        .lake
        .catalog(|c| Ok((c.state_counts()?, c.asset_count()?)))
        .await?;
    let jobs: Vec<(String, u64)> = counts
        .into_iter()
        .map(|(s, n)| (s.as_str().to_owned(), n))
        .collect();
    let (documents, _) = index_figures(state.index()).await?;
    let text = state.metrics.render(&jobs, assets, documents);
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}
