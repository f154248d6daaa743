//! Integration tests: every fixture is made in a temporary directory by
//! `aperture_media::fixtures`: images drawn in code, audio and video from `ffmpeg -f lavfi`,
//! PDFs built with lopdf.

mod av;
mod files;
mod fuzz;
mod images;
mod pdf;
mod robust;

use std::path::{Path, PathBuf};

use aperture_media::{Probe, ProbeOptions, probe_bytes, probe_file};

/// Probes with default options; the fixtures are all readable, so this must not fail. The
/// file's bytes read whole must probe the same (ingest probes a small file from memory).
fn probe(path: &Path) -> Probe {
    let from_file = probe_file(path, &ProbeOptions::default())
        .unwrap_or_else(|e| panic!("probing {} failed: {e}", path.display()));
    let bytes = std::fs::read(path).expect("read fixture");
    let from_bytes = probe_bytes(path, &bytes, &ProbeOptions::default())
        .unwrap_or_else(|e| panic!("probing the bytes of {} failed: {e}", path.display()));
    assert_eq!(
        from_bytes,
        from_file,
        "{}: its bytes probe otherwise than the file",
        path.display()
    );
    from_file
}

/// Writes `bytes` to `name` in `dir` and returns the path.
fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write fixture");
    path
}

/// Whether any problem contains `needle`, for assertion messages that show all of them.
fn has_problem(probe: &Probe, needle: &str) -> bool {
    probe.metadata.problems.iter().any(|p| p.contains(needle))
}
