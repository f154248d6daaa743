//! Bytes in, the same bytes out: from 0 bytes to over 1 GB, with bounded memory.

use std::io::Write;
use std::path::Path;
use std::process::Command;

use crate::{Aperture, blake3_file, fill, pseudo_random};

const PART: usize = 8 * 1024 * 1024;

#[test]
fn every_size_comes_back_bit_exact() {
    let ap = Aperture::init();
    let dir = ap.inputs();
    let sizes = [
        0,
        1,
        4095,
        4096,
        65_537,
        PART - 1,
        PART,
        PART + 1,
        3 * PART + 12_345,
    ];
    for (i, size) in sizes.iter().enumerate() {
        std::fs::write(
            dir.join(format!("{i:02}-{size}.bin")),
            pseudo_random(*size, i as u64 + 1),
        )
        .unwrap();
    }
    let report = ap.ingest(&dir, "sizes");
    assert_eq!(report["totals"]["stored"], sizes.len());
    assert_eq!(report["totals"]["failed"], 0);
    for file in report["files"].as_array().unwrap() {
        let id = file["asset"].as_str().unwrap();
        let out = ap.dir.path().join("out.bin");
        ap.ok(&["get", id, "-o", out.to_str().unwrap()]);
        let source = Path::new(file["path"].as_str().unwrap());
        assert_eq!(
            std::fs::read(&out).unwrap(),
            std::fs::read(source).unwrap(),
            "{source:?}"
        );
        // And through standard output.
        let piped = ap.run(&["get", id, "-o", "-"]);
        assert!(piped.status.success());
        assert_eq!(piped.stdout, std::fs::read(source).unwrap());
    }
}

/// Peak resident memory of a finished child, in bytes, from the kernel's accounting.
fn run_measured(mut cmd: Command) -> (std::process::ExitStatus, u64) {
    use std::os::unix::process::ExitStatusExt;
    let child = cmd.spawn().unwrap();
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: plain FFI call with valid pointers; `child` is never waited on by std.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid);
    std::mem::forget(child);
    (
        std::process::ExitStatus::from_raw(status),
        usage.ru_maxrss as u64 * 1024,
    )
}

#[test]
fn a_file_over_a_gigabyte_streams_with_bounded_memory() {
    const SIZE: u64 = 1_100_000_000;
    // Far below the file (1.1 GB): streaming holds a few 8 MiB parts; the rest is the
    // runtime and allocator arenas, which grow when the machine is busy with other tests.
    const LIMIT: u64 = 256 * 1024 * 1024;
    let ap = Aperture::init();
    let dir = ap.inputs();
    let source = dir.join("large.bin");
    {
        // Written in chunks: the test itself never holds the file either.
        let mut file = std::io::BufWriter::new(std::fs::File::create(&source).unwrap());
        let mut chunk = vec![0u8; 1 << 20];
        let mut state = 0x1234_5678u64;
        let mut left = SIZE;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            fill(&mut chunk[..n], &mut state);
            file.write_all(&chunk[..n]).unwrap();
            left -= n as u64;
        }
        file.flush().unwrap();
    }
    let expected = blake3_file(&source);

    let mut ingest = ap.command(&["ingest", source.to_str().unwrap(), "--no-progress"]);
    ingest.stdout(std::process::Stdio::null());
    let (status, ingest_peak) = run_measured(ingest);
    assert!(status.success());
    let assets = ap.assets();
    assert_eq!(assets.len(), 1);
    assert_eq!(assets[0]["hash"], expected.as_str());
    assert_eq!(assets[0]["size"], SIZE);
    // The store holds its own copy now: freeing the source keeps this test's peak on disk
    // at two copies of the file while the rest of the suite runs beside it.
    std::fs::remove_file(&source).unwrap();

    let out = ap.dir.path().join("restored.bin");
    let get = ap.command(&[
        "get",
        assets[0]["id"].as_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    let (status, get_peak) = run_measured(get);
    assert!(status.success());
    assert_eq!(std::fs::metadata(&out).unwrap().len(), SIZE);
    assert_eq!(blake3_file(&out), expected);
    eprintln!(
        "1.1 GB round trip: peak RSS ingest {} MiB, get {} MiB",
        ingest_peak >> 20,
        get_peak >> 20
    );
    assert!(ingest_peak < LIMIT, "ingest peaked at {ingest_peak} bytes");
    assert!(get_peak < LIMIT, "get peaked at {get_peak} bytes");
}
