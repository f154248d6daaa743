//! Files that are not media, and files that cannot be read.

use aperture_core::MediaKind;
use aperture_media::{Error, ProbeOptions, probe_file};

use crate::{probe, write};

#[test]
fn empty_file_is_noted() {
    let dir = tempfile::tempdir().unwrap();
    let probe = probe(&write(dir.path(), "nothing.jpg", b""));
    assert_eq!(probe.mime, "application/x-empty");
    assert_eq!(probe.kind, MediaKind::Other);
    assert_eq!(probe.metadata.problems, ["empty file"]);
}

#[test]
fn text_and_html_are_documents() {
    let dir = tempfile::tempdir().unwrap();
    let notes = probe(&write(
        dir.path(),
        "notes.md",
        "# Notes\n\nÀ faire.\n".as_bytes(),
    ));
    assert_eq!(
        (notes.mime.as_str(), notes.kind),
        ("text/plain", MediaKind::Document)
    );
    assert!(
        notes.metadata.problems.is_empty(),
        "{:?}",
        notes.metadata.problems
    );

    let page = write(
        dir.path(),
        "page.htm",
        b"<!DOCTYPE html>\n<html><p>hi</p></html>\n",
    );
    let page = probe(&page);
    assert_eq!(
        (page.mime.as_str(), page.kind),
        ("text/html", MediaKind::Document)
    );
    assert!(
        page.metadata.problems.is_empty(),
        "{:?}",
        page.metadata.problems
    );
}

#[test]
fn text_named_like_a_video_is_noted() {
    let dir = tempfile::tempdir().unwrap();
    let probe = probe(&write(dir.path(), "clip.mp4", b"this is not a video\n"));
    assert_eq!(probe.kind, MediaKind::Document);
    assert_eq!(
        probe.metadata.problems,
        ["extension .mp4 does not match content (text/plain)"]
    );
}

#[test]
fn unknown_binary_is_a_generic_file() {
    let dir = tempfile::tempdir().unwrap();
    let bytes: Vec<u8> = (0..2000u32).map(|i| (i * 7919 % 251) as u8).collect();
    let probe = probe(&write(dir.path(), "blob.bin", &bytes));
    assert_eq!(probe.mime, "application/octet-stream");
    assert_eq!(probe.kind, MediaKind::Other);
    assert!(
        probe.metadata.problems.is_empty(),
        "{:?}",
        probe.metadata.problems
    );
}

#[test]
fn missing_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gone.jpg");
    let err = probe_file(&path, &ProbeOptions::default()).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    assert!(err.to_string().contains(&*path.to_string_lossy()), "{err}");
}

#[test]
fn directory_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("album.jpg");
    std::fs::create_dir(&path).unwrap();
    let err = probe_file(&path, &ProbeOptions::default()).unwrap_err();
    assert!(matches!(err, Error::NotAFile { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("cannot probe {}: is a directory", path.display())
    );
}

/// Issue 17: a FIFO (swapped in after the walk) is refused when opened, by the probe and by
/// the size check, not read: a read would wait for a writer. A device that never ends is
/// refused too. Run on a thread, so that a regression fails here instead of hanging the suite.
#[cfg(unix)]
#[test]
fn r17_fifos_and_devices_are_refused_without_waiting() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe.jpg");
    let name = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
    // SAFETY: a NUL-terminated path that lives across the call.
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
    for path in [fifo, std::path::PathBuf::from("/dev/zero")] {
        let (sent, answer) = std::sync::mpsc::channel();
        let asked = path.clone();
        std::thread::spawn(move || {
            let probed = probe_file(&asked, &ProbeOptions::default());
            let checked = aperture_media::check_image_size(&asked, "it");
            let _ = sent.send((probed, checked));
        });
        let (probed, checked) = answer
            .recv_timeout(std::time::Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("probing {} waited", path.display()));
        let err = probed.unwrap_err();
        assert!(matches!(err, Error::NotAFile { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!("cannot probe {}: not a regular file", path.display())
        );
        let err = checked.unwrap_err();
        assert!(
            matches!(err, aperture_media::TooLarge::Io { .. }),
            "{err:?}"
        );
        assert!(err.to_string().ends_with("not a regular file"), "{err}");
    }
}
