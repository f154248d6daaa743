//! PDFs built with lopdf (see `aperture_media::fixtures`).

use aperture_core::MediaKind;
use aperture_media::fixtures::{helvetica, pdf, pdf_with_text_pages, pdf_without_text, text_page};
use aperture_media::{ProbeOptions, probe_file};
use lopdf::{Stream, dictionary};

use crate::{has_problem, probe, write};

#[test]
fn text_pdf() {
    let dir = tempfile::tempdir().unwrap();
    let probe = probe(&write(dir.path(), "letter.pdf", &pdf_with_text_pages(3)));
    assert_eq!(
        (probe.mime.as_str(), probe.kind),
        ("application/pdf", MediaKind::Document)
    );
    let meta = &probe.metadata;
    assert!(meta.problems.is_empty(), "{:?}", meta.problems);
    assert_eq!(meta.pages, Some(3));
    assert_eq!(meta.has_text_layer, Some(true));
}

#[test]
fn drawing_only_pdf_has_no_text_layer() {
    let dir = tempfile::tempdir().unwrap();
    let probe = probe(&write(dir.path(), "scan.pdf", &pdf_without_text(2)));
    let meta = &probe.metadata;
    assert!(meta.problems.is_empty(), "{:?}", meta.problems);
    assert_eq!(meta.pages, Some(2));
    assert_eq!(meta.has_text_layer, Some(false));
}

#[test]
fn text_drawn_through_a_form_counts() {
    let form = Stream::new(
        dictionary! {
            "Type" => "XObject",
            "Subtype" => "Form",
            "BBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
            "Resources" => helvetica(),
        },
        text_page(1),
    );
    let dir = tempfile::tempdir().unwrap();
    let bytes = pdf(&[b"q /Fm0 Do Q".to_vec()], |doc| {
        dictionary! { "XObject" => dictionary! { "Fm0" => doc.add_object(form) } }
    });
    let probe = probe(&write(dir.path(), "form.pdf", &bytes));
    assert_eq!(probe.metadata.pages, Some(1));
    assert_eq!(probe.metadata.has_text_layer, Some(true));
}

/// What pdfjam makes of a document (the Debian reference cards): each page draws a form that
/// draws a form that finally shows the text, and only the innermost one declares fonts.
#[test]
fn text_in_forms_inside_forms_counts() {
    let form = |resources: lopdf::Dictionary, content: &[u8]| {
        Stream::new(
            dictionary! {
                "Type" => "XObject",
                "Subtype" => "Form",
                "BBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
                "Resources" => resources,
            },
            content.to_vec(),
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let bytes = pdf(&[b"q /Outer Do Q".to_vec()], |doc| {
        let inner = doc.add_object(form(helvetica(), &text_page(1)));
        let middle = doc.add_object(form(
            dictionary! { "XObject" => dictionary! { "Inner" => inner } },
            b"q /Inner Do Q",
        ));
        let outer = doc.add_object(form(
            dictionary! { "XObject" => dictionary! { "Middle" => middle } },
            b"q /Middle Do Q",
        ));
        dictionary! { "XObject" => dictionary! { "Outer" => outer } }
    });
    let imposed = probe(&write(dir.path(), "imposed.pdf", &bytes));
    assert_eq!(imposed.metadata.has_text_layer, Some(true));

    // The same nesting with drawing only is still no text layer.
    let bytes = pdf(&[b"q /Outer Do Q".to_vec()], |doc| {
        let inner = doc.add_object(form(helvetica(), b"0 0 1 rg 10 10 100 100 re f"));
        let outer = doc.add_object(form(
            dictionary! { "XObject" => dictionary! { "Inner" => inner } },
            b"q /Inner Do Q",
        ));
        dictionary! { "XObject" => dictionary! { "Outer" => outer } }
    });
    let scan = probe(&write(dir.path(), "imposed-scan.pdf", &bytes));
    assert_eq!(scan.metadata.has_text_layer, Some(false));
}

#[test]
fn corrupt_pdf_is_noted() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = b"%PDF-1.7\n".to_vec();
    bytes.extend((0..3000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8));
    let probe = probe(&write(dir.path(), "broken.pdf", &bytes));
    assert_eq!(probe.kind, MediaKind::Document);
    assert!(
        has_problem(&probe, "cannot parse pdf: "),
        "{:?}",
        probe.metadata.problems
    );
    assert_eq!(probe.metadata.pages, None);
    assert_eq!(probe.metadata.has_text_layer, None);
}

#[test]
fn truncated_pdf_is_noted_or_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let whole = pdf_with_text_pages(3);
    let probe = probe(&write(dir.path(), "cut.pdf", &whole[..whole.len() * 2 / 3]));
    // Either the parser gives up or it rebuilds what it can; both are worth a word.
    assert!(!probe.metadata.problems.is_empty(), "{:?}", probe.metadata);
}

#[test]
fn large_pdf_is_not_parsed() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "big.pdf", &pdf_with_text_pages(3));
    let opts = ProbeOptions {
        max_pdf_bytes: 100,
        ..ProbeOptions::default()
    };
    let probe = probe_file(&path, &opts).unwrap();
    assert_eq!(probe.metadata.pages, None);
    assert!(
        has_problem(&probe, "page count unknown"),
        "{:?}",
        probe.metadata.problems
    );
}

#[test]
fn pdf_named_jpg_is_noted() {
    let dir = tempfile::tempdir().unwrap();
    let probe = probe(&write(dir.path(), "holiday.jpg", &pdf_with_text_pages(3)));
    assert_eq!(probe.kind, MediaKind::Document);
    assert_eq!(probe.metadata.pages, Some(3));
    assert_eq!(
        probe.metadata.problems,
        ["extension .jpg does not match content (application/pdf)"]
    );
}
