//! Writing the audit log: group commit for servers, single entries for the CLI, and tokens
//! (whose creation is itself audited).

use std::sync::Arc;

use aperture_catalog::{Backend, NewAuditEntry, NewToken, Scope, Token};

use crate::batch::GroupCommit;
use crate::{Error, Lake, Result};

/// Entries written in one transaction at most.
const AUDIT_BATCH: usize = 512;

/// Appends audit entries from many tasks in few transactions. An entry is durable when
/// [`AuditWriter::record`] returns.
#[derive(Clone)]
pub struct AuditWriter {
    batcher: GroupCommit<NewAuditEntry>,
}

impl AuditWriter {
    /// Starts the writer on the current Tokio runtime.
    pub fn start(catalog: Arc<dyn Backend>) -> Self {
        let batcher = GroupCommit::start(AUDIT_BATCH, move |entries: Vec<NewAuditEntry>| {
            catalog
                .append_audit(&entries)
                .map(|_| ())
                .map_err(|e| e.to_string())
        });
        Self { batcher }
    }

    /// Appends one entry; fails when the log cannot be written.
    pub async fn record(&self, entry: NewAuditEntry) -> Result<()> {
        self.batcher
            .submit(entry)
            .await
            .map_err(|reason| Error::Audit { reason })
    }
}

impl Lake {
    /// Appends one entry for something `actor` did (the CLI: `cli:<user>`).
    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        target: Option<String>,
        detail: serde_json::Value,
    ) -> Result<()> {
        let entry = NewAuditEntry {
            actor: actor.to_owned(),
            action: action.to_owned(),
            target,
            detail,
        };
        self.catalog(move |c| c.append_audit(&[entry]))
            .await
            .map(|_| ())
            .map_err(|e| Error::Audit {
                reason: e.to_string(),
            })
    }

    /// Stores a new token and audits its creation by `actor`.
    pub async fn create_token(&self, actor: &str, new: &NewToken) -> Result<()> {
        let token = new.token.clone();
        self.catalog(move |c| c.create_token(&token)).await?;
        self.audit(
            actor,
            "token_create",
            Some(new.token.id.clone()),
            serde_json::json!({
                "name": new.token.name,
                "scopes": new.token.scopes,
                "collections": new.token.collections,
            }),
        )
        .await
    }
}

/// Creates the first admin token of a fresh data folder (none when tokens exist).
pub(crate) async fn first_admin_token(lake: &Lake, actor: &str) -> Result<Option<String>> {
    if !lake.catalog(|c| c.tokens()).await?.is_empty() {
        return Ok(None);
    }
    let new = NewToken::generate("admin", vec![Scope::Admin], None)?;
    lake.create_token(actor, &new).await?;
    Ok(Some(new.text))
}

/// Fails when no token is active: a server would have nobody to serve.
pub fn require_tokens_exist(tokens: &[Token]) -> Result<()> {
    if tokens.iter().all(|t| t.revoked_at.is_some()) {
        return Err(Error::NoActiveToken);
    }
    Ok(())
}
