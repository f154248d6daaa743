//! Damaged files never make probing fail: whatever is wrong with the bytes becomes a problem.

use aperture_media::fixtures::{exif_block, jpeg, pdf_with_text_pages, png, with_exif};
use aperture_media::{ProbeOptions, probe_bytes, probe_file};
use proptest::prelude::*;

/// Cuts `bytes` at a fraction of their length and overwrites a few of them.
fn damage(mut bytes: Vec<u8>, cut: f64, flips: &[(f64, u8)]) -> Vec<u8> {
    let keep = ((bytes.len() as f64) * cut) as usize;
    bytes.truncate(keep.max(1));
    let len = bytes.len();
    for &(at, value) in flips {
        bytes[((len as f64) * at) as usize % len] = value;
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn damaged_files_are_probed_without_error(
        fixture in 0usize..3,
        cut in 0.0f64..=1.0,
        flips in proptest::collection::vec((0.0f64..1.0, any::<u8>()), 0..6),
    ) {
        let (name, bytes) = match fixture {
            0 => ("photo.jpg", with_exif(&jpeg(48, 32), &exif_block())),
            1 => ("drawing.png", png(48, 32)),
            _ => ("letter.pdf", pdf_with_text_pages(3)),
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        let damaged = damage(bytes, cut, &flips);
        std::fs::write(&path, &damaged).unwrap();
        let probe = probe_file(&path, &ProbeOptions::default());
        prop_assert!(probe.is_ok(), "{:?}", probe);
        let probe = probe.unwrap();
        // Ingest probes a small file from its bytes in memory: the same findings.
        let from_bytes = probe_bytes(&path, &damaged, &ProbeOptions::default());
        prop_assert_eq!(from_bytes.as_ref().ok(), Some(&probe));
        for problem in &probe.metadata.problems {
            prop_assert!(!problem.is_empty());
            prop_assert!(!problem.starts_with(char::is_uppercase), "{problem}");
        }
    }
}

/// Issue 17: ingest checks a small image's size from its bytes in memory. Over the hostile
/// corpus (bombs of several formats among damaged files), the bytes get the file's answer.
#[test]
fn r17_the_size_check_of_bytes_answers_as_the_file_does() {
    let dir = tempfile::tempdir().unwrap();
    let files = aperture_media::fixtures::hostile_corpus(&dir.path().join("corpus"), &[]);
    let mut refused = std::collections::BTreeSet::new();
    for path in files.iter().filter(|p| p.is_file()) {
        let bytes = std::fs::read(path).unwrap();
        let name = path.display().to_string();
        let (from_file, from_bytes) = (
            aperture_media::check_image_size(path, &name),
            aperture_media::check_image_bytes(&bytes, &name),
        );
        assert_eq!(
            from_bytes.as_ref().map_err(ToString::to_string),
            from_file.as_ref().map_err(ToString::to_string),
            "{name}"
        );
        if from_file.is_err() {
            refused.insert(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    for bomb in ["bomb-30000.png", "bomb-65534.jpg", "bomb-screen.gif"] {
        assert!(refused.contains(bomb), "{bomb} passed: refused {refused:?}");
    }
    assert!(
        !refused.contains("wide-19000x1.png"),
        "a wide image within the limits was refused"
    );
}
