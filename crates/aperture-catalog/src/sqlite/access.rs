//! Tokens and the audit log on SQLite. Appends run in one IMMEDIATE transaction, which
//! SQLite serialises across connections and processes, so the chain has one order.

use aperture_core::UnixMillis;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::SqliteCatalog;
use crate::access::{
    AUDIT_KEY, Access, AuditEntry, AuditKey, NewAuditEntry, Private, Scope, Token, chain_after,
};
use crate::decode::hash32;
use crate::{Error, Result};

const TOKEN_COLUMNS: &str =
    "id, name, scopes, secret_hash, all_collections, created_at, revoked_at";
const AUDIT_COLUMNS: &str = "seq, at, actor, action, target, detail, prev, hash";

fn token_from_row(conn: &Connection, r: &Row<'_>) -> Result<Token> {
    let id: String = r.get(0)?;
    let scopes: String = r.get(2)?;
    let all: bool = r.get(4)?;
    let collections = if all {
        None
    } else {
        let mut stmt = conn.prepare_cached(
            "SELECT collection FROM token_collections WHERE token_id = ?1 ORDER BY collection",
        )?;
        let names = stmt
            .query_map([&id], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Some(names)
    };
    Ok(Token {
        name: r.get(1)?,
        scopes: Scope::parse_list(&scopes).map_err(|e| Error::Corrupt {
            reason: format!("token {id}: {e}"),
        })?,
        secret_hash: hash32(r.get(3)?, "a token's secret hash")?,
        collections,
        created_at: UnixMillis(r.get(5)?),
        revoked_at: r.get::<_, Option<i64>>(6)?.map(UnixMillis),
        id,
    })
}

fn audit_from_row(r: &Row<'_>) -> Result<AuditEntry> {
    Ok(AuditEntry {
        seq: r.get(0)?,
        at: UnixMillis(r.get(1)?),
        actor: r.get(2)?,
        action: r.get(3)?,
        target: r.get(4)?,
        detail: r.get(5)?,
        private: Vec::new(),
        prev: hash32(r.get(6)?, "an audit entry's previous hash")?,
        hash: hash32(r.get(7)?, "an audit entry's hash")?,
    })
}

fn write_grants(tx: &Connection, id: &str, collections: Option<&[String]>) -> Result<()> {
    tx.execute("DELETE FROM token_collections WHERE token_id = ?1", [id])?;
    for name in collections.unwrap_or_default() {
        tx.execute(
            "INSERT OR IGNORE INTO token_collections (token_id, collection) VALUES (?1, ?2)",
            params![id, name],
        )?;
    }
    Ok(())
}

impl Access for SqliteCatalog {
    fn create_token(&self, token: &Token) -> Result<()> {
        let mut conn = self.write();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let scopes: Vec<&str> = token.scopes.iter().map(|s| s.as_str()).collect();
        tx.execute(
            "INSERT INTO tokens (id, name, scopes, secret_hash, all_collections, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                token.id,
                token.name,
                scopes.join(","),
                token.secret_hash.as_slice(),
                token.collections.is_none(),
                token.created_at.0
            ],
        )?;
        write_grants(&tx, &token.id, token.collections.as_deref())?;
        tx.commit()?;
        Ok(())
    }

    fn token(&self, id: &str) -> Result<Option<Token>> {
        let conn = self.read();
        let mut stmt =
            conn.prepare_cached(&format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE id = ?1"))?;
        let mut rows = stmt.query([id])?;
        match rows.next()? {
            Some(row) => Ok(Some(token_from_row(&conn, row)?)),
            None => Ok(None),
        }
    }

    fn tokens(&self) -> Result<Vec<Token>> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens ORDER BY created_at, id"
        ))?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(token_from_row(&conn, row)?);
        }
        Ok(out)
    }

    fn revoke_token(&self, id: &str) -> Result<bool> {
        let conn = self.write();
        let exists: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM tokens WHERE id = ?1)",
            [id],
            |r| r.get(0),
        )?;
        if !exists {
            return Err(Error::NotFound {
                what: "token",
                key: id.to_owned(),
            });
        }
        let changed = conn.execute(
            "UPDATE tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            params![id, UnixMillis::now().0],
        )?;
        conn.execute("DELETE FROM sessions WHERE token_id = ?1", [id])?;
        Ok(changed == 1)
    }

    fn open_session(&self, id_hash: &[u8; 32], token: &str, expires_at: UnixMillis) -> Result<()> {
        let mut conn = self.write();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "DELETE FROM sessions WHERE expires_at <= ?1",
            [UnixMillis::now().0],
        )?;
        tx.execute(
            "INSERT INTO sessions (id_hash, token_id, expires_at) VALUES (?1, ?2, ?3)",
            params![id_hash.as_slice(), token, expires_at.0],
        )?;
        // The new session stays whatever the others' times (two sign-ins may share one).
        tx.execute(
            "DELETE FROM sessions WHERE token_id = ?1 AND id_hash != ?3 AND id_hash NOT IN \
             (SELECT id_hash FROM sessions WHERE token_id = ?1 AND id_hash != ?3 \
              ORDER BY expires_at DESC LIMIT ?2)",
            params![
                token,
                crate::access::SESSIONS_PER_TOKEN - 1,
                id_hash.as_slice()
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn session_token(&self, id_hash: &[u8; 32], now: UnixMillis) -> Result<Option<String>> {
        Ok(self
            .read()
            .query_row(
                "SELECT token_id FROM sessions WHERE id_hash = ?1 AND expires_at > ?2",
                params![id_hash.as_slice(), now.0],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn close_session(&self, id_hash: &[u8; 32]) -> Result<()> {
        self.write().execute(
            "DELETE FROM sessions WHERE id_hash = ?1",
            [id_hash.as_slice()],
        )?;
        Ok(())
    }

    fn set_token_collections(&self, id: &str, collections: Option<&[String]>) -> Result<()> {
        let mut conn = self.write();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let changed = tx.execute(
            "UPDATE tokens SET all_collections = ?2 WHERE id = ?1",
            params![id, collections.is_none()],
        )?;
        if changed == 0 {
            return Err(Error::NotFound {
                what: "token",
                key: id.to_owned(),
            });
        }
        write_grants(&tx, id, collections)?;
        tx.commit()?;
        Ok(())
    }

    fn append_audit(&self, key: &AuditKey, entries: &[NewAuditEntry]) -> Result<Vec<AuditEntry>> {
        let mut conn = self.write();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = append_in(&tx, key, entries)?;
        tx.commit()?;
        Ok(out)
    }

    fn start_keyed_audit(&self, key: &AuditKey) -> Result<bool> {
        let mut conn = self.write();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (keyed, next): (bool, i64) = tx.query_row(
            &format!(
                "SELECT EXISTS (SELECT 1 FROM audit WHERE action = '{AUDIT_KEY}'),
                        COALESCE(MAX(seq), 0) + 1 FROM audit"
            ),
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if keyed || next != key.keyed_from() {
            return Ok(false);
        }
        append_in(&tx, key, &[NewAuditEntry::audit_key(key)])?;
        tx.commit()?;
        Ok(true)
    }

    fn audit_entries(&self, after: i64, limit: usize) -> Result<Vec<AuditEntry>> {
        self.audit_page(after, limit)
    }
}

/// Appends entries in the caller's transaction, which holds the writer's lock.
fn append_in(
    tx: &rusqlite::Transaction<'_>,
    key: &AuditKey,
    entries: &[NewAuditEntry],
) -> Result<Vec<AuditEntry>> {
    let last: Option<(i64, Vec<u8>)> = tx
        .query_row(
            "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let last = match last {
        Some((seq, hash)) => Some((seq, hash32(hash, "an audit entry's hash")?)),
        None => None,
    };
    // Details of assets erased before this append are dropped, not sealed: the writer's
    // lock keeps an erasure from coming between this check and the insert.
    let mut gone = std::collections::BTreeSet::new();
    for asset in entries
        .iter()
        .flat_map(|e| e.private.iter().filter_map(|p| p.asset))
    {
        let exists: bool = tx
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM assets WHERE id = ?1)")?
            .query_row([asset.as_bytes().as_slice()], |r| r.get(0))?;
        if !exists {
            gone.insert(asset);
        }
    }
    let (out, sealed) = chain_after(key, last, UnixMillis::now(), entries, &gone)?;
    {
        let mut insert = tx.prepare_cached(&format!(
            "INSERT INTO audit ({AUDIT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
        ))?;
        for e in &out {
            insert.execute(params![
                e.seq,
                e.at.0,
                e.actor,
                e.action,
                e.target,
                e.detail,
                e.prev.as_slice(),
                e.hash.as_slice()
            ])?;
        }
        let mut private = tx.prepare_cached(
            "INSERT INTO audit_private (seq, part, asset_id, path, salt, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for p in &sealed {
            private.execute(params![
                p.seq,
                p.part,
                p.asset.map(|a| a.as_bytes().to_vec()),
                p.path,
                p.salt.as_slice(),
                p.detail
            ])?;
        }
    }
    Ok(out)
}

impl SqliteCatalog {
    fn audit_page(&self, after: i64, limit: usize) -> Result<Vec<AuditEntry>> {
        let conn = self.read();
        // Storage order is rowid order, which is seq: a reordering shows as a broken chain.
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit WHERE seq > ?1 ORDER BY seq LIMIT ?2"
        ))?;
        let mut rows = stmt.query(params![after, i64::try_from(limit).unwrap_or(i64::MAX)])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(audit_from_row(row)?);
        }
        if let (Some(first), Some(last)) = (out.first().map(|e| e.seq), out.last().map(|e| e.seq)) {
            let mut stmt = conn.prepare_cached(
                "SELECT seq, part, salt, detail FROM audit_private
                 WHERE seq BETWEEN ?1 AND ?2 ORDER BY seq, part",
            )?;
            let mut rows = stmt.query(params![first, last])?;
            let mut kept: std::collections::BTreeMap<i64, Vec<(i32, Private)>> =
                std::collections::BTreeMap::new();
            while let Some(r) = rows.next()? {
                kept.entry(r.get(0)?).or_default().push((
                    r.get(1)?,
                    Private {
                        salt: hash32(r.get(2)?, "an audit detail's salt")?,
                        detail: r.get(3)?,
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
