//! What the ingest benches share: input files, the median of runs, a settled page cache,
//! running a command that must succeed, and sizes from the environment. Included by `#[path]`
//! from each bench.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Files of pseudo-random bytes (incompressible, all distinct), 1,000 to a folder.
pub fn make_files(dir: &Path, count: usize, size: usize, seed: u64) {
    std::fs::create_dir_all(dir).expect("bench folder");
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut buf = vec![0u8; size.min(8 << 20)];
    for i in 0..count {
        let sub = dir.join(format!("{:03}", i / 1000));
        std::fs::create_dir_all(&sub).expect("bench folder");
        let mut file = std::fs::File::create(sub.join(format!("{i:06}.bin"))).expect("bench file");
        let mut left = size;
        while left > 0 {
            let n = left.min(buf.len());
            for chunk in buf[..n].chunks_mut(8) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
            }
            std::io::Write::write_all(&mut file, &buf[..n]).expect("bench file");
            left -= n;
        }
    }
}

/// The middle of the times.
pub fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// Reads every source once, and flushes earlier writes (a local S3 server keeps its objects on
/// this disk too), so each run starts alike.
pub fn settle(sources: &Path) {
    run(Command::new("sh").arg("-c").arg(format!(
        "find '{}' -type f -print0 | xargs -0 cat > /dev/null; sync",
        sources.display()
    )));
}
/// Runs a command that must succeed.
pub fn run(cmd: &mut Command) {
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(status.success(), "{cmd:?} failed: {status}");
}

/// The number in the environment variable `name`, or `default`.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
