//! The JSON API: session, collections, assets, search, similar, duplicates, status, metrics.

use std::sync::Arc;

use aperture_catalog::{Scope, Source};
use aperture_core::{Insight, MediaKind};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query as UrlQuery, State as Shared};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::State;
use super::auth::{COOKIE, Caller, SESSION_LIFE, authenticate, session_of, sessions};
use super::error::{ApiError, ApiResult};
use super::views::{AssetView, page_limit, parse_id, readable, views};

pub fn routes() -> Router<Arc<State>> {
    Router::new()
        .route("/healthz", get(health))
        .route(
            "/api/v1/session",
            axum::routing::post(sign_in).delete(sign_out),
        )
        .route("/api/v1/me", get(me))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/collections", get(collections))
        .route(
            "/api/v1/collections/{name}",
            axum::routing::patch(set_collection_policy),
        )
        .route("/api/v1/assets", get(list_assets))
        .route("/api/v1/assets/{id}", get(asset).delete(delete_asset))
}

async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

#[derive(Deserialize)]
struct SignIn {
    token: String,
}

/// A JSON body as the document promises: 415 when it is not sent as JSON (`how` says how to
/// send it), 400 for any other problem (axum's default would be 422 for a body that parses but
/// does not fit).
fn json_body<T>(body: Result<Json<T>, JsonRejection>, what: &str, how: &str) -> ApiResult<T> {
    body.map(|Json(body)| body).map_err(|e| match e {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            how,
        ),
        e => ApiError::bad_request(format!("{what}: {}", e.body_text())),
    })
}

/// Signs the web UI in: a new session, whose random id goes into an HttpOnly cookie that
/// scripts cannot read. The token itself never leaves the page that typed it.
async fn sign_in(
    Shared(state): Shared<Arc<State>>,
    headers: axum::http::HeaderMap,
    body: Result<Json<SignIn>, JsonRejection>,
) -> ApiResult<Response> {
    let body = json_body(
        body,
        "sign-in",
        "send the token as JSON: {\"token\": \"apt_...\"} with Content-Type: application/json",
    )?;
    let token = authenticate(&state, &body.token).await?;
    let session = sessions::open(&state, &token).await?;
    let cookie = format!(
        "{COOKIE}={session}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        SESSION_LIFE.as_secs(),
        secure(&state, &headers)
    );
    tracing::info!(token = %token.id, "signed in");
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response())
}

/// `; Secure` when the browser reached us over TLS: the config says TLS is in front, or the
/// proxy says so (`X-Forwarded-Proto: https`, `Forwarded: proto=https`). Marking a cookie
/// Secure only narrows where it is sent, so a client that claims TLS falsely gains nothing.
fn secure(state: &State, headers: &axum::http::HeaderMap) -> &'static str {
    let says_https = |name: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str().is_ok_and(|v| {
                v.split([',', ';']).map(str::trim).any(|p| {
                    p.eq_ignore_ascii_case("https") || p.eq_ignore_ascii_case("proto=https")
                })
            })
        })
    };
    if state.limits.tls_in_front || says_https("x-forwarded-proto") || says_https("forwarded") {
        "; Secure"
    } else {
        ""
    }
}

/// Ends the session (not the token): its cookie stops working at once.
async fn sign_out(Shared(state): Shared<Arc<State>>, request: axum::extract::Request) -> Response {
    let (parts, _) = request.into_parts();
    if let Some(session) = session_of(&parts)
        && let Err(e) = sessions::close(&state, session).await
    {
        return e.into_response();
    }
    let cookie = format!(
        "{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
        secure(&state, &parts.headers)
    );
    (StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response()
}

async fn me(caller: Caller) -> Json<Value> {
    Json(json!({
        "id": caller.token.id,
        "name": caller.token.name,
        "scopes": caller.token.scopes,
        "collections": caller.token.collections,
    }))
}

async fn openapi(_caller: Caller) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("openapi.json"),
    )
        .into_response()
}

async fn collections(caller: Caller) -> ApiResult<Json<Value>> {
    caller.require(Scope::Read)?;
    let visible: Vec<Value> = caller
        .view
        .collections()
        .await?
        .into_iter()
        .map(|c| collection_json(&c))
        .collect();
    Ok(Json(Value::Array(visible)))
}

fn collection_json(c: &aperture_catalog::Collection) -> Value {
    json!({
        "name": c.name,
        "created_at": c.created_at.0,
        "retention": aperture_lake::show_retention(c.retention_secs),
        "legal_hold": c.legal_hold,
        "read_plates": c.read_plates,
    })
}

/// A collection's retention and legal hold, as `PATCH /collections/{name}` takes them.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Policy {
    #[serde(default, deserialize_with = "present")]
    retention: Option<String>,
    #[serde(default, deserialize_with = "present")]
    legal_hold: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    read_plates: Option<bool>,
}

/// A field that may be left out but, when given, must be a value (`null` is refused).
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

async fn set_collection_policy(
    Shared(state): Shared<Arc<State>>,
    caller: Caller,
    Path(name): Path<String>,
    body: Result<Json<Policy>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    caller.require(Scope::Admin)?;
    let policy = json_body(
        body,
        "collection policy",
        "send the policy as JSON, e.g. {\"retention\": \"90d\", \"legal_hold\": false}",
    )?;
    if !caller.view.sees(&name) {
        return Err(ApiError::not_found(format!("collection {name} not found")));
    }
    if policy.retention.is_none() && policy.legal_hold.is_none() && policy.read_plates.is_none() {
        return Err(ApiError::bad_request(
            "say what to set: retention (90d, 12h, 30m, 45s or off), legal_hold (true or false), read_plates (true or false)",
        ));
    }
    let retention = policy
        .retention
        .as_deref()
        .map(aperture_lake::parse_retention)
        .transpose()?;
    let set = state
        .lake
        .change_collection(
            &caller.actor(),
            &name,
            aperture_catalog::PolicyChange {
                retention_secs: retention,
                legal_hold: policy.legal_hold,
                read_plates: policy.read_plates,
            },
        )
        .await?;
    Ok(Json(collection_json(&set)))
}

#[derive(Deserialize)]
struct ListParams {
    collection: Option<String>,
    kind: Option<String>,
    cursor: Option<String>,
    limit: Option<usize>,
}

async fn list_assets(
    Shared(state): Shared<Arc<State>>,
    caller: Caller,
    UrlQuery(params): UrlQuery<ListParams>,
) -> ApiResult<Json<Value>> {
    caller.require(Scope::Read)?;
    let limit = page_limit(params.limit, 48)?;
    // Exactly the names the document's enum lists (an empty value means any kind).
    let kind = match params.kind.as_deref().filter(|k| !k.is_empty()) {
        Some(k) => Some(
            MediaKind::ALL
                .into_iter()
                .find(|kind| kind.as_str() == k)
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "unknown kind '{k}': use image, video, audio, document or other"
                    ))
                })?,
        ),
        None => None,
    };
    let after = match params.cursor.as_deref().filter(|c| !c.is_empty()) {
        Some(c) => Some(parse_id(c)?),
        None => None,
    };
    let page = caller
        .view
        .list(aperture_lake::ListQuery {
            collection: params.collection.clone().filter(|c| !c.is_empty()),
            kind,
            after,
            limit,
        })
        .await?;
    let (items, next) = (page.items, page.next);
    state
        .audit(
            &caller,
            "list",
            params.collection.clone().filter(|c| !c.is_empty()),
            json!({ "kind": kind.map(|k| k.as_str()), "count": items.len() }),
        )
        .await?;
    let items = views(&state, items).await?;
    Ok(Json(json!({
        "items": items,
        "next": next.map(|id| id.to_string()),
    })))
}

/// Insights as the API shows them: without their vectors (which say their `dims`) unless
/// `?vectors=true`.
fn shown(insight: Insight, vectors: bool) -> Value {
    let mut json = serde_json::to_value(insight).unwrap_or(Value::Null);
    // Any kind's vector, known or not (a newer writer's), stays out unless asked for.
    if !vectors && let Some(value) = json.get_mut("value").and_then(Value::as_object_mut) {
        value.remove("vector");
    }
    json
}

#[derive(Deserialize)]
struct AssetParams {
    #[serde(default)]
    vectors: bool,
}

async fn asset(
    Shared(state): Shared<Arc<State>>,
    caller: Caller,
    Path(id): Path<String>,
    UrlQuery(params): UrlQuery<AssetParams>,
) -> ApiResult<Json<Value>> {
    let id = parse_id(&id)?;
    let asset = readable(&caller, id).await?;
    let (sources, insights): (Vec<Source>, Vec<Insight>) = state
        .lake
        .catalog(move |c| Ok((c.sources(id)?, c.insights(id)?)))
        .await?;
    state
        .audit_asset(
            &caller,
            "read_metadata",
            &asset,
            json!({ "collection": asset.collection }),
        )
        .await?;
    let view = AssetView::new(&asset, &insights);
    let insights: Vec<Value> = insights
        .into_iter()
        .map(|i| shown(i, params.vectors))
        .collect();
    Ok(Json(json!({
        "asset": view,
        "metadata": asset.metadata,
        "hash": asset.hash.to_string(),
        "sources": sources,
        "insights": insights,
    })))
}

async fn delete_asset(
    Shared(state): Shared<Arc<State>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = parse_id(&id)?;
    caller.require(Scope::Admin)?;
    let asset = readable(&caller, id).await?;
    // The entry first: an erasure that is not in the log must not happen.
    state
        .audit_asset(
            &caller,
            "delete",
            &asset,
            json!({ "collection": asset.collection }),
        )
        .await?;
    state.lake.erase(id).await?;
    state.follow_now();
    state.status_changed().await;
    Ok(StatusCode::NO_CONTENT)
}
