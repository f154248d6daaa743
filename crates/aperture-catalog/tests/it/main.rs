//! The catalog conformance suite on SQLite, in memory and in a file.

use aperture_catalog::{Catalog, SqliteCatalog};

mod in_memory {
    use super::*;
    aperture_catalog::catalog_conformance!(|| SqliteCatalog::open_in_memory().unwrap());
}

mod on_disk {
    use super::*;
    aperture_catalog::catalog_conformance!(|| {
        // The directory is leaked on purpose: the catalog outlives this closure.
        let dir = tempfile::tempdir().unwrap().keep();
        SqliteCatalog::open(&dir.join("catalog.db")).unwrap()
    });
}

#[test]
fn reopening_keeps_data_and_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.db");
    let id = {
        let catalog = SqliteCatalog::open(&path).unwrap();
        catalog.ensure_collection("kept").unwrap().id
    };
    let catalog = SqliteCatalog::open(&path).unwrap();
    assert_eq!(catalog.collection("kept").unwrap().id, id);
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.db");
    drop(SqliteCatalog::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)",
        [],
    )
    .unwrap();
    drop(conn);
    let err = SqliteCatalog::open(&path).unwrap_err();
    assert!(err.to_string().contains("newer"), "{err}");
}

#[test]
fn a_file_that_is_not_a_catalog_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.db");
    std::fs::write(
        &path,
        b"this is not a database, just text padding it out a bit",
    )
    .unwrap();
    let err = SqliteCatalog::open(&path).unwrap_err();
    assert!(err.to_string().contains("not a database"), "{err}");
}

/// The same suite on PostgreSQL: a fresh database per test, on the server
/// `APERTURE_TEST_POSTGRES` names (`scripts/services.sh` starts one; `scripts/test.sh` always
/// does). Without it the tests say they were skipped; under CI they fail instead.
mod postgres {
    use std::time::{Duration, Instant};

    use aperture_catalog::conformance::{PgServer, fresh_database, shared_server};
    use aperture_catalog::{
        Access, Catalog, CollectionId, JobQueue, NewAsset, NewAuditEntry, NewSource, PgCatalog,
        Recorded, access::AuditKey,
    };
    use aperture_core::{AssetId, ContentHash, KeyOwner, MediaKind, MediaMetadata};
    use serde_json::json;

    mod conformance {
        aperture_catalog::catalog_conformance!(if super::server().is_some(); super::fresh);
    }

    /// The server's URL, if there is one to test against.
    pub fn server() -> Option<String> {
        shared_server()
    }

    /// The URL of a new, empty database on the test server.
    pub fn fresh_url() -> String {
        fresh_database(&server().expect("a test server"), "aperture_test")
    }

    pub fn fresh() -> PgCatalog {
        PgCatalog::open(&fresh_url()).unwrap()
    }

    fn asset(collection: CollectionId, content: &[u8], path: &str) -> NewAsset {
        NewAsset {
            collection,
            hash: ContentHash::of(content),
            size: content.len() as u64,
            kind: MediaKind::Other,
            mime: "application/octet-stream".into(),
            metadata: MediaMetadata::default(),
            source: NewSource {
                path_bytes: path.as_bytes().to_vec(),
                path: path.into(),
                name: path.into(),
                file_size: content.len() as u64,
                modified_ns: None,
            },
            generation_seen: 0,
            jobs: vec![("labels".into(), 0)],
        }
    }

    /// A change committed after one written earlier never gets the lower number: a follower
    /// that read the later one would skip the earlier for ever. The feed waits for the
    /// transaction under way instead.
    #[test]
    fn the_feed_never_skips_a_transaction_that_commits_late() {
        if server().is_none() {
            return;
        }
        let url = fresh_url();
        let catalog = std::sync::Arc::new(PgCatalog::open(&url).unwrap());
        let c = catalog.ensure_collection("c").unwrap().id;
        let early = catalog.record(&[asset(c, b"early", "/early")]).unwrap();
        let early = match early[0] {
            Recorded::Created(id) => id,
            other => panic!("{other:?}"),
        };
        let start = catalog.last_change().unwrap();
        // A transaction that notes a change to `early` and stays open.
        let mut slow = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
        let mut tx = slow.transaction().unwrap();
        tx.execute(
            "INSERT INTO changes (asset_id) VALUES ($1)",
            &[&early.as_bytes().as_slice()],
        )
        .unwrap();
        // A later one commits first.
        let late = catalog.record(&[asset(c, b"late", "/late")]).unwrap();
        let Recorded::Created(late) = late[0] else {
            panic!("{late:?}")
        };
        let reader = {
            let catalog = catalog.clone();
            std::thread::spawn(move || catalog.changes(start, 100).unwrap())
        };
        std::thread::sleep(Duration::from_millis(500));
        assert!(!reader.is_finished(), "the feed waits for the open writer");
        tx.commit().unwrap();
        let feed: Vec<AssetId> = reader.join().unwrap().iter().map(|c| c.asset).collect();
        assert_eq!(
            feed,
            [early, late],
            "the earlier writer's change comes first"
        );
    }

    /// An asset's key made while the asset is being erased goes with it: the keeper holds the
    /// asset's row, so the erasure waits for its key and deletes it, instead of committing
    /// first and leaving the key behind. The keeper is held mid-way by another transaction
    /// inserting the same key, which it must wait for.
    #[test]
    fn an_asset_key_made_during_its_erasure_goes_with_it() {
        if server().is_none() {
            return;
        }
        let url = fresh_url();
        let catalog = std::sync::Arc::new(PgCatalog::open(&url).unwrap());
        let c = catalog.ensure_collection("c").unwrap().id;
        let id = match catalog.record(&[asset(c, b"x", "/x")]).unwrap()[0] {
            Recorded::Created(id) => id,
            other => panic!("{other:?}"),
        };
        let owner = KeyOwner::Asset(id);
        let mut other = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
        let mut tx = other.transaction().unwrap();
        tx.execute(
            "INSERT INTO data_keys (owner, wrapped, created_at) VALUES ($1, 'other', 0)",
            &[&owner.to_bytes()],
        )
        .unwrap();
        let keeper = {
            let catalog = catalog.clone();
            std::thread::spawn(move || catalog.keep_data_key(owner, b"kept").unwrap())
        };
        std::thread::sleep(Duration::from_millis(300));
        let eraser = {
            let catalog = catalog.clone();
            std::thread::spawn(move || catalog.delete_asset(id).unwrap())
        };
        std::thread::sleep(Duration::from_millis(300));
        assert!(!eraser.is_finished(), "the erasure waits for the keeper");
        tx.rollback().unwrap();
        assert_eq!(keeper.join().unwrap(), Some(b"kept".to_vec()));
        eraser.join().unwrap();
        assert_eq!(catalog.data_key(owner).unwrap(), None, "the key went too");
        assert_eq!(catalog.keep_data_key(owner, b"late").unwrap(), None);
    }

    /// An idle worker waiting for jobs wakes when another process queues one, long before its
    /// timeout.
    #[test]
    fn waiting_workers_wake_on_new_jobs() {
        if server().is_none() {
            return;
        }
        let url = fresh_url();
        let worker = PgCatalog::open(&url).unwrap();
        let ingest = PgCatalog::open(&url).unwrap();
        assert!(
            !worker.wait_for_jobs(Duration::from_millis(200)).unwrap(),
            "nothing queued"
        );
        let c = ingest.ensure_collection("c").unwrap().id;
        let started = Instant::now();
        let waiter = std::thread::spawn(move || worker.wait_for_jobs(Duration::from_secs(30)));
        std::thread::sleep(Duration::from_millis(300));
        ingest.record(&[asset(c, b"x", "/x")]).unwrap();
        assert!(waiter.join().unwrap().unwrap(), "woken, not timed out");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    /// The server stops and starts again while writes go on: every write is retried until it
    /// lands, once, and the catalog is whole afterwards. Also when it crashes (immediate).
    #[test]
    fn writes_survive_a_server_restart() {
        let Some(server) = PgServer::start() else {
            return;
        };
        let url = server.database("restart");
        let catalog = std::sync::Arc::new(PgCatalog::open(&url).unwrap());
        let c = catalog.ensure_collection("c").unwrap().id;
        let writer = {
            let catalog = catalog.clone();
            std::thread::spawn(move || {
                for n in 0..200 {
                    let content = format!("file {n}");
                    let item = asset(c, content.as_bytes(), &format!("/{n}"));
                    // A commit cut off by the crash is looked up. Only one the restarted
                    // server says committed stays unknown (the id may be another's): recording
                    // again, as ingest does, then finds it known.
                    let mut unknown = 0;
                    let out = loop {
                        match catalog.record(std::slice::from_ref(&item)) {
                            Ok(out) => break out,
                            Err(e) if e.is_outcome_unknown() && unknown < 3 => unknown += 1,
                            Err(e) => panic!("file {n}: {e}"),
                        }
                    };
                    assert!(
                        matches!(out[0], Recorded::Created(_))
                            || (unknown > 0 && matches!(out[0], Recorded::Known(_))),
                        "file {n}: {:?}",
                        out[0]
                    );
                    std::thread::sleep(Duration::from_millis(10));
                }
            })
        };
        // Audit appends go on beside: one whose commit went unanswered is looked up or run
        // again, so each is appended exactly once.
        let auditor = {
            let catalog = catalog.clone();
            std::thread::spawn(move || {
                let key = AuditKey::unkeyed();
                for n in 0..150 {
                    let entry = NewAuditEntry::new("t", "read", Some(format!("{n}")), json!({}));
                    if let Err(e) = catalog.append_audit(&key, &[entry]) {
                        panic!("audit entry {n}: {e}");
                    }
                    std::thread::sleep(Duration::from_millis(12));
                }
            })
        };
        for mode in ["fast", "immediate"] {
            std::thread::sleep(Duration::from_millis(400));
            server.stop(mode);
            std::thread::sleep(Duration::from_millis(700));
            server.resume();
        }
        writer
            .join()
            .expect("every write landed despite the restarts");
        auditor
            .join()
            .expect("every audit entry landed despite the restarts");
        let targets: Vec<String> = catalog
            .audit_entries(0, 1000)
            .unwrap()
            .into_iter()
            .filter_map(|e| e.target)
            .collect();
        let expected: Vec<String> = (0..150).map(|n| n.to_string()).collect();
        assert_eq!(targets, expected, "each entry once, in order");
        assert_eq!(catalog.asset_count().unwrap(), 200);
        let jobs: u64 = catalog.state_counts().unwrap().iter().map(|(_, n)| n).sum();
        assert_eq!(jobs, 200, "one job per asset, none twice");
        let claimed = catalog
            .claim("w", &["labels".into()], 500, Duration::from_secs(60))
            .unwrap();
        assert_eq!(claimed.len(), 200);
    }

    /// How [`Proxy`] cuts the next COMMIT.
    #[derive(Clone, Copy, PartialEq, Debug)]
    enum Cut {
        /// The COMMIT reaches the server, which commits; its answer never reaches the client.
        AfterCommit,
        /// As `AfterCommit`, and the server runs a checkpoint before the client can ask (as
        /// every recovery from a crash ends with one).
        AfterCommitAndCheckpoint,
        /// The COMMIT never reaches the server, which sees the connection close.
        BeforeCommit,
        /// The COMMIT never reaches the server, whose connection stays open: its process sits
        /// idle in the transaction, as it does when a network cut leaves it unaware.
        BeforeCommitServerUnaware,
    }

    /// Reads one message of PostgreSQL's protocol: its type byte and length, then its body.
    fn message(from: &mut impl std::io::Read) -> std::io::Result<([u8; 5], Vec<u8>)> {
        let mut head = [0u8; 5];
        from.read_exact(&mut head)?;
        let n = u32::from_be_bytes(head[1..].try_into().unwrap()) as usize;
        let mut body = vec![0u8; n.saturating_sub(4)];
        from.read_exact(&mut body)?;
        Ok((head, body))
    }

    /// A TCP proxy in front of a PostgreSQL server that passes everything through, except that
    /// once armed it cuts the first COMMIT it sees as [`Cut`] says.
    struct Proxy {
        port: u16,
        armed: std::sync::Arc<std::sync::Mutex<Option<Cut>>>,
        /// Server connections kept open by [`Cut::BeforeCommitServerUnaware`].
        held: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
    }

    impl Proxy {
        fn to(url: &str) -> Self {
            use std::io::{Read, Write};
            use std::net::{Shutdown, TcpListener, TcpStream};
            use std::sync::atomic::{AtomicU8, Ordering};
            use std::sync::{Arc, Mutex};
            let url = url.to_owned();
            let config: postgres::Config = url.parse().unwrap();
            let host = match &config.get_hosts()[0] {
                postgres::config::Host::Tcp(h) => h.clone(),
                other => panic!("a TCP server, not {other:?}"),
            };
            let target = format!("{host}:{}", config.get_ports().first().unwrap_or(&5432));
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let port = listener.local_addr().unwrap().port();
            let armed: Arc<Mutex<Option<Cut>>> = Arc::default();
            let held: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
            let (armed2, held2) = (armed.clone(), held.clone());
            std::thread::spawn(move || {
                for client in listener.incoming() {
                    let Ok(mut client) = client else { return };
                    // A server that cannot be reached: the client sees its connection close.
                    let Ok(mut server) = TcpStream::connect(&target) else {
                        continue;
                    };
                    let (mut from_server, mut to_client) =
                        (server.try_clone().unwrap(), client.try_clone().unwrap());
                    // Set when the COMMIT went through and its answer is to be lost: 1, or 2
                    // with a checkpoint first.
                    let lose_answer = Arc::new(AtomicU8::new(0));
                    let lose = lose_answer.clone();
                    let admin = url.clone();
                    std::thread::spawn(move || -> std::io::Result<()> {
                        loop {
                            let (head, body) = message(&mut from_server)?;
                            // CommandComplete "COMMIT": the client is cut off instead.
                            let mode = match head[0] == b'C' && body.starts_with(b"COMMIT") {
                                true => lose.swap(0, Ordering::SeqCst),
                                false => 0,
                            };
                            if mode > 0 {
                                let checkpoint = (mode == 2).then(|| {
                                    postgres::Client::connect(&admin, postgres::NoTls)
                                        .and_then(|mut c| c.batch_execute("CHECKPOINT"))
                                });
                                to_client.shutdown(Shutdown::Both)?;
                                if let Some(Err(e)) = checkpoint {
                                    panic!("the proxy's checkpoint: {e}");
                                }
                                return from_server.shutdown(Shutdown::Both);
                            }
                            to_client.write_all(&head)?;
                            to_client.write_all(&body)?;
                        }
                    });
                    let (armed, held) = (armed2.clone(), held2.clone());
                    std::thread::spawn(move || -> std::io::Result<()> {
                        // The startup message, untyped; then typed messages.
                        let mut len = [0u8; 4];
                        client.read_exact(&mut len)?;
                        let mut body =
                            vec![0u8; (u32::from_be_bytes(len) as usize).saturating_sub(4)];
                        client.read_exact(&mut body)?;
                        server.write_all(&len)?;
                        server.write_all(&body)?;
                        loop {
                            let (head, body) = message(&mut client)?;
                            let cut = (head[0] == b'Q' && body.starts_with(b"COMMIT"))
                                .then(|| armed.lock().unwrap().take())
                                .flatten();
                            match cut {
                                Some(Cut::AfterCommit) => lose_answer.store(1, Ordering::SeqCst),
                                Some(Cut::AfterCommitAndCheckpoint) => {
                                    lose_answer.store(2, Ordering::SeqCst)
                                }
                                Some(cut) => {
                                    client.shutdown(Shutdown::Both)?;
                                    if cut == Cut::BeforeCommitServerUnaware {
                                        held.lock().unwrap().push(server);
                                    } else {
                                        server.shutdown(Shutdown::Write)?;
                                    }
                                    return Ok(());
                                }
                                None => {}
                            }
                            server.write_all(&head)?;
                            server.write_all(&body)?;
                        }
                    });
                }
            });
            Self { port, armed, held }
        }

        fn url(&self, db: &str) -> String {
            format!(
                "postgres://postgres@127.0.0.1:{}/{db}?sslmode=disable",
                self.port
            )
        }

        fn arm(&self, cut: Cut) {
            *self.armed.lock().unwrap() = Some(cut);
        }
    }

    /// A commit whose answer is lost lands exactly once: found when the server committed it,
    /// run again when it did not, also when the server has not yet noticed the cut.
    #[test]
    fn a_commit_whose_answer_is_lost_lands_once() {
        let Some(server) = PgServer::start() else {
            return;
        };
        server.database("cut");
        let proxy = Proxy::to(&server.url("cut"));
        let db = aperture_catalog::Postgres::open(
            &proxy.url("cut"),
            "test",
            "test_migrations",
            &[(1, "t", "CREATE TABLE t (cut TEXT NOT NULL)")],
        )
        .unwrap();
        // A checkpoint in the second a commit is sent makes its lookup cautious (on
        // PostgreSQL 13 and 14, creating a database runs one): the cuts begin a second later.
        let past_checkpoint = || -> bool {
            db.with_retry(|c| {
                Ok(c.query_one(
                    "SELECT floor(extract(epoch FROM clock_timestamp()))::int8 >
                            (SELECT extract(epoch FROM checkpoint_time)::int8
                             FROM pg_control_checkpoint())",
                    &[],
                )?
                .get(0))
            })
            .unwrap()
        };
        while !past_checkpoint() {
            std::thread::sleep(Duration::from_millis(100));
        }
        for cut in [
            Cut::AfterCommit,
            Cut::BeforeCommit,
            Cut::BeforeCommitServerUnaware,
        ] {
            proxy.arm(cut);
            let mut runs = 0;
            let label = format!("{cut:?}");
            db.tx(|tx| {
                runs += 1;
                tx.execute("INSERT INTO t VALUES ($1)", &[&label])?;
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{cut:?}: {e}"));
            assert!(proxy.armed.lock().unwrap().is_none(), "{cut:?}: it was cut");
            let rows: i64 = db
                .with_retry(|c| {
                    Ok(
                        c.query_one("SELECT count(*) FROM t WHERE cut = $1", &[&label])?
                            .get(0),
                    )
                })
                .unwrap();
            let expected_runs = if cut == Cut::AfterCommit { 1 } else { 2 };
            assert_eq!((rows, runs), (1, expected_runs), "{cut:?}: rows and runs");
        }
        assert_eq!(proxy.held.lock().unwrap().len(), 1);
        // After a checkpoint (every recovery from a crash ends with one) the id may be
        // another transaction's: "committed" is not believed, and the outcome is reported
        // unknown, never run again.
        proxy.arm(Cut::AfterCommitAndCheckpoint);
        let mut runs = 0;
        let err = db
            .tx(|tx| {
                runs += 1;
                tx.execute("INSERT INTO t VALUES ('checkpoint')", &[])?;
                Ok(())
            })
            .unwrap_err();
        assert!(err.is_outcome_unknown() && runs == 1, "{err}");
        let rows: i64 = db
            .with_retry(|c| {
                Ok(
                    c.query_one("SELECT count(*) FROM t WHERE cut = 'checkpoint'", &[])?
                        .get(0),
                )
            })
            .unwrap();
        assert_eq!(rows, 1);
        // An audit append then looks for its own last entry: appended once.
        server.database("audit");
        let catalog = PgCatalog::open(&proxy.url("audit")).unwrap();
        proxy.arm(Cut::AfterCommitAndCheckpoint);
        let entry = NewAuditEntry::new("t", "read", Some("cut".into()), json!({}));
        catalog
            .append_audit(&AuditKey::unkeyed(), &[entry])
            .unwrap();
        assert!(proxy.armed.lock().unwrap().is_none(), "the append was cut");
        let entries = catalog.audit_entries(0, 10).unwrap();
        assert_eq!(entries.len(), 1, "{entries:?}");
        // A transaction that wrote nothing has no outcome to ask about: run again.
        proxy.arm(Cut::BeforeCommit);
        let mut runs = 0;
        let n: i64 = db
            .tx(|tx| {
                runs += 1;
                Ok(tx.query_one("SELECT count(*) FROM t", &[])?.get(0))
            })
            .unwrap();
        assert_eq!((n, runs), (4, 2));
    }

    /// An unreachable server or a missing database is an error naming it,
    /// within seconds.
    #[test]
    fn a_bad_server_is_a_clear_error() {
        let Some(server) = PgServer::start() else {
            return;
        };
        let started = Instant::now();
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let err = PgCatalog::open(&format!("postgres://postgres@127.0.0.1:{closed}/x"))
            .unwrap_err()
            .to_string();
        assert!(err.contains(&format!("127.0.0.1:{closed}")), "{err}");
        let err = PgCatalog::open(&server.url("missing"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("missing") && err.contains("does not exist"),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(20));
    }
}
