//! Who is calling: a token from `Authorization: Bearer …`, or the web UI's session cookie.
//! The cookie holds a random session id, never the token: signing out ends the session.
//! Sessions are kept in the catalog, so every server knows them and a restart ends none.
//! Requests signed in by cookie must also carry `X-Aperture: 1` to change anything: a cross-site form cannot set that header, so the cookie alone never
//! deletes or uploads.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aperture_catalog::access::split_token;
use aperture_catalog::{Scope, Token};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Method, header};

use super::State;
use super::error::{ApiError, ApiResult};

pub const COOKIE: &str = "aperture_session";
pub const CSRF_HEADER: &str = "x-aperture";
/// How long a looked-up token is trusted before the catalog is asked again: a revocation
/// takes effect within this time.
const TOKEN_CACHE: Duration = Duration::from_secs(5);

/// Tokens recently read from the catalog.
#[derive(Default)]
pub struct TokenCache(Mutex<HashMap<String, (Token, Instant)>>);

impl TokenCache {
    fn get(&self, id: &str) -> Option<Token> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(id)
            .filter(|(_, at)| at.elapsed() < TOKEN_CACHE)
            .map(|(t, _)| t.clone())
    }

    fn put(&self, token: Token) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 10_000 {
            map.retain(|_, (_, at)| at.elapsed() < TOKEN_CACHE);
        }
        map.insert(token.id.clone(), (token, Instant::now()));
    }
}

/// How long a web UI session lasts.
pub const SESSION_LIFE: Duration = Duration::from_secs(12 * 3600);

/// Web UI sessions live in the catalog (only a hash of each id), so any server behind a load
/// balancer answers any browser, and a restart signs nobody out.
pub mod sessions {
    use super::*;

    fn key(session: &str) -> [u8; 32] {
        *aperture_core::ContentHash::of(session.as_bytes()).as_bytes()
    }

    /// Opens a session for a token; returns its id (the cookie's value).
    pub async fn open(state: &State, token: &Token) -> ApiResult<String> {
        let mut random = [0u8; 32];
        getrandom::fill(&mut random).map_err(ApiError::internal)?;
        let id = aperture_core::hex(&random);
        let (hash, token) = (key(&id), token.id.clone());
        let life = i64::try_from(SESSION_LIFE.as_millis()).unwrap_or(i64::MAX);
        let until = aperture_core::UnixMillis(aperture_core::UnixMillis::now().0 + life);
        state
            .lake
            .catalog(move |c| c.open_session(&hash, &token, until))
            .await?;
        Ok(id)
    }

    /// The token id of a live session.
    pub(super) async fn token_id(state: &State, session: &str) -> ApiResult<Option<String>> {
        // Not an id this server could have made: no need to ask the catalog.
        if session.len() != 64 || !session.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let hash = key(session);
        let now = aperture_core::UnixMillis::now();
        Ok(state
            .lake
            .catalog(move |c| c.session_token(&hash, now))
            .await?)
    }

    /// Ends a session.
    pub async fn close(state: &State, session: &str) -> ApiResult<()> {
        let hash = key(session);
        state.lake.catalog(move |c| c.close_session(&hash)).await?;
        Ok(())
    }
}

/// The authenticated caller of a request.
#[derive(Clone)]
pub struct Caller {
    /// The token it presented (directly, or through its session).
    pub token: Token,
    /// What it may see: every read goes through this.
    pub view: aperture_lake::View,
}

impl Caller {
    /// Lets the request on when the token has `scope`, else 403 naming the token and the scope.
    pub fn require(&self, scope: Scope) -> ApiResult<()> {
        if self.token.allows(scope) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this token ({}) lacks the '{scope}' scope",
                self.token.name
            )))
        }
    }

    /// Refuses a collection the token was not granted, naming it.
    pub fn require_collection(&self, name: &str) -> ApiResult<()> {
        Ok(self.view.require_collection(name)?)
    }

    /// For the audit log.
    pub fn actor(&self) -> String {
        format!("token:{}:{}", self.token.id, self.token.name)
    }
}

/// A token by id, from the cache or the catalog.
async fn token_by_id(state: &State, id: &str) -> ApiResult<Option<Token>> {
    if let Some(token) = state.tokens.get(id) {
        return Ok(Some(token));
    }
    let key = id.to_owned();
    let found = state.lake.catalog(move |c| c.token(&key)).await?;
    if let Some(token) = &found {
        state.tokens.put(token.clone());
    }
    Ok(found)
}

/// Finds and checks the token of a request's credentials.
pub async fn authenticate(state: &State, text: &str) -> ApiResult<Token> {
    let refuse = || ApiError::unauthorized("the token is not valid (unknown, revoked or mistyped)");
    let (id, secret) = split_token(text).ok_or_else(refuse)?;
    let token = token_by_id(state, id).await?.ok_or_else(refuse)?;
    if token.revoked_at.is_some() || !token.verify(secret) {
        return Err(refuse());
    }
    Ok(token)
}

/// The token behind a web UI session, while both are alive.
async fn from_session(state: &State, session: &str) -> ApiResult<Token> {
    let refuse = || ApiError::unauthorized("the session ended: sign in again");
    let id = sessions::token_id(state, session)
        .await?
        .ok_or_else(refuse)?;
    let token = token_by_id(state, &id).await?.ok_or_else(refuse)?;
    if token.revoked_at.is_some() {
        return Err(refuse());
    }
    Ok(token)
}

/// The session id a request's cookie carries.
pub fn session_of(parts: &Parts) -> Option<&str> {
    cookie(parts, COOKIE)
}

fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

impl FromRequestParts<Arc<State>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<State>) -> ApiResult<Self> {
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            });
        let token = match (bearer, cookie(parts, COOKIE)) {
            (Some(text), _) => authenticate(state, text).await?,
            (None, Some(session)) => {
                let safe = matches!(parts.method, Method::GET | Method::HEAD);
                if !safe && parts.headers.get(CSRF_HEADER).is_none() {
                    return Err(ApiError::forbidden(format!(
                        "a request signed in by cookie must send the header '{CSRF_HEADER}: 1' \
                         to change anything"
                    )));
                }
                from_session(state, session).await?
            }
            (None, None) => {
                return Err(ApiError::unauthorized(
                    "this needs a token: send 'Authorization: Bearer apt_…' \
                     (create one with `aperture token create`)",
                ));
            }
        };
        Ok(Caller {
            view: state.lake.view_of(&token),
            token,
        })
    }
}
