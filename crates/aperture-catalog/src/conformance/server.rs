//! A PostgreSQL server of a test's own, for tests that stop, restart or kill it (the shared
//! one of `scripts/services.sh` serves the others). Built from the server binaries named by
//! `APERTURE_TEST_PG_BIN` (or the newest under `/usr/lib/postgresql`), in a temporary folder.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A running PostgreSQL server, stopped when dropped.
#[derive(Debug)]
pub struct PgServer {
    bin: PathBuf,
    data: PathBuf,
    /// Server settings, each passed as `-c name=value` at every start.
    settings: Vec<String>,
    _dir: tempfile::TempDir,
    /// The TCP port on 127.0.0.1.
    pub port: u16,
}

impl PgServer {
    /// Initialises and starts a server with `fsync=off` (tests need no durability, and it
    /// keeps them quick); `None` (with a note) when there are no server binaries, a panic
    /// under CI.
    pub fn start() -> Option<Self> {
        Self::start_with(&["fsync=off"])
    }

    /// Like [`PgServer::start`], with these settings (`name=value` without spaces, e.g.
    /// `fsync=off`) instead: none for a server as durable as a production one (fsync and
    /// synchronous commit on, PostgreSQL's defaults).
    pub fn start_with(settings: &[&str]) -> Option<Self> {
        let bin = match std::env::var_os("APERTURE_TEST_PG_BIN") {
            Some(bin) => PathBuf::from(bin),
            None => {
                let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|e| e.path().join("bin"))
                    .filter(|p| p.join("initdb").exists())
                    .collect();
                found.sort();
                match found.pop() {
                    Some(bin) => bin,
                    None if std::env::var_os("CI").is_some() => {
                        panic!("no PostgreSQL server binaries: CI must test PostgreSQL")
                    }
                    None => {
                        eprintln!("skipped: no PostgreSQL server binaries");
                        return None;
                    }
                }
            }
        };
        let dir = tempfile::Builder::new()
            .prefix("aperture-pg-")
            .tempdir_in("/tmp")
            .expect("a temporary folder");
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(status.success(), "chown the test server's folder");
        }
        let port = free_port();
        let server = Self {
            bin,
            data,
            settings: settings.iter().map(|s| (*s).to_owned()).collect(),
            _dir: dir,
            port,
        };
        server.run(
            "initdb",
            &["-A", "trust", "-U", "postgres", "--no-locale"],
            true,
        );
        server.pg_ctl("start");
        Some(server)
    }

    /// `postgres://postgres@127.0.0.1:PORT/DB`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates a database and returns its URL.
    pub fn database(&self, name: &str) -> String {
        create_database(&self.url("postgres"), name)
    }

    /// Stops the server: `mode` is `fast` (clients disconnected) or `immediate` (a crash).
    pub fn stop(&self, mode: &str) {
        self.run("pg_ctl", &["-m", mode, "-w", "stop"], false);
    }

    /// Starts a stopped server again, on the same port.
    pub fn resume(&self) {
        self.pg_ctl("start");
    }

    fn pg_ctl(&self, action: &str) {
        let mut options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.data.display()
        );
        for setting in &self.settings {
            // pg_ctl splits `-o` at spaces.
            debug_assert!(
                !setting.contains(char::is_whitespace),
                "setting with a space: {setting}"
            );
            options.push_str(" -c ");
            options.push_str(setting);
        }
        let log = self.data.join("server.log");
        let log = log.to_string_lossy();
        self.run(
            "pg_ctl",
            &["-w", "-t", "60", "-l", &log, "-o", &options, action],
            true,
        );
    }

    fn run(&self, program: &str, args: &[&str], check: bool) {
        let exe = self.bin.join(program);
        let mut command = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let status = command
            .arg("-D")
            .arg(&self.data)
            .args(args)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()));
        assert!(
            !check || status.success(),
            "{program} {args:?} failed: {status}"
        );
    }

    /// The data folder (for a look at the server's log).
    pub fn data(&self) -> &Path {
        &self.data
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.run("pg_ctl", &["-m", "immediate", "-w", "stop"], false);
    }
}

/// The shared test server's URL, `APERTURE_TEST_POSTGRES` (`scripts/services.sh start` prints
/// it; `scripts/test.sh` always sets it): `None` with a note when it is not set, a panic under
/// CI, which must test PostgreSQL.
pub fn shared_server() -> Option<String> {
    match std::env::var("APERTURE_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("APERTURE_TEST_POSTGRES is not set: CI must test PostgreSQL")
        }
        _ => {
            eprintln!("skipped: set APERTURE_TEST_POSTGRES (scripts/services.sh starts one)");
            None
        }
    }
}

/// A new, empty database named `PREFIX_p<pid>_<uuid>` on the server of `server_url` (the URL of
/// any database on it); returns the new database's URL. The first call of a test process drops
/// the databases that processes no longer running left behind (each is about 8 MB, and a test
/// run makes dozens: left there, they fill the disk).
pub fn fresh_database(server_url: &str, prefix: &str) -> String {
    static SWEPT: std::sync::Once = std::sync::Once::new();
    SWEPT.call_once(|| drop_databases_of_ended_processes(server_url));
    create_database(
        server_url,
        &format!(
            "{prefix}_p{}_{}",
            std::process::id(),
            uuid::Uuid::now_v7().simple()
        ),
    )
}

fn drop_databases_of_ended_processes(server_url: &str) {
    let Ok(mut admin) = postgres::Client::connect(server_url, postgres::NoTls) else {
        return;
    };
    let Ok(rows) = admin.query(
        "SELECT datname FROM pg_database WHERE NOT datistemplate AND datname ~ '_p[0-9]+_[0-9a-f]{32}$'",
        &[],
    ) else {
        return;
    };
    for row in rows {
        let name: String = row.get(0);
        let pid = name
            .rsplit('_')
            .nth(1)
            .and_then(|p| p.strip_prefix('p'))
            .and_then(|p| p.parse::<u32>().ok());
        let alive = pid.is_some_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists());
        if !alive {
            let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

fn create_database(server_url: &str, name: &str) -> String {
    let mut admin = postgres::Client::connect(server_url, postgres::NoTls)
        .unwrap_or_else(|e| panic!("connect to the test server {server_url}: {e}"));
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap_or_else(|e| panic!("create database {name}: {e}"));
    let (base, _) = server_url.rsplit_once('/').expect("a URL with a database");
    format!("{base}/{name}")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Whether this process runs as root (`/proc/self` belongs to the effective user).
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}
