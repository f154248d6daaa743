//! The vendored USearch's one change (`vendor/usearch/APERTURE.md`) is in the machine code that
//! runs: its graph walks ask for the neighbours' vectors ahead of measuring them. The change has
//! no effect but speed, and its first version compiled to nothing at all (GCC deleted the loop
//! of prefetches), which only reading the machine code shows.

/// Searches a small space (so this executable surely links USearch's graph walk), then reads
/// its own machine code with `objdump` (`OBJDUMP` names another) for a `prefetcht0` in
/// USearch's functions. USearch's `build.rs` compiles it with `-O3` in every profile: at `-O1`
/// GCC kept even the first version's loop.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[test]
fn the_vendored_usearch_prefetches_in_its_graph_walks() {
    use std::io::BufRead;

    use aperture_core::{AssetId, MediaKind};
    use aperture_search::vectors::{NewVector, Space, VectorFilter};

    let mut space = Space::new(8).unwrap();
    let vectors: Vec<[f32; 8]> = (0..64)
        .map(|i| std::array::from_fn(|d| ((i * 31 + d * 17) % 97) as f32 - 48.0))
        .collect();
    for (i, vector) in vectors.iter().enumerate() {
        space
            .add(&NewVector {
                asset: AssetId::new(),
                collection: "c",
                kind: MediaKind::Image,
                date: 0,
                page: 0,
                ordinal: i as u32,
                vector,
            })
            .unwrap();
    }
    let found = space
        .search(&vectors[5], 3, &VectorFilter::default())
        .unwrap();
    assert_eq!(found.len(), 3);

    let exe = std::env::current_exe().unwrap();
    let objdump = std::env::var("OBJDUMP").unwrap_or_else(|_| "objdump".into());
    let mut child = std::process::Command::new(&objdump)
        .args(["--disassemble", "--demangle", "--no-show-raw-insn"])
        .arg(&exe)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{objdump} (binutils, which gcc brings): {e}"));
    // Functions are headed `address <name>:`; USearch's walks are its own functions or inlined
    // into the binding's (`search_<signed char>(unum::usearch::index_dense_gt…)`,
    // `NativeIndex::search_i8`).
    let (mut functions, mut prefetches, mut in_usearch) = (0, 0, false);
    for line in std::io::BufReader::new(child.stdout.take().unwrap()).split(b'\n') {
        let line = line.unwrap();
        let line = String::from_utf8_lossy(&line);
        if line.ends_with(">:") {
            in_usearch = line.contains("unum::usearch") || line.contains("NativeIndex::");
            functions += usize::from(in_usearch);
        } else if in_usearch && line.contains("prefetcht0") {
            prefetches += 1;
        }
    }
    assert!(
        child.wait().unwrap().success(),
        "{objdump} {}",
        exe.display()
    );
    assert!(
        functions > 0,
        "no function of USearch's named in {}: are its symbols stripped?",
        exe.display()
    );
    assert!(
        prefetches > 0,
        "no prefetch instruction in USearch's {functions} functions in {}: is \
         vendor/usearch/aperture.patch applied, [patch.crates-io] in the workspace's Cargo.toml, \
         and the prefetch written so that the compiler keeps it (vendor/usearch/APERTURE.md)?",
        exe.display()
    );
}
