//! Many processes, one lake: three `aperture worker`s and two `aperture serve`s, each with a
//! data folder of its own (its config, models and search index), share one PostgreSQL catalog
//! and one blob store, as they would on five machines. The PostgreSQL server is the one
//! `scripts/services.sh` starts (`APERTURE_TEST_POSTGRES`); the blob store is the S3 server
//! it starts when there is one (`APERTURE_TEST_S3_URL`), else a folder all five share. Also:
//! ingest and indexing across PostgreSQL restarts.

use std::io::Read;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use aperture_server::testing::Client;

use crate::Aperture;

/// A new database on the test server, or `None` (skipped) outside CI.
fn catalog_url() -> Option<String> {
    let server = aperture_catalog::conformance::shared_server()?;
    Some(aperture_catalog::conformance::fresh_database(
        &server,
        "aperture_e2e",
    ))
}

/// The shared blob store: a prefix of its own on the test S3 server, else a shared folder.
fn blob_url(shared: &std::path::Path) -> (String, Vec<(String, String)>) {
    match std::env::var("APERTURE_TEST_S3_URL") {
        Ok(url) if !url.is_empty() => {
            let prefix = uuid::Uuid::now_v7().simple().to_string();
            // `aws_endpoint=… aws_access_key_id=…`: given to each process as the AWS_*
            // variables a deployment would set.
            let options = std::env::var("APERTURE_TEST_S3_OPTIONS")
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_ascii_uppercase(), v.to_owned()))
                .collect();
            (format!("{}/{prefix}", url.trim_end_matches('/')), options)
        }
        _ => (
            url::Url::from_directory_path(shared).unwrap().to_string(),
            Vec::new(),
        ),
    }
}

/// One node: a data folder initialised against the shared catalog and blobs.
struct Node {
    aperture: Aperture,
    env: Vec<(String, String)>,
}

impl Node {
    fn init(catalog: &str, blobs: &str, env: &[(String, String)]) -> (Node, String) {
        Self::init_with(catalog, blobs, env, &[])
    }

    /// [`Node::init`] with more `init` arguments (`--search URL`).
    fn init_with(
        catalog: &str,
        blobs: &str,
        env: &[(String, String)],
        more: &[&str],
    ) -> (Node, String) {
        let node = Node {
            aperture: Aperture {
                dir: tempfile::tempdir().unwrap(),
            },
            env: env.to_vec(),
        };
        // Every machine of a lake writes the audit log with the same key: the first node makes
        // it, and the others get a copy, as an operator copies it to each machine.
        static KEYS: std::sync::Mutex<Vec<(String, std::path::PathBuf)>> =
            std::sync::Mutex::new(Vec::new());
        let mut keys = KEYS.lock().unwrap_or_else(|e| e.into_inner());
        let key_file = node.aperture.data().join("audit.key");
        if let Some((_, first)) = keys.iter().find(|(url, _)| url == catalog) {
            std::fs::create_dir_all(node.aperture.data()).unwrap();
            std::fs::copy(first, &key_file).unwrap();
        }
        let mut args = vec!["init", "--catalog", catalog, "--blobs", blobs];
        args.extend_from_slice(more);
        let out = node.ok(&args);
        if !keys.iter().any(|(url, _)| url == catalog) {
            // Kept past this node's folder, which a test may drop first.
            let kept = std::env::temp_dir().join(format!(
                "aperture-test-key-{}-{}",
                std::process::id(),
                keys.len()
            ));
            std::fs::copy(&key_file, &kept).unwrap();
            keys.push((catalog.to_owned(), kept));
        }
        (node, out)
    }

    fn command(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = self.aperture.command(args);
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.command(args).output().unwrap();
        assert!(
            out.status.success(),
            "aperture {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `aperture serve` without analysis workers of its own, on a free port.
    fn serve(&self, admin: &str) -> Running {
        let mut child = self
            .command(&["serve", "--listen", "127.0.0.1:0", "--workers", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let url = aperture_server::testing::listening_url(&mut child);
        Running {
            child,
            client: Some(Client {
                url,
                admin: admin.to_owned(),
            }),
        }
    }

    /// `aperture worker` with a short lease, so a killed one's jobs move on quickly.
    fn worker(&self) -> Running {
        let child = self
            .command(&["worker", "--lease", "4"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Running {
            child,
            client: None,
        }
    }
}

/// A running process, killed when dropped.
struct Running {
    child: Child,
    client: Option<Client>,
}

impl Running {
    fn client(&self) -> &Client {
        self.client.as_ref().unwrap()
    }

    /// Asks the process to stop (SIGTERM, as systemd does) and returns what it printed.
    fn stop(mut self) -> String {
        // SAFETY: signalling a child we started and have not reaped.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let mut out = String::new();
        if let Some(mut stdout) = self.child.stdout.take() {
            stdout.read_to_string(&mut out).unwrap();
        }
        let status = self.child.wait().unwrap();
        assert!(status.success(), "stopped with {status}: {out}");
        out
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn document(n: usize) -> Vec<u8> {
    let words = [
        "harbour", "glacier", "orchard", "lantern", "meadow", "copper",
    ];
    format!(
        "Field report {n}. The {} near the {} was recorded on day {n}.\n",
        words[n % words.len()],
        words[(n / words.len()) % words.len()]
    )
    .into_bytes()
}

fn search(client: &Client, token: &str, q: &str) -> Vec<String> {
    client.json(&format!("/api/v1/search?q={q}"), token)["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["asset"]["name"].as_str().unwrap().to_owned())
        .collect()
}

/// Past one machine's memory: two servers and a worker share one search index on PostgreSQL
/// (here the catalog's database), so neither keeps one of its own. What comes in through one
/// server is found through the other, and an erasure on one node is gone from both servers'
/// searches at once.
#[test]
fn two_servers_search_one_shared_index() {
    let Some(catalog) = catalog_url() else {
        return;
    };
    let shared = tempfile::tempdir().unwrap();
    let (blobs, env) = blob_url(shared.path());
    let shared_index = ["--search", catalog.as_str()];
    let (first, said) = Node::init_with(&catalog, &blobs, &env, &shared_index);
    assert!(said.contains("search   postgres://"), "{said}");
    let admin = said
        .lines()
        .find_map(|l| l.strip_prefix("admin token: "))
        .unwrap_or_else(|| panic!("no admin token:\n{said}"))
        .to_owned();
    let nodes = [
        first,
        Node::init_with(&catalog, &blobs, &env, &shared_index).0,
        Node::init_with(&catalog, &blobs, &env, &shared_index).0,
    ];
    let servers = [nodes[0].serve(&admin), nodes[1].serve(&admin)];
    let worker = nodes[2].worker();
    let (one, two) = (servers[0].client(), servers[1].client());
    for n in 0..6 {
        let name = format!("report-{n}.txt");
        assert_eq!(one.upload(&admin, "field", &[(&name, &document(n))]).0, 200);
    }
    two.wait_indexed(6);
    let found = search(two, &admin, "glacier");
    assert_eq!(found, ["report-1.txt"], "{found:?}");
    let harbour = search(two, &admin, "harbour");
    assert!(harbour.iter().any(|n| n == "report-0.txt"), "{harbour:?}");
    for node in &nodes {
        assert!(
            !node.aperture.data().join("search").exists(),
            "no node keeps an index of its own"
        );
    }

    // Erased on one node: gone from the servers' searches at once.
    let assets = one.json("/api/v1/assets?limit=100", &admin);
    let id = assets["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "report-1.txt")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    nodes[2].ok(&["rm", &id]);
    assert!(search(two, &admin, "glacier").is_empty());
    assert!(search(one, &admin, "glacier").is_empty());
    two.wait_indexed(5);
    drop(worker);
}

#[test]
fn three_workers_and_two_servers_share_one_catalog_and_store() {
    let Some(catalog) = catalog_url() else {
        return;
    };
    let shared = tempfile::tempdir().unwrap();
    let (blobs, env) = blob_url(shared.path());

    // Five data folders; the first `init` makes the admin token, the others find it made.
    let (first, said) = Node::init(&catalog, &blobs, &env);
    let admin = said
        .lines()
        .find_map(|l| l.strip_prefix("admin token: "))
        .unwrap_or_else(|| panic!("no admin token:\n{said}"))
        .to_owned();
    assert!(said.contains("catalog  postgres://"), "{said}");
    let mut nodes = vec![first];
    for _ in 0..4 {
        let (node, said) = Node::init(&catalog, &blobs, &env);
        assert!(
            !said.contains("admin token"),
            "one admin token per lake: {said}"
        );
        nodes.push(node);
    }
    let servers = [nodes[0].serve(&admin), nodes[1].serve(&admin)];
    let workers: Vec<Running> = nodes[2..].iter().map(Node::worker).collect();
    let (one, two) = (servers[0].client(), servers[1].client());

    // Files arrive through both servers, some of them the same file at once.
    let docs: Vec<(String, Vec<u8>)> = (0..24)
        .map(|n| (format!("report-{n}.txt"), document(n)))
        .collect();
    let (first_half, second_half) = docs.split_at(12);
    let same = b"the same bytes, sent to both servers at once".to_vec();
    std::thread::scope(|s| {
        let a = s.spawn(|| {
            for (name, bytes) in first_half {
                assert_eq!(one.upload(&admin, "field", &[(name, bytes)]).0, 200);
            }
        });
        let b = s.spawn(|| {
            for (name, bytes) in second_half {
                assert_eq!(two.upload(&admin, "field", &[(name, bytes)]).0, 200);
            }
        });
        let c = s.spawn(|| one.upload(&admin, "field", &[("same.txt", &same)]).0);
        let d = s.spawn(|| two.upload(&admin, "field", &[("same.txt", &same)]).0);
        a.join().unwrap();
        b.join().unwrap();
        assert_eq!(c.join().unwrap(), 200);
        assert_eq!(d.join().unwrap(), 200);
    });
    let assets = one.json("/api/v1/assets?limit=100", &admin);
    assert_eq!(
        assets["items"].as_array().unwrap().len(),
        25,
        "one asset per content, the file sent twice stored once: {assets}"
    );

    // A worker killed mid-run: its leases expire and the others finish its jobs.
    let mut workers = workers.into_iter();
    let mut doomed = workers.next().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    doomed.child.kill().unwrap();
    doomed.child.wait().unwrap();
    for client in [one, two] {
        // The shared queue is empty and this server's own index holds every asset.
        client.wait_indexed(25);
    }

    // Each server's own index followed the shared feed: what came in through one is found
    // through the other.
    let from_one = search(two, &admin, "report-3");
    assert!(from_one.iter().any(|n| n == "report-3.txt"), "{from_one:?}");
    let from_two = search(one, &admin, "report-17");
    assert!(
        from_two.iter().any(|n| n == "report-17.txt"),
        "{from_two:?}"
    );
    let glacier: Vec<String> = search(two, &admin, "glacier");
    assert!(glacier.len() >= 4, "{glacier:?}");

    // Every job ended once: nothing failed, nothing is left.
    let status = two.json("/api/v1/status", &admin);
    assert_eq!(status["jobs"]["failed"], 0, "{status}");
    assert_eq!(status["jobs"]["queued"], 0, "{status}");
    let ran: Vec<String> = workers.map(Running::stop).collect();
    let jobs: Vec<u64> = ran
        .iter()
        .map(|out| {
            out.lines()
                .find_map(|l| l.strip_prefix("ran "))
                .and_then(|l| l.split_whitespace().next())
                .and_then(|n| n.replace(',', "").parse().ok())
                .unwrap_or_else(|| panic!("no report: {out}"))
        })
        .collect();
    assert!(
        jobs.iter().all(|n| *n > 0),
        "both surviving workers took jobs from the shared queue: {ran:?}"
    );

    // A session opened on one server is good on the other, and signing out ends it on both.
    let agent = Client::agent();
    let response = agent
        .post(&format!("{}/api/v1/session", one.url))
        .header("Content-Type", "application/json")
        .send(serde_json::json!({ "token": admin }).to_string())
        .unwrap();
    assert_eq!(response.status().as_u16(), 204);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let me = |client: &Client| {
        agent
            .get(&format!("{}/api/v1/me", client.url))
            .header("Cookie", &cookie)
            .call()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(me(two), 200, "the session is known to the other server");
    let out = agent
        .delete(&format!("{}/api/v1/session", two.url))
        .header("Cookie", &cookie)
        .header("X-Aperture", "1")
        .call()
        .unwrap();
    assert_eq!(out.status().as_u16(), 204);
    assert_eq!(me(one), 401, "signed out everywhere");

    // The blobs are in the shared store, whole: every server reads every original.
    let started = Instant::now();
    for asset in assets["items"].as_array().unwrap().iter().take(5) {
        let id = asset["id"].as_str().unwrap();
        let (status, body) = two.call(
            "GET",
            &format!("/api/v1/assets/{id}/original"),
            Some(&admin),
        );
        assert_eq!(status, 200);
        assert_eq!(body.len() as u64, asset["size"].as_u64().unwrap());
    }
    assert!(started.elapsed() < Duration::from_secs(30));

    // A server killed in the middle of an upload: nothing of it is stored, and the lake is
    // whole for everyone else.
    let [mut one_proc, two_proc] = servers;
    let addr = one_proc
        .client()
        .url
        .trim_start_matches("http://")
        .to_owned();
    let mut upload = std::net::TcpStream::connect(&addr).unwrap();
    let boundary = "cut-short";
    let head = format!(
        "POST /api/v1/assets HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {admin}\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\n\
         Content-Length: {}\r\n\r\n--{boundary}\r\nContent-Disposition: form-data; \
         name=\"file\"; filename=\"half.bin\"\r\n\r\n",
        64 << 20
    );
    std::io::Write::write_all(&mut upload, head.as_bytes()).unwrap();
    std::io::Write::write_all(&mut upload, &vec![7u8; 4 << 20]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    one_proc.child.kill().unwrap();
    one_proc.child.wait().unwrap();
    let two = two_proc.client();
    let after = two.json("/api/v1/assets?limit=100", &admin);
    assert_eq!(
        after["items"].as_array().unwrap().len(),
        25,
        "nothing of the cut upload"
    );
    let fsck: serde_json::Value = serde_json::from_str(&nodes[1].ok(&["fsck", "--json"])).unwrap();
    assert_eq!(fsck["healthy"], true, "{fsck}");
}
/// PostgreSQL restarted (cleanly, then crashed) while `aperture ingest` records files and while
/// `aperture index` runs their jobs: both finish, every file is recorded once, every job ran to
/// its end once. The server is one of the test's own (`PgServer`), so the restarts touch
/// nobody else.
#[test]
fn ingest_and_indexing_survive_postgres_restarts() {
    let Some(server) = aperture_catalog::conformance::PgServer::start() else {
        return;
    };
    let catalog = server.database("faults");
    let ap = Aperture {
        dir: tempfile::tempdir().unwrap(),
    };
    ap.ok(&["init", "--catalog", &catalog]);
    let inputs = ap.inputs();
    for n in 0..2000 {
        std::fs::write(
            inputs.join(format!("note-{n}.txt")),
            format!("note {n}: the lantern by the orchard, entry {n}\n"),
        )
        .unwrap();
    }
    // The restarts begin once the command is at work (`begun` counts its rows): on a busy
    // machine a command can take seconds to start, and would miss them.
    let restart_during = |what: &str, child: std::process::Child, begun: &str| {
        let waited = std::time::Instant::now();
        loop {
            let rows: i64 = postgres::Client::connect(&catalog, postgres::NoTls)
                .and_then(|mut c| c.query_one(begun, &[]))
                .map_or(0, |r| r.get(0));
            if rows > 0 || waited.elapsed() > Duration::from_secs(60) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        for mode in ["fast", "immediate"] {
            std::thread::sleep(Duration::from_millis(300));
            server.stop(mode);
            std::thread::sleep(Duration::from_millis(800));
            server.resume();
        }
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "aperture {what} failed: {stderr}");
        assert!(
            stderr.contains("retrying"),
            "the server went away while aperture {what} ran: {stderr}"
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let ingest = ap
        .command(&["ingest", inputs.to_str().unwrap(), "--no-progress"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    restart_during("ingest", ingest, "SELECT COUNT(*) FROM assets");
    // Again: every file is known, none recorded twice.
    let again = ap.json(&["ingest", inputs.to_str().unwrap(), "--no-progress"]);
    assert_eq!(again["totals"]["known"], 2000, "{}", again["totals"]);

    let index = ap
        .command(&["index", "--no-progress", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let report: serde_json::Value = serde_json::from_str(&restart_during(
        "index",
        index,
        "SELECT COUNT(*) FROM jobs WHERE state <> 'queued'",
    ))
    .unwrap();
    assert_eq!(report["failed"], 0, "{report}");
    let stats = ap.json(&["stats"]);
    assert_eq!(stats["stats"]["assets"], 2000, "{stats}");
    let found = ap.json(&["search", "lantern orchard", "--limit", "5"]);
    assert!(!found.as_array().unwrap().is_empty(), "{found}");
}
