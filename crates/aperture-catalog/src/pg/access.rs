//! Tokens, web sessions and the audit log on PostgreSQL. Appends hold one advisory lock until
//! they commit, so the chain has one order whichever server writes.

use aperture_core::UnixMillis;
use postgres::{GenericClient, Row};

use super::{AUDIT_LOCK, PgCatalog};
use crate::access::{
    AUDIT_KEY, Access, AuditEntry, AuditKey, NewAuditEntry, Private, Scope, Token, chain_after,
};
use crate::decode::hash32;
use crate::{Error, Result};

const TOKEN_COLUMNS: &str =
    "id, name, scopes, secret_hash, all_collections, created_at, revoked_at";
const AUDIT_COLUMNS: &str = "seq, at, actor, action, target, detail, prev, hash";

fn token_from_row(client: &mut impl GenericClient, r: &Row) -> Result<Token> {
    let id: String = r.get(0);
    let scopes: String = r.get(2);
    let collections = if r.get::<_, bool>(4) {
        None
    } else {
        let names = client.query(
            "SELECT collection FROM token_collections WHERE token_id = $1 ORDER BY collection",
            &[&id],
        )?;
        Some(names.iter().map(|n| n.get(0)).collect())
    };
    Ok(Token {
        name: r.get(1),
        scopes: Scope::parse_list(&scopes).map_err(|e| Error::Corrupt {
            reason: format!("token {id}: {e}"),
        })?,
        secret_hash: hash32(r.get(3), "a token's secret hash")?,
        collections,
        created_at: UnixMillis(r.get(5)),
        revoked_at: r.get::<_, Option<i64>>(6).map(UnixMillis),
        id,
    })
}

fn audit_from_row(r: &Row) -> Result<AuditEntry> {
    Ok(AuditEntry {
        seq: r.get(0),
        at: UnixMillis(r.get(1)),
        actor: r.get(2),
        action: r.get(3),
        target: r.get(4),
        detail: r.get(5),
        private: Vec::new(),
        prev: hash32(r.get(6), "an audit entry's previous hash")?,
        hash: hash32(r.get(7), "an audit entry's hash")?,
    })
}

fn write_grants(
    tx: &mut impl GenericClient,
    id: &str,
    collections: Option<&[String]>,
) -> Result<()> {
    tx.execute("DELETE FROM token_collections WHERE token_id = $1", &[&id])?;
    for name in collections.unwrap_or_default() {
        tx.execute(
            "INSERT INTO token_collections (token_id, collection) VALUES ($1, $2)
             ON CONFLICT DO NOTHING",
            &[&id, name],
        )?;
    }
    Ok(())
}

impl Access for PgCatalog {
    fn create_token(&self, token: &Token) -> Result<()> {
        let scopes: Vec<&str> = token.scopes.iter().map(|s| s.as_str()).collect();
        let scopes = scopes.join(",");
        self.tx(|tx| {
            tx.execute(
                "INSERT INTO tokens (id, name, scopes, secret_hash, all_collections, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &token.id,
                    &token.name,
                    &scopes,
                    &token.secret_hash.as_slice(),
                    &token.collections.is_none(),
                    &token.created_at.0,
                ],
            )?;
            write_grants(tx, &token.id, token.collections.as_deref())
        })
    }

    fn token(&self, id: &str) -> Result<Option<Token>> {
        self.with_retry(|c| {
            let row = c.query_opt(
                &format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE id = $1"),
                &[&id],
            )?;
            row.map(|r| token_from_row(c, &r)).transpose()
        })
    }

    fn tokens(&self) -> Result<Vec<Token>> {
        self.with_retry(|c| {
            let rows = c.query(
                &format!("SELECT {TOKEN_COLUMNS} FROM tokens ORDER BY created_at, id"),
                &[],
            )?;
            rows.iter().map(|r| token_from_row(c, r)).collect()
        })
    }

    fn revoke_token(&self, id: &str) -> Result<bool> {
        self.tx(|tx| {
            let exists: bool = tx
                .query_one("SELECT EXISTS (SELECT 1 FROM tokens WHERE id = $1)", &[&id])?
                .get(0);
            if !exists {
                return Err(Error::NotFound {
                    what: "token",
                    key: id.to_owned(),
                });
            }
            let changed = tx.execute(
                "UPDATE tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
                &[&id, &UnixMillis::now().0],
            )?;
            tx.execute("DELETE FROM sessions WHERE token_id = $1", &[&id])?;
            Ok(changed == 1)
        })
    }

    fn set_token_collections(&self, id: &str, collections: Option<&[String]>) -> Result<()> {
        self.tx(|tx| {
            let changed = tx.execute(
                "UPDATE tokens SET all_collections = $2 WHERE id = $1",
                &[&id, &collections.is_none()],
            )?;
            if changed == 0 {
                return Err(Error::NotFound {
                    what: "token",
                    key: id.to_owned(),
                });
            }
            write_grants(tx, id, collections)
        })
    }

    fn open_session(&self, id_hash: &[u8; 32], token: &str, expires_at: UnixMillis) -> Result<()> {
        self.tx(|tx| {
            tx.execute(
                "DELETE FROM sessions WHERE expires_at <= $1",
                &[&UnixMillis::now().0],
            )?;
            tx.execute(
                "INSERT INTO sessions (id_hash, token_id, expires_at) VALUES ($1, $2, $3)",
                &[&id_hash.as_slice(), &token, &expires_at.0],
            )?;
            // The new session stays whatever the others' times (two sign-ins may share one).
            tx.execute(
                "DELETE FROM sessions WHERE token_id = $1 AND id_hash != $3 AND id_hash NOT IN \
                 (SELECT id_hash FROM sessions WHERE token_id = $1 AND id_hash != $3 \
                  ORDER BY expires_at DESC LIMIT $2)",
                &[
                    &token,
                    &(crate::access::SESSIONS_PER_TOKEN - 1),
                    &id_hash.as_slice(),
                ],
            )?;
            Ok(())
        })
    }

    fn session_token(&self, id_hash: &[u8; 32], now: UnixMillis) -> Result<Option<String>> {
        self.with_retry(|c| {
            Ok(c.query_opt(
                "SELECT token_id FROM sessions WHERE id_hash = $1 AND expires_at > $2",
                &[&id_hash.as_slice(), &now.0],
            )?
            .map(|r| r.get(0)))
        })
    }

    fn close_session(&self, id_hash: &[u8; 32]) -> Result<()> {
        self.with_retry(|c| {
            c.execute(
                "DELETE FROM sessions WHERE id_hash = $1",
                &[&id_hash.as_slice()],
            )?;
            Ok(())
        })
    }

    fn append_audit(&self, key: &AuditKey, entries: &[NewAuditEntry]) -> Result<Vec<AuditEntry>> {
        // An append whose commit went unanswered is looked up by its transaction id
        // (`Postgres::tx`); where that cannot tell (the server restarted), by its last entry:
        // seq and hash, which chains the time and everything before. Appended once, never
        // twice. (An identical entry appended by another process in the same millisecond at
        // the same place would be taken for it.)
        self.db.tx_checked(
            |tx| {
                tx.execute("SELECT pg_advisory_xact_lock($1)", &[&AUDIT_LOCK])?;
                append_in(tx, key, entries)
            },
            |tx, written: &Vec<AuditEntry>| {
                let Some(last) = written.last() else {
                    return Ok(true);
                };
                // Held by the append until it ends: an append still committing is waited for.
                tx.execute("SELECT pg_advisory_xact_lock($1)", &[&AUDIT_LOCK])?;
                Ok(tx
                    .query_one(
                        "SELECT EXISTS (SELECT 1 FROM audit WHERE seq = $1 AND hash = $2)",
                        &[&last.seq, &last.hash.as_slice()],
                    )?
                    .get(0))
            },
        )
    }

    fn start_keyed_audit(&self, key: &AuditKey) -> Result<bool> {
        self.tx(|tx| {
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&AUDIT_LOCK])?;
            let row = tx.query_one(
                &format!(
                    "SELECT EXISTS (SELECT 1 FROM audit WHERE action = '{AUDIT_KEY}'),
                            COALESCE(MAX(seq), 0) + 1 FROM audit"
                ),
                &[],
            )?;
            if row.get::<_, bool>(0) || row.get::<_, i64>(1) != key.keyed_from() {
                return Ok(false);
            }
            append_in(tx, key, &[NewAuditEntry::audit_key(key)])?;
            Ok(true)
        })
    }

    fn audit_entries(&self, after: i64, limit: usize) -> Result<Vec<AuditEntry>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.with_retry(|c| {
            Ok(c.query(
                &format!("SELECT {AUDIT_COLUMNS} FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2"),
                &[&after, &limit],
            )?)
        })?;
        let mut out = rows
            .iter()
            .map(audit_from_row)
            .collect::<Result<Vec<_>>>()?;
        if let (Some(first), Some(last)) = (out.first().map(|e| e.seq), out.last().map(|e| e.seq)) {
            let rows = self.with_retry(|c| {
                Ok(c.query(
                    "SELECT seq, part, salt, detail FROM audit_private
                     WHERE seq BETWEEN $1 AND $2 ORDER BY seq, part",
                    &[&first, &last],
                )?)
            })?;
            let mut kept: std::collections::BTreeMap<i64, Vec<(i32, Private)>> =
                std::collections::BTreeMap::new();
            for r in &rows {
                kept.entry(r.get(0)).or_default().push((
                    r.get(1),
                    Private {
                        salt: hash32(r.get(2), "an audit detail's salt")?,
                        detail: r.get(3),
                    },
                ));
            }
            for e in &mut out {
                e.fill_private(kept.remove(&e.seq).unwrap_or_default());
            }
        }
        Ok(out)
    }
}

/// Appends entries in the caller's transaction, which holds the append lock.
fn append_in(
    tx: &mut postgres::Transaction<'_>,
    key: &AuditKey,
    entries: &[NewAuditEntry],
) -> Result<Vec<AuditEntry>> {
    let last = tx.query_opt("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", &[])?;
    let last = match last {
        Some(r) => Some((r.get(0), hash32(r.get(1), "an audit entry's hash")?)),
        None => None,
    };
    // Details of assets erased before this append are dropped, not sealed; an erasure
    // that commits after this check makes the foreign key refuse the append (it fails,
    // and is retried), so no detail outlives its asset.
    let referenced: Vec<Vec<u8>> = entries
        .iter()
        .flat_map(|e| e.private.iter().filter_map(|p| p.asset))
        .map(|a| a.as_bytes().to_vec())
        .collect();
    let present: std::collections::BTreeSet<Vec<u8>> = tx
        .query("SELECT id FROM assets WHERE id = ANY($1)", &[&referenced])?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let gone = entries
        .iter()
        .flat_map(|e| e.private.iter().filter_map(|p| p.asset))
        .filter(|a| !present.contains(a.as_bytes().as_slice()))
        .collect();
    let (out, sealed) = chain_after(key, last, UnixMillis::now(), entries, &gone)?;
    let insert = tx.prepare(&format!(
        "INSERT INTO audit ({AUDIT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    ))?;
    for e in &out {
        tx.execute(
            &insert,
            &[
                &e.seq,
                &e.at.0,
                &e.actor,
                &e.action,
                &e.target,
                &e.detail,
                &e.prev.as_slice(),
                &e.hash.as_slice(),
            ],
        )?;
    }
    let private = tx.prepare(
        "INSERT INTO audit_private (seq, part, asset_id, path, salt, detail)
                 VALUES ($1, $2, $3, $4, $5, $6)",
    )?;
    for p in &sealed {
        tx.execute(
            &private,
            &[
                &p.seq,
                &p.part,
                &p.asset.map(|a| a.as_bytes().to_vec()),
                &p.path,
                &p.salt.as_slice(),
                &p.detail,
            ],
        )?;
    }
    Ok(out)
}
