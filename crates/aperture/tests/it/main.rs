//! End-to-end tests of the `aperture` binary, run as a user would run it.

mod analyze;
mod bad_input;
mod crash;
mod dedupe;
mod encryption;
mod erasure;
mod faces;
mod hostile;
mod isolation;
mod metadata;
mod models;
mod plates;
mod real_media;
mod round_trip;
mod scale_out;
mod search;
mod server;
mod speech;
mod translate;
mod video;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A data folder and the binary to run against it.
pub struct Aperture {
    /// The temporary folder holding the data folder and the inputs; removed when dropped.
    pub dir: tempfile::TempDir,
}

impl Aperture {
    /// A freshly initialised data folder.
    pub fn init() -> Self {
        Self::init_with(&[])
    }

    /// A data folder initialised with `aperture init ARGS` (`--search URL`, ...).
    pub fn init_with(args: &[&str]) -> Self {
        let me = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        let mut all = vec!["init"];
        all.extend_from_slice(args);
        me.ok(&all);
        me
    }

    /// The data folder, `<dir>/data`.
    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A folder for test inputs beside the data folder.
    pub fn inputs(&self) -> PathBuf {
        let path = self.dir.path().join("in");
        std::fs::create_dir_all(&path).unwrap();
        path
    }

    /// The binary with `--data` set and `APERTURE_CONFIG` and `APERTURE_MASTER_KEY` removed, ready for more arguments.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_aperture"));
        cmd.arg("--data").arg(self.data()).args(args);
        cmd.env_remove("APERTURE_CONFIG");
        cmd.env_remove("APERTURE_MASTER_KEY");
        cmd
    }

    /// Runs a command, whatever its outcome.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs a command that must succeed; returns its standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "aperture {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs a command with `--json` and parses what it prints.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.run(&all);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "aperture {all:?} printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }

    /// Ingests `path` into `collection`; returns the JSON report.
    pub fn ingest(&self, path: &Path, collection: &str) -> serde_json::Value {
        self.json(&["ingest", path.to_str().unwrap(), "-c", collection])
    }

    /// Every asset, as `ls --json` lists it.
    pub fn assets(&self) -> Vec<serde_json::Value> {
        let v = self.json(&["ls", "--limit", "1000000"]);
        v.as_array().unwrap().clone()
    }

    /// The JSON report of `fsck` (without `--repair`).
    pub fn fsck(&self) -> serde_json::Value {
        self.json(&["fsck"])
    }
}

/// Deterministic pseudo-random bytes (xorshift64), so failures reproduce.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut out = vec![0u8; len];
    fill(&mut out, &mut (seed | 1));
    out
}

/// Fills `buf` from the xorshift64 `state`, which must not be 0.
pub fn fill(buf: &mut [u8], state: &mut u64) {
    for chunk in buf.chunks_mut(8) {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        let bytes = state.to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
}

/// The BLAKE3 of a file, in hex, as Aperture names blobs.
pub fn blake3_file(path: &Path) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher
        .update_reader(std::fs::File::open(path).unwrap())
        .unwrap();
    hasher.finalize().to_hex().to_string()
}

/// Every file below `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}
