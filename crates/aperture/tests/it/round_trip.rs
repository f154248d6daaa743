//! Bytes in, the same bytes out: from 0 bytes to over 1 GB, with bounded memory.

use std::io::Write;
use std::path::Path;

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
fn peak_of(child: std::process::Child) -> (std::process::ExitStatus, u64) {
    use std::os::unix::process::ExitStatusExt;
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
    // The source has one random MiB in every part-sized window, at an offset that moves from
    // window to window, and holes between: every part the store writes differs and a misplaced
    // byte changes the hash, yet the source takes an eighth of its size on disk. The store
    // keeps a full copy and `get` streams into a hash here, so the test's peak on disk is
    // about one copy of the file (CI machines have run out of disk with two).
    const DATA: u64 = 1 << 20;
    let ap = Aperture::init();
    let dir = ap.inputs();
    let source = dir.join("large.bin");
    {
        use std::io::{Seek, SeekFrom};
        let mut file = std::fs::File::create(&source).unwrap();
        let mut chunk = vec![0u8; DATA as usize];
        let mut state = 0x1234_5678u64;
        for (i, window) in (0..SIZE).step_by(PART).enumerate() {
            let at = window + (i as u64 * 337_641) % (PART as u64 - DATA);
            let n = DATA.min(SIZE.saturating_sub(at)) as usize;
            fill(&mut chunk[..n], &mut state);
            file.seek(SeekFrom::Start(at)).unwrap();
            file.write_all(&chunk[..n]).unwrap();
        }
        file.set_len(SIZE).unwrap();
    }
    let expected = blake3_file(&source);

    let mut ingest = ap.command(&["ingest", source.to_str().unwrap(), "--no-progress"]);
    ingest.stdout(std::process::Stdio::null());
    let (status, ingest_peak) = peak_of(ingest.spawn().unwrap());
    assert!(status.success(), "ingest of {source:?} failed: {status}");
    let assets = ap.assets();
    assert_eq!(assets.len(), 1);
    assert_eq!(assets[0]["hash"], expected.as_str());
    assert_eq!(assets[0]["size"], SIZE);
    std::fs::remove_file(&source).unwrap();

    let mut get = ap.command(&["get", assets[0]["id"].as_str().unwrap(), "-o", "-"]);
    get.stdout(std::process::Stdio::piped());
    let mut child = get.spawn().unwrap();
    let mut restored = blake3::Hasher::new();
    let mut counted = CountingWriter(&mut restored, 0);
    std::io::copy(&mut child.stdout.take().unwrap(), &mut counted).unwrap();
    let restored_len = counted.1;
    let (status, get_peak) = peak_of(child);
    assert!(status.success(), "get failed: {status}");
    assert_eq!(restored_len, SIZE);
    assert_eq!(restored.finalize().to_hex().as_str(), expected);
    eprintln!(
        "1.1 GB round trip: peak RSS ingest {} MiB, get {} MiB",
        ingest_peak >> 20,
        get_peak >> 20
    );
    assert!(ingest_peak < LIMIT, "ingest peaked at {ingest_peak} bytes");
    assert!(get_peak < LIMIT, "get peaked at {get_peak} bytes");
}

/// A writer that passes bytes on and counts them.
struct CountingWriter<W>(W, u64);

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.0.write(buf)?;
        self.1 += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}
