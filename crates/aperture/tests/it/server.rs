//! The real binary end to end: `aperture serve` over HTTP on loopback, then `aperture audit
//! --verify` on what it logged. (The API's own tests run the server in process, in
//! `aperture-server`.)

use std::path::Path;
use std::process::{Child, Stdio};

use aperture_server::testing::Client;

use crate::Aperture;

/// A running server on a free port; killed when dropped.
pub struct Server {
    child: Child,
    client: Client,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An initialised data folder with `config` as its config file, and its admin token.
pub fn init_with(config: &str) -> (Aperture, String) {
    let dir = tempfile::tempdir().unwrap();
    let me = Aperture { dir };
    std::fs::create_dir_all(me.data()).unwrap();
    std::fs::write(me.data().join("aperture.toml"), config).unwrap();
    let out = me.ok(&["init"]);
    let token = out
        .lines()
        .find_map(|l| l.strip_prefix("admin token: "))
        .unwrap_or_else(|| panic!("init printed no admin token:\n{out}"))
        .to_owned();
    (me, token)
}

impl Server {
    pub fn start(aperture: &Aperture, admin: &str) -> Server {
        let mut child = aperture
            .command(&["serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let url = aperture_server::testing::listening_url(&mut child);
        Server {
            child,
            client: Client {
                url,
                admin: admin.to_owned(),
            },
        }
    }
}

impl std::ops::Deref for Server {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

/// A small PNG drawn from `seed`.
pub fn png(seed: u8) -> Vec<u8> {
    let img = image::RgbImage::from_fn(64, 48, |x, y| {
        image::Rgb([
            (x as u8).wrapping_mul(seed),
            (y as u8).wrapping_mul(3),
            seed,
        ])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

#[test]
fn audit_verify_finds_tampered_deleted_and_reordered_entries() {
    let (aperture, admin) = init_with("");
    {
        let server = Server::start(&aperture, &admin);
        server.upload(&admin, "default", &[("a.png", &png(1))]);
        server.wait_indexed(1);
        for q in ["one", "two", "three", "four"] {
            server.json(&format!("/api/v1/search?q={q}"), &admin);
        }
    }
    let verify = |extra: &[&str]| {
        let mut args = vec!["audit", "--verify"];
        args.extend(extra);
        let out = aperture.run(&args);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (ok, text) = verify(&[]);
    assert!(ok, "{text}");
    let head = text
        .split_whitespace()
        .skip_while(|w| *w != "head")
        .nth(1)
        .unwrap()
        .to_owned();
    let log = aperture.json(&["audit"]);
    let searches: Vec<i64> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "search")
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(searches.len(), 4, "{log}");
    let (a, b) = (searches[1], searches[2]);

    let db = rusqlite::Connection::open(aperture.data().join("catalog.db")).unwrap();
    db.execute_batch("DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;")
        .unwrap();
    // The triggers refused these before they were dropped; the chain must catch them now.
    let sql = |s: &str| db.execute_batch(s).unwrap();

    // Tampered: a query rewritten.
    sql(&format!(
        "UPDATE audit SET detail = replace(detail, 'two', 'owt') WHERE seq = {a}"
    ));
    let (ok, text) = verify(&[]);
    assert!(!ok);
    assert!(
        text.contains(&format!("#{a}:")) && text.contains("changed"),
        "{text}"
    );
    sql(&format!(
        "UPDATE audit SET detail = replace(detail, 'owt', 'two') WHERE seq = {a}"
    ));
    assert!(verify(&[]).0);

    // Deleted: the entry after the gap is named.
    sql(&format!(
        "CREATE TABLE saved AS SELECT * FROM audit WHERE seq = {a}; DELETE FROM audit WHERE seq = {a}"
    ));
    let (ok, text) = verify(&[]);
    assert!(!ok);
    assert!(
        text.contains(&format!("#{b}:")) && text.contains("missing"),
        "{text}"
    );
    sql("INSERT INTO audit SELECT * FROM saved; DROP TABLE saved");
    assert!(verify(&[]).0);

    // Reordered: two entries swap places (their numbers stay in order).
    sql(&format!(
        "CREATE TABLE saved AS SELECT * FROM audit WHERE seq IN ({a}, {b});
         UPDATE audit SET at = (SELECT at FROM saved WHERE seq = {b}),
                          detail = (SELECT detail FROM saved WHERE seq = {b}),
                          prev = (SELECT prev FROM saved WHERE seq = {b}),
                          hash = (SELECT hash FROM saved WHERE seq = {b}) WHERE seq = {a};
         UPDATE audit SET at = (SELECT at FROM saved WHERE seq = {a}),
                          detail = (SELECT detail FROM saved WHERE seq = {a}),
                          prev = (SELECT prev FROM saved WHERE seq = {a}),
                          hash = (SELECT hash FROM saved WHERE seq = {a}) WHERE seq = {b};"
    ));
    let (ok, text) = verify(&[]);
    assert!(!ok);
    assert!(text.contains(&format!("#{a}:")), "{text}");
    sql(&format!(
        "DELETE FROM audit WHERE seq IN ({a}, {b}); INSERT INTO audit SELECT * FROM saved; DROP TABLE saved"
    ));
    assert!(verify(&[]).0);

    // Rewritten whole by someone who can write the catalog but has no key: one query
    // changed, every hash after it recomputed (unkeyed, or with a key of their own), so the
    // chain links from end to end.
    for forger in [
        aperture_catalog::access::AuditKey::unkeyed(),
        aperture_catalog::access::AuditKey::new([9; 32], 1),
    ] {
        sql("CREATE TABLE saved AS SELECT * FROM audit");
        sql(&format!(
            "UPDATE audit SET detail = replace(detail, 'two', 'owt') WHERE seq = {a}"
        ));
        let rows: Vec<(i64, i64, String, String, Option<String>, String)> = db
            .prepare("SELECT seq, at, actor, action, target, detail FROM audit ORDER BY seq")
            .unwrap()
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let mut prev = aperture_catalog::access::GENESIS;
        for (seq, at, actor, action, target, detail) in rows {
            let hash = aperture_catalog::access::entry_hash(
                &forger,
                &prev,
                seq,
                aperture_core::UnixMillis(at),
                &actor,
                &action,
                target.as_deref(),
                &detail,
            );
            db.execute(
                "UPDATE audit SET prev = ?1, hash = ?2 WHERE seq = ?3",
                rusqlite::params![prev.as_slice(), hash.as_slice(), seq],
            )
            .unwrap();
            prev = hash;
        }
        let (ok, text) = verify(&[]);
        assert!(!ok, "a log rewritten without the key passed: {text}");
        assert!(text.contains("#1:") && text.contains("audit key"), "{text}");
        sql("DELETE FROM audit; INSERT INTO audit SELECT * FROM saved; DROP TABLE saved");
        assert!(verify(&[]).0);
    }

    // Cut short: the chain alone cannot tell; the head written beside the key after every
    // append can, as can a head recorded elsewhere.
    sql("DELETE FROM audit WHERE seq = (SELECT MAX(seq) FROM audit)");
    let (ok, text) = verify(&[]);
    assert!(!ok);
    assert!(text.contains("cut short"), "{text}");
    let (ok, text) = verify(&["--head", &head]);
    assert!(!ok);
    assert!(text.contains("cut short"), "{text}");
    // A head file changed by hand is refused, not believed.
    let head_file = aperture.data().join("audit.key.head");
    let written = std::fs::read_to_string(&head_file).unwrap();
    let (seq, rest) = written.split_once(':').unwrap();
    let earlier = format!("{}:{rest}", seq.parse::<i64>().unwrap() - 1);
    std::fs::write(&head_file, earlier).unwrap();
    let out = aperture.run(&["audit", "--verify"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("was changed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(db);
    assert!(Path::new(&aperture.data().join("catalog.db")).exists());
}
