//! Writing the audit log: group commit for servers, single entries for the CLI, and tokens
//! (whose creation is itself audited).

use aperture_catalog::{NewAuditEntry, NewToken, Token};

use crate::{Error, Lake, Result};
use aperture_ingest::GroupCommit;

/// Entries written in one transaction at most.
const AUDIT_BATCH: usize = 512;

/// Appends audit entries from many tasks in few transactions. An entry is durable when
/// [`AuditWriter::record`] returns.
#[derive(Clone)]
pub struct AuditWriter {
    batcher: GroupCommit<NewAuditEntry, Result<(), String>>,
}

impl AuditWriter {
    /// Starts the writer on the current Tokio runtime, for `lake`'s log.
    pub fn start(lake: &Lake) -> Self {
        let (catalog, key, head) = (
            lake.catalog.clone(),
            lake.audit_key.clone(),
            lake.audit_head.clone(),
        );
        let batcher = GroupCommit::start(
            AUDIT_BATCH,
            Box::new(move |entries: Vec<NewAuditEntry>| {
                let (catalog, key, head) = (catalog.clone(), key.clone(), head.clone());
                Box::pin(async move {
                    let n = entries.len();
                    // One transaction for the batch: its entries are durable together or not.
                    let result = tokio::task::spawn_blocking(move || {
                        let written = catalog.append_audit(&key, &entries)?;
                        if let Some(last) = written.last() {
                            crate::audit_key::record_head(&head, &key, last.seq, &last.hash);
                        }
                        Ok::<_, aperture_catalog::Error>(())
                    })
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r.map_err(|e| e.to_string()));
                    vec![result; n]
                })
            }),
        );
        Self { batcher }
    }

    /// Appends one entry; fails when the log cannot be written.
    pub async fn record(&self, entry: NewAuditEntry) -> Result<()> {
        self.batcher
            .submit(entry)
            .await
            .map_err(|e| Error::Audit {
                reason: e.to_string(),
            })?
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
        self.record_audit(NewAuditEntry::new(actor, action, target, detail))
            .await
    }

    /// Appends one entry, private details and all.
    pub async fn record_audit(&self, entry: NewAuditEntry) -> Result<()> {
        let (key, head) = (self.audit_key.clone(), self.audit_head.clone());
        self.catalog(move |c| {
            let written = c.append_audit(&key, &[entry])?;
            if let Some(last) = written.last() {
                crate::audit_key::record_head(&head, &key, last.seq, &last.hash);
            }
            Ok(())
        })
        .await
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

/// Fails when no token is active: a server would have nobody to serve.
pub fn require_tokens_exist(tokens: &[Token]) -> Result<()> {
    if tokens.iter().all(|t| t.revoked_at.is_some()) {
        return Err(Error::NoActiveToken);
    }
    Ok(())
}

/// What [`Lake::verify_audit`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditVerdict {
    /// Every entry hashes the one before; the head (seq, hash) to keep elsewhere.
    Intact {
        /// Entries checked.
        checked: u64,
        /// Of them, entries written before the log had a key (by an older version).
        unkeyed: u64,
        /// Private details erased with their assets.
        erased: u64,
        /// The last entry's number.
        seq: i64,
        /// The last entry's hash.
        hash: String,
    },
    /// The chain breaks at this entry (changed, missing or moved).
    Broken {
        /// The first bad entry.
        seq: i64,
        /// What is wrong with it.
        problem: String,
        /// Sound entries before it.
        checked: u64,
    },
    /// The head recorded earlier is there but is another entry: the log was rewritten.
    Rewritten {
        /// The head's number.
        seq: i64,
    },
    /// The head recorded earlier is gone: the log was cut short.
    CutShort {
        /// The head's number.
        seq: i64,
        /// Where the log ends now.
        ends_at: i64,
    },
}

/// Entries read at once when walking the log.
const AUDIT_PAGE: usize = 10_000;

impl Lake {
    /// The last `limit` entries. The log is walked from the start in pages (seq has no gaps in
    /// a sound log, but a damaged one must still show).
    pub async fn audit_tail(&self, limit: usize) -> Result<Vec<aperture_catalog::AuditEntry>> {
        let mut tail = std::collections::VecDeque::new();
        self.audit_pages(|page| {
            for e in page {
                if tail.len() == limit {
                    tail.pop_front();
                }
                tail.push_back(e);
            }
            true
        })
        .await?;
        Ok(tail.into())
    }

    /// Walks the log from the start in pages; `f` takes each page and says whether to go on.
    async fn audit_pages(
        &self,
        mut f: impl FnMut(Vec<aperture_catalog::AuditEntry>) -> bool,
    ) -> Result<()> {
        let mut after = 0;
        loop {
            let page = self
                .catalog(move |c| c.audit_entries(after, AUDIT_PAGE))
                .await?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            after = last.seq;
            if !f(page) {
                return Ok(());
            }
        }
    }

    /// Walks the hash chain from the first entry and names the first bad one; with `head`
    /// (a `(seq, hash)` kept elsewhere from an earlier check) also catches a log that was cut
    /// short or rewritten whole.
    pub async fn verify_audit(&self, head: Option<(i64, String)>) -> Result<AuditVerdict> {
        // Without a head given, the one written beside the key after each append.
        let head = match head {
            Some(head) => Some(head),
            None => crate::audit_key::read_head(&self.audit_head, &self.audit_key)?,
        };
        let mut check = aperture_catalog::access::ChainCheck::new((*self.audit_key).clone());
        let mut head_seen = false;
        let mut verdict = None;
        self.audit_pages(|page| {
            for e in &page {
                if let Err(broken) = check.next(e) {
                    verdict = Some(AuditVerdict::Broken {
                        seq: broken.seq,
                        problem: broken.problem,
                        checked: check.checked,
                    });
                    return false;
                }
                if let Some((seq, hash)) = &head
                    && e.seq == *seq
                {
                    head_seen = true;
                    if check.head().1 != *hash {
                        verdict = Some(AuditVerdict::Rewritten { seq: *seq });
                        return false;
                    }
                }
            }
            true
        })
        .await?;
        if let Some(verdict) = verdict {
            return Ok(verdict);
        }
        if let Err(broken) = check.finish() {
            return Ok(AuditVerdict::Broken {
                seq: broken.seq,
                problem: broken.problem,
                checked: check.checked,
            });
        }
        let (seq, hash) = check.head();
        if let Some((expected, _)) = head
            && !head_seen
        {
            return Ok(AuditVerdict::CutShort {
                seq: expected,
                ends_at: seq,
            });
        }
        Ok(AuditVerdict::Intact {
            checked: check.checked,
            unkeyed: check.unkeyed,
            erased: check.erased,
            seq,
            hash,
        })
    }
}
