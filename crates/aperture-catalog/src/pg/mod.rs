//! The PostgreSQL catalog: the same tables as SQLite's, a pool of connections, and transactions
//! that are retried when the server restarts, a connection drops or PostgreSQL picks a
//! transaction as a deadlock's victim.
//!
//! Where SQLite serialises every writer, PostgreSQL runs them side by side (READ COMMITTED), so
//! the operations that must not interleave take locks of their own:
//! - job claims lock the rows they pick (`FOR UPDATE SKIP LOCKED`): workers never wait for one
//!   another, and never lease one job twice;
//! - recording, deleting and claiming a blob take a transaction lock on its hash
//!   ([`hash_lock`]), so a deletion never misses an asset recorded at the same moment;
//! - finishing a job locks its whole job (the row of part 0), so the last two parts of a
//!   split job finishing at once still queue the job to join them;
//! - audit appends and change numbering each take one advisory lock: the chain has one order,
//!   and change numbers are handed out in one order (see `0001_init.sql`).

mod access;
mod catalog;
mod jobs;
mod rows;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use aperture_core::UnixMillis;
use postgres::error::SqlState;
use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, NoTls, Transaction};
use r2d2_postgres::PostgresConnectionManager;

use crate::{Error, Result};

/// A numbered migration: (version, name, SQL). Applied in order; the database records the
/// highest one applied.
pub type Migration = (i64, &'static str, &'static str);

/// The catalog's migrations.
const MIGRATIONS: &[Migration] = &[
    (1, "init", include_str!("0001_init.sql")),
    (2, "erasure", include_str!("0002_erasure.sql")),
    (3, "data_keys", include_str!("0003_data_keys.sql")),
];

/// Advisory lock keys (one namespace per database). Any number fits: these are ours.
const MIGRATION_LOCK: i64 = 0x4150_4552_0001;
const AUDIT_LOCK: i64 = 0x4150_4552_0002;
const CHANGES_LOCK: i64 = 0x4150_4552_0003;

/// Connections in the pool of one process.
const POOL_SIZE: u32 = 16;
/// How long an operation keeps trying while the server is away (a restart, a failover).
const RETRY_FOR: Duration = Duration::from_secs(60);
/// How long the lookup of an unanswered commit may take at least, however little is left of
/// its operation's minute.
const LOOKUP_FOR: Duration = Duration::from_secs(10);
/// How long one attempt to get a connection waits.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

type Pool = r2d2::Pool<PostgresConnectionManager<NoTls>>;

/// A pool of connections to one PostgreSQL database, whose operations are retried while the
/// server is away: what the catalog and the shared search index (`aperture-search`) both run
/// on. Opened from a `postgres://user:password@host:port/database` URL (libpq's key-value form
/// works too).
pub struct Postgres {
    /// Always `Some` until dropped (see `Drop`).
    pool: Option<Pool>,
    config: postgres::Config,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password: hosts and database only.
        f.debug_struct("Postgres")
            .field("hosts", &self.config.get_hosts())
            .field("dbname", &self.config.get_dbname())
            .finish()
    }
}

impl Postgres {
    /// Connects, checks the server answers, and applies the `migrations` it lacks (recorded
    /// in the table `ledger`). An unreachable server, a wrong password or a missing database is
    /// an error naming the server, within a few seconds; `what` names the URL's setting in it.
    pub fn open(url: &str, what: &str, ledger: &str, migrations: &[Migration]) -> Result<Self> {
        let mut config: postgres::Config = url.parse().map_err(|e| Error::InvalidInput {
            reason: format!("{what} url is not a PostgreSQL connection string: {e}"),
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        // A server that vanished without closing the socket (a failover, a cut cable) is
        // noticed within about half a minute instead of never.
        config
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(10))
            .tcp_user_timeout(Duration::from_secs(30));
        if config.get_application_name().is_none() {
            config.application_name("aperture");
        }
        let where_ = describe(&config);
        // Fail fast, with the server's own words, before a pool retries in the background.
        let mut first = config.connect(NoTls).map_err(|e| Error::Backend {
            backend: "postgres",
            source: format!("cannot connect to {where_}: {}", error_text(&e)).into(),
        })?;
        // Unanswered commits are looked up with functions of PostgreSQL 13, and need
        // pg_control_checkpoint() (a managed server may withhold it: then every commit whose
        // answer is lost stays unknown).
        let row = first.query_one(
            "SELECT current_setting('server_version_num'),
                    has_function_privilege('pg_control_checkpoint()', 'execute')",
            &[],
        )?;
        let (version, checkpoints): (String, bool) = (row.get(0), row.get(1));
        if version.parse::<u32>().unwrap_or(0) < 130_000 {
            return Err(Error::Backend {
                backend: "postgres",
                source: format!("{where_} runs version {version}: 13 or newer is needed").into(),
            });
        }
        if !checkpoints {
            tracing::warn!(
                server = %where_,
                "pg_control_checkpoint() may not be called: a commit whose answer is lost \
                 will be reported as of unknown outcome"
            );
        }
        migrate(&mut first, ledger, migrations)?;
        drop(first);
        let pool = r2d2::Pool::builder()
            .max_size(POOL_SIZE)
            .min_idle(Some(1))
            .connection_timeout(CONNECT_TIMEOUT)
            // Broken connections are found by `is_closed` when they come back, and an
            // operation on one is retried: no query per checkout.
            .test_on_check_out(false)
            .build(PostgresConnectionManager::new(config.clone(), NoTls))
            .map_err(|e| Error::Backend {
                backend: "postgres",
                source: format!("cannot open a pool to {where_}: {e}").into(),
            })?;
        Ok(Self {
            pool: Some(pool),
            config,
        })
    }

    /// The connection settings (for a connection of one's own, as a LISTEN needs).
    pub fn config(&self) -> &postgres::Config {
        &self.config
    }

    /// "PostgreSQL at host:port/database", for messages (no password).
    pub fn describe(&self) -> String {
        describe(&self.config)
    }

    /// Runs `f` in one transaction and commits it. Errors that a new attempt may not meet (a
    /// lost connection, a server shutting down or starting, a deadlock, a serialisation
    /// failure) are retried with backoff for about a minute in all (a lost commit's lookup
    /// gets 10 s more at least); others are returned at once.
    ///
    /// A commit whose answer was lost with the connection may or may not have happened. So
    /// before each commit the transaction asks for its id (one more round trip; none is taken
    /// by a transaction that wrote nothing), and when the answer is lost the server is asked
    /// whether that id committed (`pg_xact_status`): if it did, what `f` returned is
    /// the answer; if not, `f` runs again (three attempts at most). One case stays unknown,
    /// and is returned as an error saying so ([`Error::is_outcome_unknown`]): the server
    /// restarted, recovered from a crash of one of its processes, failed over, or merely ran a
    /// checkpoint since the commit was sent, and says the id committed, which may be another
    /// transaction given the same id after a crash.
    ///
    /// **Architecture Invariant:** a write through `tx` lands once or reports that it may
    /// have; it is never run again after it committed. Statements through
    /// [`Postgres::with_retry`] are run again blindly, so they must be idempotent.
    pub fn tx<T>(&self, f: impl FnMut(&mut Transaction<'_>) -> Result<T>) -> Result<T> {
        self.tx_until(Instant::now() + RETRY_FOR, f)
    }

    /// [`Postgres::tx`], retrying until `deadline`. The lookup of an unanswered commit gets
    /// [`LOOKUP_FOR`] at least, and a lookup that fails leaves the outcome unknown.
    fn tx_until<T>(
        &self,
        deadline: Instant,
        mut f: impl FnMut(&mut Transaction<'_>) -> Result<T>,
    ) -> Result<T> {
        until_landed(
            |sent| self.with_retry_until(deadline, |client| commit_once(client, &mut f, sent)),
            |commit| {
                self.committed(commit, lookup_until(deadline))
                    .map_err(|e| still_unknown(e, "the lookup failed"))
            },
        )
    }

    /// [`Postgres::tx`] for a write that can tell afterwards whether it happened, so that it
    /// lands once even when the transaction id cannot tell (after a restart). When `tx` says
    /// the outcome is unknown, `landed` asks in a transaction of its own whether what `f`
    /// returned was committed: if so that is the answer, if not `f` runs again (three times
    /// at most). `landed` should first take a lock that `f` holds, so that it waits for a
    /// commit still under way.
    pub fn tx_checked<T: Clone>(
        &self,
        mut f: impl FnMut(&mut Transaction<'_>) -> Result<T>,
        landed: impl Fn(&mut Transaction<'_>, &T) -> Result<bool>,
    ) -> Result<T> {
        let deadline = Instant::now() + RETRY_FOR;
        until_landed(
            |sent| {
                self.tx_until(deadline, |tx| {
                    let out = f(tx)?;
                    *sent = Some((out.clone(), out.clone()));
                    Ok(out)
                })
            },
            |out| {
                self.tx_until(lookup_until(deadline), |tx| landed(tx, out))
                    .map_err(|e| still_unknown(e, "the write's own lookup failed"))
            },
        )
    }

    /// Whether the transaction behind `commit` (one whose commit went unanswered) committed,
    /// asked until `deadline`. One still in progress is waited for; one whose server process
    /// sits idle in it, its COMMIT never received (the connection was cut before it arrived,
    /// and the server has not noticed yet), is ended with that process, and so aborted.
    fn committed(&self, commit: &Unanswered, deadline: Instant) -> Result<bool> {
        let mut pause = Duration::from_millis(20);
        loop {
            let (status, restarted, same_run) = self.with_retry_until(deadline, |c| {
                // A crash of one server process makes the server start over (replay its log)
                // without a new start time, but always with a checkpoint at the end: a
                // checkpoint since the commit was sent counts as a restart (a routine one
                // too, which only makes the answer more cautious). Its time is in seconds.
                let row = c.query_one(
                    &format!(
                        "SELECT ({START_TIME}),
                                (SELECT extract(epoch FROM checkpoint_time)::int8
                                 FROM pg_control_checkpoint())"
                    ),
                    &[],
                )?;
                let (started, checkpoint): (i64, i64) = (row.get(0), row.get(1));
                let same_run = started == commit.server_started;
                let restarted = !same_run || checkpoint >= commit.sent_at.div_euclid(1_000_000);
                let status = match c.query_one(
                    "SELECT pg_xact_status($1::text::xid8)::text",
                    &[&commit.xid.to_string()],
                ) {
                    Ok(row) => match row.get::<_, Option<String>>(0).as_deref() {
                        Some("committed") => XactStatus::Committed,
                        Some("aborted") => XactStatus::Aborted,
                        Some("in progress") => XactStatus::InProgress,
                        _ => XactStatus::Forgotten,
                    },
                    // An id the server has not handed out yet.
                    Err(e) if e.code() == Some(&SqlState::INVALID_PARAMETER_VALUE) => {
                        XactStatus::InTheFuture
                    }
                    Err(e) => return Err(e.into()),
                };
                Ok((status, restarted, same_run))
            })?;
            match verdict(status, restarted) {
                Verdict::Landed(landed) => return Ok(landed),
                Verdict::Unknown(why) => return Err(unknown_outcome(commit, why)),
                Verdict::Wait if Instant::now() >= deadline => {
                    return Err(unknown_outcome(
                        commit,
                        "still in progress when the lookup's time ran out",
                    ));
                }
                Verdict::Wait => {
                    // Only the process that ran it, on the same server run: one that began
                    // before the commit was sent and holds its id.
                    if same_run {
                        self.with_retry_until(deadline, |c| {
                            c.execute(
                                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                                 WHERE pid = $1 AND backend_xid::text = $2
                                   AND backend_start <= to_timestamp($3::float8 / 1e6)
                                   AND state LIKE 'idle in transaction%'",
                                &[&commit.pid, &commit.short_xid(), &(commit.sent_at as f64)],
                            )?;
                            Ok(())
                        })?;
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
            }
        }
    }

    /// Runs `f` on a pooled connection, retried like [`Postgres::tx`]; for reads and
    /// idempotent single statements (one whose answer was lost runs again).
    pub fn with_retry<T>(&self, f: impl FnMut(&mut Client) -> Result<T>) -> Result<T> {
        self.with_retry_until(Instant::now() + RETRY_FOR, f)
    }

    /// [`Postgres::with_retry`], retrying until `deadline` (one attempt at least).
    fn with_retry_until<T>(
        &self,
        deadline: Instant,
        mut f: impl FnMut(&mut Client) -> Result<T>,
    ) -> Result<T> {
        let mut pause = Duration::from_millis(50);
        let pool = self
            .pool
            .as_ref()
            .expect("the pool lives as long as its owner");
        loop {
            let failure = match pool.get() {
                Ok(mut client) => match f(&mut client) {
                    Err(e) if retryable(&e) => e,
                    other => return other,
                },
                // No connection within the pool's timeout: the server is away.
                Err(e) => Error::Backend {
                    backend: "postgres",
                    source: format!("no connection to {}: {e}", describe(&self.config)).into(),
                },
            };
            if Instant::now() >= deadline {
                return Err(failure);
            }
            tracing::warn!(error = %failure, "PostgreSQL operation failed; retrying");
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }
}

/// The server's start, in microseconds since 1970: a different answer means it restarted, or
/// another server took its place.
const START_TIME: &str = "SELECT (extract(epoch FROM pg_postmaster_start_time()) * 1e6)::int8";

/// What the server says of an unanswered commit's transaction id.
#[derive(Debug, Clone, Copy, PartialEq)]
enum XactStatus {
    Committed,
    Aborted,
    InProgress,
    /// Beyond the ids the server has handed out.
    InTheFuture,
    /// Too old for the server to remember.
    Forgotten,
}

#[derive(Debug, PartialEq)]
enum Verdict {
    Landed(bool),
    Wait,
    Unknown(&'static str),
}

/// What an unanswered commit's status means. On the server that ran it the status is its own.
/// After a restart, a crash of a server process or a failover (`restarted`, which a routine
/// checkpoint also sets) the id may have gone to another transaction: an id not yet written
/// to the log when the server stopped is handed out again. Then only the answers that rule
/// the commit out are sure: aborted, or an id not handed out yet (either way, had the commit
/// been written, its id would not have been handed out again). A transaction in progress is
/// waited for: ours, or (after a crash) another whose end then answers as above.
fn verdict(status: XactStatus, restarted: bool) -> Verdict {
    match (status, restarted) {
        (XactStatus::Committed, false) => Verdict::Landed(true),
        (XactStatus::Committed, true) => Verdict::Unknown(
            "the server restarted or ran a checkpoint, and the id may have gone to another \
             transaction",
        ),
        (XactStatus::Aborted | XactStatus::InTheFuture, _) => Verdict::Landed(false),
        (XactStatus::InProgress, _) => Verdict::Wait,
        (XactStatus::Forgotten, _) => Verdict::Unknown("the server no longer remembers the id"),
    }
}

fn unknown_outcome(commit: &Unanswered, why: impl std::fmt::Display) -> Error {
    Error::OutcomeUnknown {
        backend: "postgres",
        source: format!(
            "cannot tell whether transaction {} committed: {why}",
            commit.xid
        )
        .into(),
    }
}

/// Drops `connections` (a pool, a client) on a thread of its own and waits for it.
/// PostgreSQL's synchronous client closes a connection by running its own runtime, which
/// panics on a thread that drives async tasks — and the last owner may well be one (a server
/// shutting down). `what` names them in the warning if closing fails.
pub fn close_apart<T: Send + 'static>(connections: T, what: &str) {
    if std::thread::spawn(move || drop(connections))
        .join()
        .is_err()
    {
        tracing::warn!("closing {what} failed");
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        close_apart(self.pool.take(), "PostgreSQL connections");
    }
}

/// The catalog on a PostgreSQL server, for many workers and servers on many machines. Opened
/// from a `postgres://user:password@host:port/database` URL (libpq's key-value form works too);
/// the schema is created or brought up to date on open.
pub struct PgCatalog {
    db: Postgres,
    /// A connection that LISTENs for queued jobs, opened on first wait.
    listener: Mutex<Option<Client>>,
    pub(crate) buckets: crate::types::DeletionBuckets,
}

impl std::fmt::Debug for PgCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgCatalog").field("db", &self.db).finish()
    }
}

impl PgCatalog {
    /// Connects, checks the server answers, and applies the migrations it lacks. An
    /// unreachable server, a wrong password or a missing database is an error naming the
    /// server, within a few seconds.
    pub fn open(url: &str) -> Result<Self> {
        Ok(Self {
            db: Postgres::open(url, "catalog", "schema_migrations", MIGRATIONS)?,
            listener: Mutex::new(None),
            buckets: Default::default(),
        })
    }

    /// [`Postgres::tx`].
    fn tx<T>(&self, f: impl FnMut(&mut Transaction<'_>) -> Result<T>) -> Result<T> {
        self.db.tx(f)
    }

    /// [`Postgres::tx`] for a write that does the same when run twice (queuing what is not
    /// queued yet): one whose commit's outcome stayed unknown simply runs again.
    fn tx_again<T>(&self, mut f: impl FnMut(&mut Transaction<'_>) -> Result<T>) -> Result<T> {
        let deadline = Instant::now() + RETRY_FOR;
        match self.db.tx_until(deadline, &mut f) {
            Err(e) if e.is_outcome_unknown() => {
                tracing::warn!(error = %e, "running again a write that may have landed");
                self.db.tx_until(deadline, f)
            }
            other => other,
        }
    }

    /// [`Postgres::with_retry`].
    fn with_retry<T>(&self, f: impl FnMut(&mut Client) -> Result<T>) -> Result<T> {
        self.db.with_retry(f)
    }

    /// Waits up to `timeout` for a notification that jobs were queued. One connection, opened
    /// on first use (and again after a failure), LISTENs only while a worker waits: a busy
    /// worker never lets notifications pile up on the server. Errors are logged and end the
    /// wait early.
    fn wait_notified(&self, timeout: Duration) -> bool {
        let mut slot = self.listener.lock().unwrap_or_else(|e| e.into_inner());
        if slot.as_ref().is_none_or(Client::is_closed) {
            *slot = match self.db.config.connect(NoTls) {
                Ok(client) => Some(client),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot connect to LISTEN for jobs");
                    None
                }
            };
        }
        let Some(client) = slot.as_mut() else {
            drop(slot);
            std::thread::sleep(timeout.min(Duration::from_secs(1)));
            return false;
        };
        let waited = client.batch_execute("LISTEN aperture_jobs").and_then(|()| {
            let woken = client
                .notifications()
                .timeout_iter(timeout)
                .next()?
                .is_some();
            client.batch_execute("UNLISTEN aperture_jobs")?;
            // What arrived meanwhile is moot: the worker looks at the queue next.
            while client.notifications().iter().next()?.is_some() {}
            Ok(woken)
        });
        match waited {
            Ok(woken) => woken,
            Err(e) => {
                tracing::warn!(error = %e, "lost the LISTEN connection");
                *slot = None;
                false
            }
        }
    }
}

/// The LISTEN connection is closed apart, as the pool's are ([`close_apart`]).
impl Drop for PgCatalog {
    fn drop(&mut self) {
        let listener = self
            .listener
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        close_apart(listener, "the catalog's LISTEN connection");
    }
}

fn describe(config: &postgres::Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|h| match h {
            postgres::config::Host::Tcp(name) => name.clone(),
            postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "PostgreSQL at {}:{port}/{}",
        hosts.join(","),
        config.get_dbname().unwrap_or("(default database)")
    )
}

/// The server's message when there is one (a wrong password, a missing database), else the
/// client's.
fn error_text(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                text = format!("{text}: {s}");
                source = s.source();
            }
            text
        }
    }
}

/// Whether a new attempt may succeed: the connection or the server went away before the
/// commit, or PostgreSQL broke a deadlock or a serialisation conflict by aborting this
/// transaction. Errors of the client's own (a row that does not decode, a wrong parameter)
/// and a commit whose outcome is unknown are not retried.
fn retryable(e: &Error) -> bool {
    let Error::Backend { source, .. } = e else {
        return false;
    };
    let Some(pg) = source.downcast_ref::<postgres::Error>() else {
        return false;
    };
    if pg.is_closed() {
        return true;
    }
    if let Some(code) = pg.code() {
        return code.code().starts_with("08") // connection exceptions
            || *code == SqlState::ADMIN_SHUTDOWN
            || *code == SqlState::CRASH_SHUTDOWN
            || *code == SqlState::CANNOT_CONNECT_NOW
            || *code == SqlState::T_R_SERIALIZATION_FAILURE
            || *code == SqlState::T_R_DEADLOCK_DETECTED;
    }
    // No SQLSTATE: retried only when the socket failed (reset, refused, timed out).
    std::error::Error::source(pg).is_some_and(|s| s.is::<std::io::Error>())
}

/// One transaction in [`Postgres::tx`]: runs `f` and commits. When the commit's answer is
/// lost, what `f` returned is left in `sent` with the transaction's id, and the error is
/// [`Error::OutcomeUnknown`]. A transaction that wrote nothing has no id; its lost commit is just a
/// lost connection, retried as such.
fn commit_once<T>(
    client: &mut Client,
    f: &mut impl FnMut(&mut Transaction<'_>) -> Result<T>,
    sent: &mut Option<(T, Unanswered)>,
) -> Result<T> {
    let mut tx = client.transaction()?;
    let out = f(&mut tx)?;
    let row = tx.query_one(
        &format!(
            "SELECT pg_current_xact_id_if_assigned()::text, pg_backend_pid(), ({START_TIME}),
                    (extract(epoch FROM clock_timestamp()) * 1e6)::int8"
        ),
        &[],
    )?;
    let xid = match row.get::<_, Option<String>>(0) {
        None => None,
        Some(text) => Some(text.parse::<u64>().map_err(|_| Error::Backend {
            backend: "postgres",
            source: format!("the server gave {text:?} for a transaction id").into(),
        })?),
    };
    let (pid, server_started, sent_at) = (row.get(1), row.get(2), row.get(3));
    match (tx.commit(), xid) {
        (Ok(()), _) => Ok(out),
        // The server answered: the commit failed, and may be retried like any other.
        (Err(e), _) if e.code().is_some() => Err(e.into()),
        // Nothing written, nothing to ask about: a lost connection, retried as such.
        (Err(e), None) => Err(e.into()),
        (Err(e), Some(xid)) => {
            *sent = Some((
                out,
                Unanswered {
                    xid,
                    pid,
                    server_started,
                    sent_at,
                },
            ));
            Err(Error::OutcomeUnknown {
                backend: "postgres",
                source: format!("its answer was lost with the connection: {e}").into(),
            })
        }
    }
}

/// A commit sent whose answer was lost: its transaction's full id, the server process that
/// ran it, when that server started and when the commit was sent.
#[derive(Debug, Clone, Copy)]
struct Unanswered {
    xid: u64,
    pid: i32,
    /// The server's start ([`START_TIME`]).
    server_started: i64,
    /// The server's clock just before the commit was sent, in microseconds since 1970.
    sent_at: i64,
}

impl Unanswered {
    /// The 32-bit id `pg_stat_activity` shows.
    fn short_xid(&self) -> String {
        (self.xid & 0xffff_ffff).to_string()
    }
}

/// The loop of [`Postgres::tx`]: `attempt` runs the transaction and, when its commit's outcome
/// is unknown, leaves in its argument what it returned and what identifies the commit;
/// `landed` says whether that commit happened. Three attempts at most.
fn until_landed<T, K>(
    mut attempt: impl FnMut(&mut Option<(T, K)>) -> Result<T>,
    mut landed: impl FnMut(&K) -> Result<bool>,
) -> Result<T> {
    let mut tries = 0;
    loop {
        tries += 1;
        let mut sent = None;
        let failure = match attempt(&mut sent) {
            Err(e) if e.is_outcome_unknown() => e,
            other => return other,
        };
        let Some((out, commit)) = sent else {
            return Err(failure);
        };
        if landed(&commit)? {
            return Ok(out);
        }
        if tries == 3 {
            return Err(Error::Backend {
                backend: "postgres",
                source: format!(
                    "the transaction was cut off at its commit three times, and never \
                     committed: {failure}"
                )
                .into(),
            });
        }
        tracing::warn!(error = %failure, "the commit did not happen; running it again");
    }
}

/// Until when the lookup of an unanswered commit may go on: its operation's `deadline`, or
/// [`LOOKUP_FOR`] from now if that is later.
fn lookup_until(deadline: Instant) -> Instant {
    deadline.max(Instant::now() + LOOKUP_FOR)
}

/// A lookup's failure `e` as the outcome it leaves unknown (`e` itself if it says so).
fn still_unknown(e: Error, what: &str) -> Error {
    if e.is_outcome_unknown() {
        return e;
    }
    Error::OutcomeUnknown {
        backend: "postgres",
        source: format!("{what}: {e}").into(),
    }
}

impl From<postgres::Error> for Error {
    fn from(source: postgres::Error) -> Self {
        Error::Backend {
            backend: "postgres",
            source: Box::new(source),
        }
    }
}

/// Applies the `migrations` that the table `ledger` does not list, under one lock.
fn migrate(client: &mut Client, ledger: &str, migrations: &[Migration]) -> Result<()> {
    let mut tx = client.transaction()?;
    // One process migrates; the others wait here and then find it done.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute(&format!(
        "CREATE TABLE IF NOT EXISTS {ledger} (
             version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)"
    ))?;
    let current: i64 = tx
        .query_one(
            &format!("SELECT COALESCE(MAX(version), 0)::BIGINT FROM {ledger}"),
            &[],
        )?
        .get(0);
    let known = migrations.last().map_or(0, |m| m.0);
    if current > known {
        return Err(Error::SchemaTooNew {
            found: current,
            known,
        });
    }
    for (version, name, sql) in migrations.iter().filter(|m| m.0 > current) {
        tx.batch_execute(sql)?;
        tx.execute(
            &format!("INSERT INTO {ledger} (version, name, applied_at) VALUES ($1, $2, $3)"),
            &[version, name, &UnixMillis::now().0],
        )?;
        tracing::info!(version, name, ledger, "applied a PostgreSQL migration");
    }
    tx.commit()?;
    Ok(())
}

/// The advisory lock that serialises everything done to one blob (recording an asset with
/// it, deleting its last asset, claiming its deletion): its hash's first eight bytes.
fn hash_lock(hash: &[u8]) -> i64 {
    let mut key = [0u8; 8];
    let n = hash.len().min(8);
    key[..n].copy_from_slice(&hash[..n]);
    i64::from_be_bytes(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_locks_differ_by_hash() {
        let a = aperture_core::ContentHash::of(b"a");
        let b = aperture_core::ContentHash::of(b"b");
        assert_ne!(hash_lock(a.as_bytes()), hash_lock(b.as_bytes()));
        assert_eq!(hash_lock(a.as_bytes()), hash_lock(a.as_bytes()));
    }

    #[test]
    fn a_bad_url_is_invalid_input() {
        assert!(matches!(
            PgCatalog::open("postgres://[::1"),
            Err(Error::InvalidInput { .. })
        ));
    }

    fn unknown() -> Error {
        Error::OutcomeUnknown {
            backend: "postgres",
            source: "connection reset".into(),
        }
    }

    #[test]
    fn a_commit_whose_answer_was_lost_is_found_or_run_again() {
        use std::cell::{Cell, RefCell};
        // It happened: found, and not run again.
        let committed = RefCell::new(Vec::new());
        let out = until_landed(
            |sent| {
                committed.borrow_mut().push(10);
                *sent = Some((1, 10));
                Err(unknown())
            },
            |xid| Ok(committed.borrow().contains(xid)),
        );
        assert_eq!(out.unwrap(), 1);
        assert_eq!(committed.borrow().len(), 1);
        // It did not: run again, once.
        let (runs, committed) = (Cell::new(0), RefCell::new(Vec::new()));
        let out = until_landed(
            |sent| {
                runs.set(runs.get() + 1);
                if runs.get() == 1 {
                    *sent = Some((7, 1));
                    return Err(unknown());
                }
                committed.borrow_mut().push(2);
                Ok(7)
            },
            |xid| Ok(committed.borrow().contains(xid)),
        );
        assert_eq!((out.unwrap(), runs.get()), (7, 2));
        assert_eq!(*committed.borrow(), [2]);
        // Never answered and never landed: the error, after three tries.
        let runs = Cell::new(0);
        let err = until_landed(
            |sent| {
                runs.set(runs.get() + 1);
                *sent = Some((0, runs.get()));
                Err(unknown())
            },
            |_| Ok(false),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("three times") && runs.get() == 3,
            "{err}"
        );
        // Any other error at once, without asking.
        let runs = Cell::new(0);
        let err = until_landed(
            |sent: &mut Option<(u8, u8)>| {
                runs.set(runs.get() + 1);
                *sent = Some((0, 0));
                Err(Error::InvalidInput { reason: "x".into() })
            },
            |_| panic!("not asked"),
        )
        .unwrap_err();
        assert!(matches!(err, Error::InvalidInput { .. }) && runs.get() == 1);
        // Not knowing whether it landed is an error, and nothing is run again.
        let runs = Cell::new(0);
        let err = until_landed(
            |sent| {
                runs.set(runs.get() + 1);
                *sent = Some((0, 0));
                Err(unknown())
            },
            |_| {
                Err(Error::InvalidInput {
                    reason: "gone".into(),
                })
            },
        )
        .unwrap_err();
        assert!(matches!(err, Error::InvalidInput { .. }) && runs.get() == 1);
    }

    #[test]
    fn an_unanswered_commit_is_judged_by_its_status_and_the_servers_start() {
        use XactStatus::*;
        assert_eq!(verdict(Committed, false), Verdict::Landed(true));
        assert_eq!(verdict(Aborted, false), Verdict::Landed(false));
        assert_eq!(verdict(InProgress, false), Verdict::Wait);
        assert_eq!(verdict(InTheFuture, false), Verdict::Landed(false));
        assert!(matches!(verdict(Forgotten, false), Verdict::Unknown(_)));
        // After a restart the id may be another transaction's: only what rules the commit
        // out is sure, and a transaction in progress (perhaps another's) is waited for.
        assert!(matches!(verdict(Committed, true), Verdict::Unknown(_)));
        assert_eq!(verdict(Aborted, true), Verdict::Landed(false));
        assert_eq!(verdict(InProgress, true), Verdict::Wait);
        assert_eq!(verdict(InTheFuture, true), Verdict::Landed(false));
    }

    #[test]
    fn only_transient_errors_are_retried() {
        let other = Error::Backend {
            backend: "postgres",
            source: "not a client error".into(),
        };
        assert!(!retryable(&other));
        assert!(!retryable(&Error::InvalidInput { reason: "x".into() }));
        assert!(!retryable(&Error::NotFound {
            what: "asset",
            key: "x".into()
        }));
    }
}
