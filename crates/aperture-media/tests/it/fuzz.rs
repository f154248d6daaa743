//! Fuzzing on the stable toolchain, with a corpus kept in the repository: every file in
//! `fuzz/corpus/media/` (small valid seeds of each kind, and each input that ever made one of
//! these targets fail, kept as a regression) goes through every target as it is, then
//! mutated by proptest (bits flipped, bytes overwritten with edge values, cut short, slices
//! repeated or spliced in). `APERTURE_FUZZ_CASES` sets the mutations per target (default
//! 200; CI runs more). A failure prints the mutated input's seed and steps; save the input
//! into the corpus when fixing it.
//!
//! The targets: sniffing, probing a file (images, PDF, audio and video through ffprobe,
//! text), PDF parsing and text extraction, and text extraction from HTML and plain text. None
//! may panic, hang or take memory out of proportion to its input.

use std::path::{Path, PathBuf};

use aperture_media::{
    ProbeOptions, check_image_bytes, check_image_size, probe_bytes, probe_file, sniff, text,
};
use proptest::prelude::*;

fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/media");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(
        files.len() >= 10,
        "the seeds are missing from {}",
        dir.display()
    );
    files
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect()
}

fn cases() -> u32 {
    std::env::var("APERTURE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

/// One change to a byte string.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Set(usize, u8),
    Cut(usize),
    Repeat(usize, usize, u8),
    Splice(usize, Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let edge = prop_oneof![
        Just(0u8),
        Just(0xff),
        Just(0x7f),
        Just(0x80),
        Just(b'<'),
        Just(b'('),
        Just(b'['),
        any::<u8>()
    ];
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::Flip(at, bit)),
        (any::<usize>(), edge).prop_map(|(at, v)| Mutation::Set(at, v)),
        any::<usize>().prop_map(Mutation::Cut),
        (any::<usize>(), 1usize..64, 1u8..40).prop_map(|(at, len, n)| Mutation::Repeat(at, len, n)),
        (
            any::<usize>(),
            proptest::collection::vec(any::<u8>(), 1..32)
        )
            .prop_map(|(at, bytes)| Mutation::Splice(at, bytes)),
    ]
}

fn mutate(mut bytes: Vec<u8>, steps: &[Mutation]) -> Vec<u8> {
    for step in steps {
        let len = bytes.len().max(1);
        match step {
            Mutation::Flip(at, bit) if !bytes.is_empty() => bytes[at % len] ^= 1 << bit,
            Mutation::Set(at, v) if !bytes.is_empty() => bytes[at % len] = *v,
            Mutation::Cut(at) => bytes.truncate(at % len),
            Mutation::Repeat(at, n, times) if !bytes.is_empty() => {
                let from = at % len;
                let slice = bytes[from..(from + n).min(bytes.len())].to_vec();
                for _ in 0..*times {
                    bytes.splice(from..from, slice.iter().copied());
                }
            }
            Mutation::Splice(at, new) => {
                let at = at % (bytes.len() + 1);
                bytes.splice(at..at, new.iter().copied());
            }
            _ => {}
        }
    }
    bytes
}

/// Every target on one input, named as a file called `name`.
fn every_target(name: &str, bytes: &[u8]) {
    let (mime, kind) = sniff(bytes);
    assert!(!mime.is_empty(), "{name}: no type for {kind:?}");
    let _ = text::looks_like_text(bytes);
    let decoded = text::decode(bytes, false, None);
    let _ = text::tidy(&decoded);
    let html = text::html_to_text(&decoded);
    assert!(
        html.len() <= decoded.len() + 16,
        "{name}: text grew from its markup"
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    let probe = probe_file(&path, &ProbeOptions::default());
    match &probe {
        Ok(probe) => assert!(probe.metadata.problems.iter().all(|p| !p.is_empty())),
        Err(e) => assert!(e.to_string().contains(name), "{name}: {e}"),
    }
    // Ingest probes a small file from its bytes in memory, and checks an image's size there.
    let from_bytes = probe_bytes(&path, bytes, &ProbeOptions::default());
    assert_eq!(
        from_bytes.as_ref().ok(),
        probe.as_ref().ok(),
        "{name}: its bytes probe otherwise than the file"
    );
    assert_eq!(
        check_image_bytes(bytes, name).is_ok(),
        check_image_size(&path, name).is_ok(),
        "{name}: its bytes pass the size check otherwise than the file"
    );

    if let Ok(doc) = lopdf::Document::load_mem(bytes) {
        let mut work = 1 << 20;
        for (_, page) in doc.get_pages().into_iter().take(20) {
            let (text, _) = aperture_media::pdf_text::page_text(&doc, page, 1 << 16, &mut work);
            assert!(
                text.len() <= (1 << 16) + 8,
                "{name}: page text past its limit"
            );
        }
    }
}

#[test]
fn the_corpus_goes_through_every_target() {
    for (name, bytes) in corpus() {
        every_target(&name, &bytes);
    }
}

#[test]
fn mutations_of_the_corpus_go_through_every_target() {
    let seeds = corpus();
    let config = ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(
        seed in 0..seeds.len(),
        steps in proptest::collection::vec(mutation(), 1..8),
    )| {
        let (name, bytes) = &seeds[seed];
        every_target(name, &mutate(bytes.clone(), &steps));
    });
}
