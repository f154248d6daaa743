//! The SQLite catalog: one writer connection, a few readers, WAL so readers never wait.

mod access;
mod catalog;
mod jobs;
mod rows;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use aperture_core::UnixMillis;
use rusqlite::{Connection, OpenFlags, TransactionBehavior, params};

use crate::*;
use catalog::{insert_insights, note_change};

/// Ids per `IN (...)` list: statements stay far below SQLite's parameter limit.
const IN_CHUNK: usize = 500;

/// Numbered migrations, applied in order; the catalog records the highest one applied.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("0001_init.sql")),
    (2, "changes", include_str!("0002_changes.sql")),
    (3, "access", include_str!("0003_access.sql")),
    (4, "parts", include_str!("0004_parts.sql")),
    (5, "scale_out", include_str!("0005_scale_out.sql")),
    (6, "erasure", include_str!("0006_erasure.sql")),
    (7, "data_keys", include_str!("0007_data_keys.sql")),
    (8, "claims", include_str!("0008_claims.sql")),
];
const READERS: usize = 4;
/// How long a statement waits for another connection's lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The embedded catalog: one SQLite file in WAL mode, one writer connection and a few readers,
/// so reads never wait for a write. A path that starts with `file:` is taken as a SQLite URI.
#[derive(Debug)]
pub struct SqliteCatalog {
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    pub(crate) buckets: crate::types::DeletionBuckets,
}

impl SqliteCatalog {
    /// Opens (creating if needed) the catalog file and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self> {
        let uri = path.as_os_str().as_encoded_bytes().starts_with(b"file:");
        if let Some(dir) = path.parent().filter(|d| !uri && !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::Backend {
                backend: "sqlite",
                source: format!("cannot create {}: {e}", dir.display()).into(),
            })?;
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let mut writer = Connection::open_with_flags(path, flags)?;
        configure(&writer, true)?;
        migrate(&mut writer)?;
        // What an erasure that could not finish its scrub left in the log goes now.
        checkpoint(&writer)?;
        let readers = (0..READERS)
            .map(|_| {
                let conn = Connection::open_with_flags(path, flags)?;
                configure(&conn, false)?;
                Ok(Mutex::new(conn))
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            writer: Mutex::new(writer),
            readers,
            next_reader: AtomicUsize::new(0),
            buckets: Default::default(),
        })
    }

    /// A private catalog in memory, for tests and examples. It uses SQLite's `memdb` VFS, which
    /// shares one database between this catalog's connections with ordinary locking (so the
    /// busy timeout applies), unlike shared-cache memory databases, which fail at once with
    /// "database table is locked" under concurrent use.
    pub fn open_in_memory() -> Result<Self> {
        let uri = format!("file:/aperture-{}?vfs=memdb", uuid::Uuid::now_v7().simple());
        Self::open(Path::new(&uri))
    }

    fn write(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a half-done transaction behind (rusqlite
        // rolls back on drop), so a poisoned lock is safe to take over.
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn read(&self) -> MutexGuard<'_, Connection> {
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed);
        for i in 0..self.readers.len() {
            if let Ok(conn) = self.readers[(start + i) % self.readers.len()].try_lock() {
                return conn;
            }
        }
        self.readers[start % self.readers.len()]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}

fn configure(conn: &Connection, writer: bool) -> Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "foreign_keys", true)?;
    // Deleted rows are overwritten with zeros, so what was erased leaves no bytes in the file.
    conn.pragma_update(None, "secure_delete", true)?;
    // One plan per statement, whatever its parameters: without this SQLite re-parses a cached
    // statement at every new binding of a parameter its planner looked at (a quarter of the
    // CPU of ingesting small files went to re-parsing the known-source lookup). The indexes
    // here are made for the queries, so the plan does not depend on the values.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    // Room for every statement the catalog caches (rusqlite keeps 16 by default, fewer than
    // one finish of a job uses with the claim beside it).
    conn.set_prepared_statement_cache_capacity(256);
    if writer {
        // WAL: readers never block the writer. FULL: a commit is on disk when it returns,
        // power cuts included; writers batch their rows, so that is one sync per batch.
        conn.pragma_update(None, "journal_mode", "wal")?;
        conn.pragma_update(None, "synchronous", "full")?;
    }
    Ok(())
}

/// Checkpoints the write-ahead log into the database and truncates it to nothing, so that no
/// bytes of deleted rows stay in it. Waits at most 100 ms for other connections (writers of
/// other processes are then kept waiting no longer than that); false when they held on.
pub(super) fn checkpoint(conn: &Connection) -> Result<bool> {
    conn.busy_timeout(Duration::from_millis(100))?;
    // (busy, frames in the log, frames checkpointed); busy = 1 when a reader or writer held on.
    let busy = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
        r.get::<_, i64>(0)
    });
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(busy? == 0)
}

fn migrate(conn: &mut Connection) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
    )?;
    let current: i64 = conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        [],
        |r| r.get(0),
    )?;
    let known = MIGRATIONS.last().map_or(0, |m| m.0);
    if current > known {
        return Err(Error::SchemaTooNew {
            found: current,
            known,
        });
    }
    for (version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Another process may have migrated while we waited for the lock.
        let done: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?1)",
            [version],
            |r| r.get(0),
        )?;
        if !done {
            tx.execute_batch(sql)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
                params![version, name, UnixMillis::now().0],
            )?;
            tracing::info!(version, name, "applied catalog migration");
        }
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A catalog made before jobs could be split keeps its jobs, their states and their
    /// uniqueness when it is migrated.
    #[test]
    fn migrating_to_parts_keeps_the_queue() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE schema_migrations (
                     version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
            )
            .unwrap();
            for (version, name, sql) in &MIGRATIONS[..3] {
                conn.execute_batch(sql).unwrap();
                conn.execute(
                    "INSERT INTO schema_migrations VALUES (?1, ?2, 0)",
                    params![version, name],
                )
                .unwrap();
            }
            conn.execute_batch(
                "INSERT INTO collections (id, name, created_at) VALUES (1, 'c', 0);
                 INSERT INTO assets VALUES (x'01', 1, x'02', 3, 'video', 'video/mp4', 0, NULL, '{}');
                 INSERT INTO jobs (asset_id, analyzer, analyzer_version, state, priority, attempts,
                                   run_after, last_error, created_at, updated_at)
                 VALUES (x'01', 'video', '1', 'failed', 120, 3, 0, 'broken', 0, 5);",
            )
            .unwrap();
        }
        let catalog = SqliteCatalog::open(&path).unwrap();
        let conn = catalog.read();
        let row: (String, String, i64, String, i64, i64) = conn
            .query_row(
                "SELECT analyzer, state, attempts, last_error, part, parts FROM jobs",
                [],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                },
            )
            .unwrap();
        assert_eq!(
            row,
            ("video".into(), "failed".into(), 3, "broken".into(), 0, 0)
        );
        let again = conn.execute(
            "INSERT INTO jobs (asset_id, analyzer, state, run_after, created_at, updated_at)
             VALUES (x'01', 'video', 'queued', 0, 0, 0)",
            [],
        );
        assert!(again.is_err(), "one job per asset and analyzer still");
        let version: i64 = conn
            .query_row("SELECT MAX(version) FROM schema_migrations", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert!(version >= 4);
    }
}
