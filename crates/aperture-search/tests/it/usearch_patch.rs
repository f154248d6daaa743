//! The vendored USearch's one change (`vendor/usearch/APERTURE.md`) is in the machine code that
//! runs: its graph walk asks for the neighbours' vectors ahead of measuring them. The change has
//! no visible effect but speed, and its first version compiled to nothing at all (GCC deleted
//! the loop of prefetches), which only reading the machine code shows.

/// This test's own executable links the searches it checks (the `index` tests search spaces).
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[test]
fn the_vendored_usearch_prefetches_in_its_searches() {
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new("objdump")
        .args(["--disassemble", "--demangle", "--no-show-raw-insn"])
        .arg(&exe)
        .output()
        .expect("objdump (binutils, which gcc brings) reads this test's machine code");
    assert!(
        out.status.success(),
        "objdump {}: {}",
        exe.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    // Functions are headed `address <name>:`; USearch's searches are inlined into the
    // binding's (`search_<signed char>(unum::usearch::index_dense_gt…)`) or are its own.
    let mut in_usearch = false;
    let mut prefetches = 0;
    for line in text.lines() {
        if line.ends_with(">:") {
            in_usearch = line.contains("unum::usearch");
        } else if in_usearch && line.contains("prefetcht0") {
            prefetches += 1;
        }
    }
    assert!(
        prefetches > 0,
        "no prefetch instruction in USearch's code in {}: is vendor/usearch/aperture.patch \
         applied, [patch.crates-io] in the workspace's Cargo.toml, and the prefetch written so \
         that the compiler keeps it (vendor/usearch/APERTURE.md)?",
        exe.display()
    );
}
