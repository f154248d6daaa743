//! Who may do what, and what was done: API tokens with scopes and per-collection grants, and
//! the audit log, a keyed hash chain so that a changed, removed, reordered or rewritten entry
//! is found.
//!
//! The log keeps nothing of an erased asset. Details that name an asset (its name, paths,
//! what of it was read) are *private*: they are stored beside the chain, in `audit_private`,
//! each with a random salt, and the chained entry holds only `blake3::keyed_hash(salt, detail)`
//! under `"sealed"`. Erasing the asset deletes its private details, salts included, so the log
//! still verifies and the digests left say nothing (not even to someone who guesses the name).
//!
//! Tokens are `apt_<id>_<secret>`. The catalog keeps the id in clear (to find the token) and
//! only a BLAKE3 hash of the secret: 32 random bytes need no slow password hash, and a leaked
//! catalog leaks no usable token.

use std::fmt;

use aperture_core::{AssetId, UnixMillis, hex};
use serde::Serialize;

use crate::{Error, Result};

/// What a token allows. `Admin` implies every other scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// List assets, read their metadata, insights, thumbnails and originals.
    Read,
    /// Search, similar, duplicates.
    Search,
    /// Upload files and create collections.
    Ingest,
    /// Everything, plus deleting assets, tokens, the audit log and metrics.
    Admin,
}

impl Scope {
    /// Every scope, weakest first; sorted scope lists follow this order.
    pub const ALL: [Scope; 4] = [Scope::Read, Scope::Search, Scope::Ingest, Scope::Admin];

    /// The lowercase name used in the catalog, in `--scopes` and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Search => "search",
            Scope::Ingest => "ingest",
            Scope::Admin => "admin",
        }
    }

    /// One scope by name, ignoring surrounding spaces.
    pub fn parse(text: &str) -> Result<Scope> {
        Scope::ALL
            .into_iter()
            .find(|s| s.as_str() == text.trim())
            .ok_or_else(|| Error::InvalidInput {
                reason: format!("unknown scope '{text}': use read, search, ingest or admin"),
            })
    }

    /// Parses `read,search`.
    pub fn parse_list(text: &str) -> Result<Vec<Scope>> {
        let mut scopes = text
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(Scope::parse)
            .collect::<Result<Vec<_>>>()?;
        scopes.sort();
        scopes.dedup();
        if scopes.is_empty() {
            return Err(Error::InvalidInput {
                reason: "a token needs at least one scope".into(),
            });
        }
        Ok(scopes)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A token as the catalog keeps it (never the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Token {
    /// The public part of the token, `apt_<id>_…`.
    pub id: String,
    /// For people: who or what holds it.
    pub name: String,
    /// What it allows, sorted and without repeats when it came from [`Scope::parse_list`].
    pub scopes: Vec<Scope>,
    /// The collections it may see; `None`: all of them.
    pub collections: Option<Vec<String>>,
    /// When it was created.
    pub created_at: UnixMillis,
    /// When it was revoked; a revoked token allows nothing but stays listed.
    pub revoked_at: Option<UnixMillis>,
    /// BLAKE3 of the secret: all [`Token::verify`] needs, and useless to whoever reads it.
    #[serde(skip)]
    pub secret_hash: [u8; 32],
}

impl Token {
    /// Whether it allows `scope`: never once revoked, always with [`Scope::Admin`]. Admin does
    /// not widen [`Token::sees`].
    pub fn allows(&self, scope: Scope) -> bool {
        self.revoked_at.is_none()
            && (self.scopes.contains(&scope) || self.scopes.contains(&Scope::Admin))
    }

    /// Whether it may see assets of this collection.
    pub fn sees(&self, collection: &str) -> bool {
        self.collections
            .as_ref()
            .is_none_or(|names| names.iter().any(|n| n == collection))
    }

    /// Whether `secret` is this token's secret (constant time in the secret).
    pub fn verify(&self, secret: &str) -> bool {
        // blake3::Hash compares in constant time.
        blake3::hash(secret.as_bytes()) == blake3::Hash::from(self.secret_hash)
    }
}

/// A token to create: its secret exists only in what [`NewToken::generate`] returns.
#[derive(Debug, Clone)]
pub struct NewToken {
    /// The token as the catalog will keep it, to pass to [`Access::create_token`].
    pub token: Token,
    /// The whole token, `apt_<id>_<secret>`, to hand to its holder once.
    pub text: String,
}

impl NewToken {
    /// Makes a token with a fresh random id (12 hex digits) and secret (64 hex digits). The
    /// name must be 1 to 100 printable characters; scopes and collections are taken as given.
    pub fn generate(
        name: &str,
        scopes: Vec<Scope>,
        collections: Option<Vec<String>>,
    ) -> Result<NewToken> {
        let name = name.trim();
        if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
            return Err(Error::InvalidInput {
                reason: "a token's name must be 1 to 100 printable characters".into(),
            });
        }
        let mut random = [0u8; 38];
        getrandom::fill(&mut random).map_err(|e| Error::Backend {
            backend: "random",
            source: format!("no randomness for a token: {e}").into(),
        })?;
        let id = hex(&random[..6]);
        let secret = hex(&random[6..]);
        Ok(NewToken {
            token: Token {
                id: id.clone(),
                name: name.to_owned(),
                scopes,
                collections,
                created_at: UnixMillis::now(),
                revoked_at: None,
                secret_hash: *blake3::hash(secret.as_bytes()).as_bytes(),
            },
            text: format!("apt_{id}_{secret}"),
        })
    }
}

/// Splits `apt_<id>_<secret>` into its id and secret.
pub fn split_token(text: &str) -> Option<(&str, &str)> {
    let (id, secret) = text.trim().strip_prefix("apt_")?.split_once('_')?;
    let hex_len = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex_len(id, 12) && hex_len(secret, 64)).then_some((id, secret))
}

/// An audit entry to append.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewAuditEntry {
    /// Who: `token:<id>:<name>` or `cli:<user>`.
    pub actor: String,
    /// What: `search`, `read_original`, `read_thumbnail`, `ingest`, `delete`, `token_create`, ...
    pub action: String,
    /// What it was done to: an asset id, a token id, a collection.
    pub target: Option<String>,
    /// The rest (query, filters, hit count, ...), as JSON: nothing that names an asset.
    pub detail: serde_json::Value,
    /// What names an asset: kept beside the chain and erased with the asset.
    pub private: Vec<PrivateDetail>,
}

impl NewAuditEntry {
    /// An entry with no private details.
    pub fn new(
        actor: impl Into<String>,
        action: impl Into<String>,
        target: Option<String>,
        detail: serde_json::Value,
    ) -> Self {
        Self {
            actor: actor.into(),
            action: action.into(),
            target,
            detail,
            private: Vec::new(),
        }
    }

    /// The entry an erasure appends: which private details it deleted with `asset`, so that
    /// the log tells them from details deleted by hand.
    pub fn erased_details(asset: AssetId, details: &[(i64, i32)]) -> Self {
        Self::new(
            "aperture",
            ERASED_DETAILS,
            Some(asset.to_string()),
            serde_json::json!({ "details": details }),
        )
    }

    /// The entry that starts the keyed part of a log: the key's fingerprint.
    pub fn audit_key(key: &AuditKey) -> Self {
        Self::new(
            "aperture",
            AUDIT_KEY,
            None,
            serde_json::json!({ "fingerprint": key.fingerprint() }),
        )
    }

    /// Adds a detail that names `asset`, erased with it.
    pub fn naming(mut self, asset: AssetId, detail: serde_json::Value) -> Self {
        self.private.push(PrivateDetail {
            asset: Some(asset),
            path: None,
            detail,
        });
        self
    }

    /// Adds a detail that names a path about to be ingested (absolute, as ingest records
    /// sources), erased with any asset ingested from that path or below it.
    pub fn naming_path(mut self, path: &str, detail: serde_json::Value) -> Self {
        self.private.push(PrivateDetail {
            asset: None,
            path: Some(normal_path(path).to_owned()),
            detail,
        });
        self
    }
}

/// `path` without trailing separators (the root stays `/`).
fn normal_path(path: &str) -> &str {
    let trimmed = path.trim_end_matches(['/', '\\']);
    if trimmed.is_empty() && !path.is_empty() {
        &path[..1]
    } else {
        trimmed
    }
}

/// Each of `paths` and every folder above it, as private details name them: what an erased
/// asset's sources erase.
pub(crate) fn path_and_folders(paths: &[String]) -> std::collections::BTreeSet<&str> {
    paths
        .iter()
        .flat_map(|p| std::path::Path::new(normal_path(p)).ancestors())
        .filter_map(|a| a.to_str())
        .filter(|a| !a.is_empty())
        .collect()
}

/// A detail of an audit entry that names an asset or an ingested path.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PrivateDetail {
    /// The asset it names: erasing the asset deletes the detail.
    pub asset: Option<AssetId>,
    /// The path it names: erasing an asset ingested from it (or below it) deletes the detail.
    pub path: Option<String>,
    /// The detail.
    pub detail: serde_json::Value,
}

/// A private detail as stored beside the chain (in clear: only its digest is chained).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StoredPrivate {
    pub seq: i64,
    pub part: i32,
    pub asset: Option<AssetId>,
    pub path: Option<String>,
    pub salt: [u8; 32],
    pub detail: String,
}

/// A private detail read back: its text and the salt of its digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Private {
    /// The salt its digest is keyed with.
    #[serde(skip)]
    pub salt: [u8; 32],
    /// The detail (JSON text).
    pub detail: String,
}

/// An entry of the audit log, as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    /// 1, 2, 3, ... with no gaps.
    pub seq: i64,
    /// When it was written.
    pub at: UnixMillis,
    /// Who did it.
    pub actor: String,
    /// What was done.
    pub action: String,
    /// What it was done to, if anything.
    pub target: Option<String>,
    /// The detail exactly as hashed (JSON text), private details as their digests.
    pub detail: String,
    /// The private details, one per digest: `None` where erased.
    pub private: Vec<Option<Private>>,
    /// The hash of the entry before it ([`GENESIS`] for the first).
    #[serde(serialize_with = "hex_hash")]
    pub prev: [u8; 32],
    /// [`entry_hash`] of this entry: the next entry's `prev`.
    #[serde(serialize_with = "hex_hash")]
    pub hash: [u8; 32],
}

impl AuditEntry {
    /// The digests of its private details, from its detail.
    pub fn sealed(&self) -> Vec<String> {
        serde_json::from_str::<serde_json::Value>(&self.detail)
            .ok()
            .and_then(|d| d.get("sealed").cloned())
            .and_then(|s| serde_json::from_value(s).ok())
            .unwrap_or_default()
    }

    /// Fills [`AuditEntry::private`] from the rows kept of it (part, salt, detail).
    pub(crate) fn fill_private(&mut self, rows: impl IntoIterator<Item = (i32, Private)>) {
        self.private = vec![None; self.sealed().len()];
        for (part, private) in rows {
            // A part the entry does not seal (added by hand) is kept, for the check to find.
            let part = usize::try_from(part).unwrap_or(usize::MAX).min(1 << 16);
            if part >= self.private.len() {
                self.private.resize(part + 1, None);
            }
            self.private[part] = Some(private);
        }
    }
}

/// The key the audit chain is keyed with (BLAKE3 in keyed mode), kept outside the database,
/// and the first entry it keys: entries before it were written unkeyed (by a version before
/// keys). Whoever can write the catalog but lacks the key cannot rewrite the log with a chain
/// that verifies.
#[derive(Clone, PartialEq, Eq)]
pub struct AuditKey {
    key: Option<[u8; 32]>,
    keyed_from: i64,
}

impl fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditKey")
            .field("keyed", &self.key.is_some())
            .field("keyed_from", &self.keyed_from)
            .finish()
    }
}

impl AuditKey {
    /// No key: every entry is hashed unkeyed (a catalog's own tests; never a lake).
    pub fn unkeyed() -> Self {
        Self {
            key: None,
            keyed_from: i64::MAX,
        }
    }

    /// `key` keys the entries from `keyed_from` on.
    pub fn new(key: [u8; 32], keyed_from: i64) -> Self {
        Self {
            key: Some(key),
            keyed_from,
        }
    }

    /// The first entry this key keys.
    pub fn keyed_from(&self) -> i64 {
        self.keyed_from
    }

    /// A key for `context` derived from this one (`None` when unkeyed).
    pub fn derive(&self, context: &str) -> Option<[u8; 32]> {
        self.key.map(|k| blake3::derive_key(context, &k))
    }

    /// A short public fingerprint of the key, to tell keys apart without showing them.
    pub fn fingerprint(&self) -> Option<String> {
        self.key
            .map(|k| hex(&blake3::derive_key("aperture audit key id", &k)[..8]))
    }

    fn hasher(&self, seq: i64) -> blake3::Hasher {
        match self.key {
            Some(key) if seq >= self.keyed_from => {
                let mut h = blake3::Hasher::new_keyed(&key);
                h.update(b"aperture-audit-v2");
                h
            }
            _ => {
                let mut h = blake3::Hasher::new();
                h.update(b"aperture-audit-v1");
                h
            }
        }
    }
}

fn hex_hash<S: serde::Serializer>(hash: &[u8; 32], s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&hex(hash))
}

/// The `prev` of the first entry.
pub const GENESIS: [u8; 32] = [0; 32];

/// The hash of an entry: BLAKE3 (keyed by `key` from its first keyed entry on) over the
/// previous hash and every field, each length-prefixed so that no two different entries
/// encode alike.
#[allow(clippy::too_many_arguments)] // every field of the entry
pub fn entry_hash(
    key: &AuditKey,
    prev: &[u8; 32],
    seq: i64,
    at: UnixMillis,
    actor: &str,
    action: &str,
    target: Option<&str>,
    detail: &str,
) -> [u8; 32] {
    let mut h = key.hasher(seq);
    h.update(prev);
    h.update(&seq.to_le_bytes());
    h.update(&at.0.to_le_bytes());
    for field in [Some(actor), Some(action), target, Some(detail)] {
        match field {
            Some(text) => {
                h.update(&[1]);
                h.update(&(text.len() as u64).to_le_bytes());
                h.update(text.as_bytes());
            }
            None => {
                h.update(&[0]);
            }
        }
    }
    *h.finalize().as_bytes()
}

/// The digest a chained entry holds of a private detail.
fn private_digest(salt: &[u8; 32], detail: &str) -> String {
    hex(blake3::keyed_hash(salt, detail.as_bytes()).as_bytes())
}

/// The entries that follow the last one stored (`last`: its seq and hash, `None` for an empty
/// log), chained, all stamped `at`, and their private details sealed (those naming an asset in
/// `gone`, erased meanwhile, are dropped): what a backend inserts, in order, under its append
/// lock.
pub(crate) fn chain_after(
    key: &AuditKey,
    last: Option<(i64, [u8; 32])>,
    at: UnixMillis,
    entries: &[NewAuditEntry],
    gone: &std::collections::BTreeSet<AssetId>,
) -> Result<(Vec<AuditEntry>, Vec<StoredPrivate>)> {
    let (mut seq, mut prev) = last.unwrap_or((0, GENESIS));
    let mut sealed = Vec::new();
    let mut chained = Vec::with_capacity(entries.len());
    for entry in entries {
        seq += 1;
        let mut detail = entry.detail.clone();
        let kept: Vec<&PrivateDetail> = entry
            .private
            .iter()
            .filter(|p| !p.asset.is_some_and(|a| gone.contains(&a)))
            .collect();
        let mut private = Vec::with_capacity(kept.len());
        if !kept.is_empty() {
            let mut digests = Vec::with_capacity(kept.len());
            for (part, p) in kept.into_iter().enumerate() {
                let mut salt = [0u8; 32];
                getrandom::fill(&mut salt).map_err(|e| Error::Backend {
                    backend: "random",
                    source: format!("no randomness for an audit salt: {e}").into(),
                })?;
                let text = p.detail.to_string();
                digests.push(private_digest(&salt, &text));
                private.push(Some(Private {
                    salt,
                    detail: text.clone(),
                }));
                sealed.push(StoredPrivate {
                    seq,
                    part: part as i32,
                    asset: p.asset,
                    path: p.path.clone(),
                    salt,
                    detail: text,
                });
            }
            if !detail.is_object() {
                detail = serde_json::json!({ "detail": detail });
            }
            detail["sealed"] = serde_json::json!(digests);
        }
        let detail = detail.to_string();
        let target = entry.target.as_deref();
        let hash = entry_hash(
            key,
            &prev,
            seq,
            at,
            &entry.actor,
            &entry.action,
            target,
            &detail,
        );
        chained.push(AuditEntry {
            seq,
            at,
            actor: entry.actor.clone(),
            action: entry.action.clone(),
            target: entry.target.clone(),
            detail,
            private,
            prev,
            hash,
        });
        prev = hash;
    }
    Ok((chained, sealed))
}

impl AuditEntry {
    fn expected_hash(&self, key: &AuditKey) -> [u8; 32] {
        entry_hash(
            key,
            &self.prev,
            self.seq,
            self.at,
            &self.actor,
            &self.action,
            self.target.as_deref(),
            &self.detail,
        )
    }
}

/// Walks a log in storage order and checks its chain, and the private details kept of it.
#[derive(Debug, Clone)]
pub struct ChainCheck {
    key: AuditKey,
    last_seq: i64,
    last_hash: [u8; 32],
    /// How many entries passed.
    pub checked: u64,
    /// How many of them were written unkeyed, before the key.
    pub unkeyed: u64,
    /// How many private details were erased (with their assets).
    pub erased: u64,
    /// Private details found missing that no `erased_details` entry has declared yet: each
    /// must be, later in the log, or it was deleted by hand.
    undeclared: std::collections::BTreeSet<(i64, i32)>,
}

/// The action of the entry an erasure appends, naming the private details it deleted.
pub const ERASED_DETAILS: &str = "erased_details";
/// The action of the entry that starts the keyed part of the log, with the key's fingerprint.
pub const AUDIT_KEY: &str = "audit_key";

/// Where and why a chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit entry #{seq}: {problem}")]
pub struct BrokenChain {
    /// The first entry found wrong (for a removed entry: the one after the gap).
    pub seq: i64,
    /// What is wrong with it, in words.
    pub problem: String,
}

impl ChainCheck {
    /// A check from the start of a log keyed with `key`.
    pub fn new(key: AuditKey) -> Self {
        Self {
            key,
            last_seq: 0,
            last_hash: GENESIS,
            checked: 0,
            unkeyed: 0,
            erased: 0,
            undeclared: Default::default(),
        }
    }

    /// Checks the next entry. Entries must come in storage order (`seq` ascending as stored).
    pub fn next(&mut self, entry: &AuditEntry) -> std::result::Result<(), BrokenChain> {
        let broken = |problem: String| BrokenChain {
            seq: entry.seq,
            problem,
        };
        if entry.seq <= self.last_seq {
            return Err(broken(format!(
                "out of order: it comes after entry #{}",
                self.last_seq
            )));
        }
        if entry.expected_hash(&self.key) != entry.hash {
            return Err(broken(if entry.seq < self.key.keyed_from {
                "its content does not match its hash: it was changed after it was written".into()
            } else {
                "its content does not match its keyed hash: it was changed after it was written, \
                 or the log was rewritten by someone without the audit key (or this is not the \
                 key it was written with)"
                    .into()
            }));
        }
        if entry.prev != self.last_hash {
            let problem = if entry.seq != self.last_seq + 1 {
                format!(
                    "entries #{} to #{} are missing: removed from the log, or moved",
                    self.last_seq + 1,
                    entry.seq - 1
                )
            } else {
                format!(
                    "it does not follow entry #{}: the log was reordered or an entry was replaced",
                    self.last_seq
                )
            };
            return Err(broken(problem));
        }
        if entry.seq != self.last_seq + 1 {
            // The chain links but the numbers skip: renumbered rows.
            return Err(broken(format!(
                "numbered #{} after #{}: entries were renumbered",
                entry.seq, self.last_seq
            )));
        }
        let sealed = entry.sealed();
        if entry.private.len() > sealed.len() {
            return Err(broken(format!(
                "it has {} private details but seals {}",
                entry.private.len(),
                sealed.len()
            )));
        }
        for (part, (digest, private)) in sealed.iter().zip(&entry.private).enumerate() {
            match private {
                Some(p) if private_digest(&p.salt, &p.detail) != *digest => {
                    return Err(broken(format!(
                        "its private detail {part} was changed after it was written"
                    )));
                }
                Some(_) => {}
                None => {
                    self.undeclared.insert((entry.seq, part as i32));
                }
            }
        }
        if entry.action == ERASED_DETAILS {
            let declared: Vec<(i64, i32)> =
                serde_json::from_str::<serde_json::Value>(&entry.detail)
                    .ok()
                    .and_then(|d| serde_json::from_value(d.get("details")?.clone()).ok())
                    .unwrap_or_default();
            for detail in declared {
                if self.undeclared.remove(&detail) {
                    self.erased += 1;
                }
            }
        }
        if entry.seq == self.key.keyed_from && self.key.key.is_some() {
            let fingerprint = serde_json::from_str::<serde_json::Value>(&entry.detail)
                .ok()
                .and_then(|d| d.get("fingerprint")?.as_str().map(str::to_owned));
            if entry.action != AUDIT_KEY || fingerprint != self.key.fingerprint() {
                return Err(broken(
                    "the keyed part of the log must start with the key's own entry \
                     (audit_key, with its fingerprint): it does not"
                        .into(),
                ));
            }
        }
        self.last_seq = entry.seq;
        self.last_hash = entry.hash;
        self.checked += 1;
        if entry.seq < self.key.keyed_from {
            self.unkeyed += 1;
        }
        Ok(())
    }

    /// Ends the walk: the log must reach its first keyed entry (else keyed entries were
    /// removed), and every private detail found missing must have been declared erased by a
    /// later entry (else it was deleted by hand).
    pub fn finish(&self) -> std::result::Result<(), BrokenChain> {
        if self.key.key.is_some() && self.last_seq < self.key.keyed_from {
            return Err(BrokenChain {
                seq: self.last_seq + 1,
                problem: format!(
                    "the log ends at #{} but its keyed part starts at #{}: entries were removed",
                    self.last_seq, self.key.keyed_from
                ),
            });
        }
        if let Some((seq, part)) = self.undeclared.first() {
            return Err(BrokenChain {
                seq: *seq,
                problem: format!(
                    "its private detail {part} is gone, and no erasure says it deleted it: it was \
                     deleted by hand"
                ),
            });
        }
        Ok(())
    }

    /// The last entry checked: record it somewhere else to detect a cut-off tail later.
    pub fn head(&self) -> (i64, String) {
        (self.last_seq, hex(&self.last_hash))
    }
}

/// Live web UI sessions one token may hold (see [`Access::open_session`]).
pub const SESSIONS_PER_TOKEN: i64 = 32;

/// Audit log operations, and tokens. Appends are serialised by the backend so the chain has
/// one order.
pub trait Access: Send + Sync {
    /// Stores a new token; its id must not exist yet.
    fn create_token(&self, token: &Token) -> Result<()>;
    /// A token by its id, revoked or not.
    fn token(&self, id: &str) -> Result<Option<Token>>;
    /// Every token, revoked ones too, oldest first.
    fn tokens(&self) -> Result<Vec<Token>>;
    /// Revokes a token and ends its sessions; false when it was already revoked.
    fn revoke_token(&self, id: &str) -> Result<bool>;
    /// Sets the collections a token may see (`None`: all).
    fn set_token_collections(&self, id: &str, collections: Option<&[String]>) -> Result<()>;

    /// Opens a web UI session for a token until `expires_at`. Only a hash of the session id
    /// is kept, so a reader of the catalog cannot take over a session. Expired sessions go,
    /// and a token keeps at most [`SESSIONS_PER_TOKEN`] (those that expire first go first), so
    /// signing in again and again cannot fill the catalog.
    fn open_session(&self, id_hash: &[u8; 32], token: &str, expires_at: UnixMillis) -> Result<()>;
    /// The token of a session that has not expired by `now`.
    fn session_token(&self, id_hash: &[u8; 32], now: UnixMillis) -> Result<Option<String>>;
    /// Ends a session (signing out); ending an unknown one is no error.
    fn close_session(&self, id_hash: &[u8; 32]) -> Result<()>;

    /// Appends entries in one transaction (group commit), chained to the last one with `key`,
    /// their private details stored beside the chain.
    fn append_audit(&self, key: &AuditKey, entries: &[NewAuditEntry]) -> Result<Vec<AuditEntry>>;
    /// Starts the keyed part of the log with `key`'s own entry ([`NewAuditEntry::audit_key`]),
    /// numbered `key.keyed_from()`: only when no entry starts one already and the log ends
    /// just before that number. False otherwise (another process keyed the log, or appended
    /// meanwhile), and nothing is written.
    fn start_keyed_audit(&self, key: &AuditKey) -> Result<bool>;
    /// Entries in storage order after `after` (a seq), at most `limit`, with the private
    /// details still kept of them.
    fn audit_entries(&self, after: i64, limit: usize) -> Result<Vec<AuditEntry>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_split_and_verify() {
        let new = NewToken::generate("ci", vec![Scope::Read], None).unwrap();
        let (id, secret) = split_token(&new.text).unwrap();
        assert_eq!(id, new.token.id);
        assert!(new.token.verify(secret));
        assert!(
            !new.token
                .verify(&secret.replace('a', "b").replace('1', "2"))
        );
        assert_eq!(split_token("apt_short_x"), None);
        assert_eq!(split_token("Bearer something"), None);
    }

    #[test]
    fn scopes() {
        assert_eq!(
            Scope::parse_list("search, read,read").unwrap(),
            vec![Scope::Read, Scope::Search]
        );
        assert!(Scope::parse_list("").is_err());
        assert!(
            Scope::parse("root")
                .unwrap_err()
                .to_string()
                .contains("root")
        );
        let mut t = NewToken::generate("x", vec![Scope::Admin], Some(vec!["a".into()]))
            .unwrap()
            .token;
        assert!(t.allows(Scope::Ingest));
        assert!(t.sees("a") && !t.sees("b"));
        t.revoked_at = Some(UnixMillis(1));
        assert!(!t.allows(Scope::Read));
    }

    fn key() -> AuditKey {
        AuditKey::new([7; 32], 1)
    }

    /// `n` entries: the key's own, then searches.
    fn entries(n: i64) -> Vec<NewAuditEntry> {
        std::iter::once(NewAuditEntry::audit_key(&key()))
            .chain((2..=n).map(|seq| {
                NewAuditEntry::new("a", "search", None, serde_json::json!({ "n": seq }))
            }))
            .collect()
    }

    fn chain(n: i64) -> Vec<AuditEntry> {
        chain_after(
            &key(),
            None,
            UnixMillis(1),
            &entries(n),
            &Default::default(),
        )
        .unwrap()
        .0
    }

    fn first_break(entries: &[AuditEntry]) -> Option<BrokenChain> {
        let mut check = ChainCheck::new(key());
        entries.iter().find_map(|e| check.next(e).err())
    }

    #[test]
    fn chain_checks_find_tampering() {
        let good = chain(6);
        assert_eq!(first_break(&good), None);

        let mut changed = good.clone();
        changed[2].detail = "{\"n\":99}".into();
        let broken = first_break(&changed).unwrap();
        assert_eq!(broken.seq, 3);
        assert!(broken.problem.contains("changed"), "{broken}");

        let mut removed = good.clone();
        removed.remove(3);
        let broken = first_break(&removed).unwrap();
        assert_eq!(broken.seq, 5);
        assert!(broken.problem.contains("#4 to #4 are missing"), "{broken}");

        let mut swapped = good.clone();
        swapped.swap(1, 2);
        assert_eq!(first_break(&swapped).unwrap().seq, 3);

        // Renumbering the moved rows so seq ascends does not hide it: the hash covers seq.
        let mut renumbered = swapped.clone();
        renumbered[1].seq = 2;
        renumbered[2].seq = 3;
        assert_eq!(first_break(&renumbered).unwrap().seq, 2);
    }

    #[test]
    fn a_log_rewritten_whole_without_the_key_is_found() {
        let mut entries = entries(4);
        // Someone with the catalog but not the key changes entry 2 and recomputes every hash
        // after it, with any key but ours, or unkeyed.
        entries[1].detail = serde_json::json!({ "n": "nothing to see" });
        for forger in [AuditKey::new([8; 32], 1), AuditKey::unkeyed()] {
            let mut rewritten = entries.clone();
            rewritten[0] = NewAuditEntry::audit_key(&forger);
            let forged = chain_after(
                &forger,
                None,
                UnixMillis(1),
                &rewritten,
                &Default::default(),
            )
            .unwrap()
            .0;
            // Internally consistent...
            let mut own = ChainCheck::new(forger.clone());
            assert!(forged.iter().all(|e| own.next(e).is_ok()));
            // ...and refused at its first entry under the lake's key.
            let broken = first_break(&forged).unwrap();
            assert_eq!(broken.seq, 1, "{broken}");
            assert!(broken.problem.contains("audit key"), "{broken}");
        }
        // Entries before the key was made are checked unkeyed, and counted; the keyed part
        // starts with the key's own entry.
        let older = AuditKey::new([7; 32], 3);
        let mut mixed = entries.clone();
        mixed.swap(0, 2);
        let mixed = chain_after(&older, None, UnixMillis(1), &mixed, &Default::default())
            .unwrap()
            .0;
        let mut check = ChainCheck::new(older.clone());
        assert!(mixed.iter().all(|e| check.next(e).is_ok()));
        check.finish().unwrap();
        assert_eq!((check.checked, check.unkeyed), (4, 2));
        // Cut back to before its keyed part, the log is refused.
        let mut check = ChainCheck::new(older);
        assert!(mixed[..2].iter().all(|e| check.next(e).is_ok()));
        assert!(check.finish().unwrap_err().problem.contains("keyed part"));
        // A keyed part that does not start with the key's entry is refused.
        let mut check = ChainCheck::new(AuditKey::new([7; 32], 2));
        assert!(mixed.iter().any(|e| check.next(e).is_err()));
    }

    #[test]
    fn private_details_are_sealed_and_can_be_erased() {
        let asset = AssetId::new();
        // (The first entry of a keyed log is the key's own; any entry may name an asset.)
        let entry = NewAuditEntry::audit_key(&key())
            .naming(asset, serde_json::json!({ "name": "secret-plan.pdf" }));
        let (mut chained, sealed) =
            chain_after(&key(), None, UnixMillis(1), &[entry], &Default::default()).unwrap();
        assert_eq!(sealed.len(), 1);
        assert_eq!(sealed[0].asset, Some(asset));
        // The chained detail holds a digest, not the name.
        assert!(
            !chained[0].detail.contains("secret-plan"),
            "{}",
            chained[0].detail
        );
        assert_eq!(chained[0].sealed().len(), 1);
        let mut check = ChainCheck::new(key());
        check.next(&chained[0]).unwrap();
        assert_eq!(check.erased, 0);

        // A changed private detail is found...
        let mut changed = chained.clone();
        changed[0].private[0].as_mut().unwrap().detail = "{\"name\":\"other.pdf\"}".into();
        let broken = ChainCheck::new(key()).next(&changed[0]).unwrap_err();
        assert!(broken.problem.contains("private detail 0"), "{broken}");
        // ...a missing one is found unless an erasure declared it...
        chained[0].private[0] = None;
        let mut check = ChainCheck::new(key());
        check.next(&chained[0]).unwrap();
        let broken = check.finish().unwrap_err();
        assert!(broken.problem.contains("by hand"), "{broken}");
        // ...and one an erasure declared is counted, and the chain holds.
        let declared = chain_after(
            &key(),
            Some((1, chained[0].hash)),
            UnixMillis(2),
            &[NewAuditEntry::erased_details(asset, &[(1, 0)])],
            &Default::default(),
        )
        .unwrap()
        .0;
        let mut check = ChainCheck::new(key());
        check.next(&chained[0]).unwrap();
        check.next(&declared[0]).unwrap();
        check.finish().unwrap();
        assert_eq!(check.erased, 1);
    }
}
