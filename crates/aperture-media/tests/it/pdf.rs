//! PDFs built with lopdf.

use aperture_core::MediaKind;
use aperture_media::{ProbeOptions, probe_file};
use lopdf::content::{Content, Operation};
use lopdf::{Dictionary, Document, Object, Stream, dictionary};

use crate::{has_problem, probe, write};

/// A document whose pages draw the given content streams, with the resources `resources`
/// adds to the document shared by all pages.
fn pdf(pages: &[Vec<u8>], resources: impl FnOnce(&mut Document) -> Dictionary) -> Vec<u8> {
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let resources = resources(&mut doc);
    let resources_id = doc.add_object(resources);
    let kids: Vec<Object> = pages
        .iter()
        .map(|content| {
            let content_id = doc.add_object(Stream::new(dictionary! {}, content.clone()));
            doc.add_object(dictionary! {
                "Type" => "Page",
                "Parent" => pages_id,
                "Contents" => content_id,
            })
            .into()
        })
        .collect();
    let count = i64::try_from(kids.len()).unwrap();
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages",
            "Kids" => kids,
            "Count" => count,
            "Resources" => resources_id,
            "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        }),
    );
    let catalog_id = doc.add_object(dictionary! {
        "Type" => "Catalog",
        "Pages" => pages_id,
    });
    doc.trailer.set("Root", catalog_id);
    doc.compress();
    let mut bytes = Vec::new();
    doc.save_to(&mut bytes).unwrap();
    bytes
}

fn helvetica() -> Dictionary {
    dictionary! {
        "Font" => dictionary! {
            "F1" => dictionary! {
                "Type" => "Font",
                "Subtype" => "Type1",
                "BaseFont" => "Helvetica",
            },
        },
    }
}

fn text_page(n: usize) -> Vec<u8> {
    let content = Content {
        operations: vec![
            Operation::new("BT", vec![]),
            Operation::new("Tf", vec!["F1".into(), 24.into()]),
            Operation::new("Td", vec![100.into(), 700.into()]),
            Operation::new(
                "Tj",
                vec![Object::string_literal(format!("Hello page {n}"))],
            ),
            Operation::new("ET", vec![]),
        ],
    };
    content.encode().unwrap()
}

pub(crate) fn three_text_pages() -> Vec<u8> {
    pdf(&[text_page(1), text_page(2), text_page(3)], |_| helvetica())
}

/// Pages that draw a filled rectangle and a 2×2 image: a scan, as far as text goes.
fn drawing_pdf() -> Vec<u8> {
    let image = Stream::new(
        dictionary! {
            "Type" => "XObject",
            "Subtype" => "Image",
            "Width" => 2,
            "Height" => 2,
            "ColorSpace" => "DeviceGray",
            "BitsPerComponent" => 8,
        },
        vec![0, 255, 255, 0],
    );
    let page = b"0 0 1 rg 100 100 300 200 re f q 200 0 0 200 100 400 cm /Im0 Do Q".to_vec();
    pdf(&[page.clone(), page], |doc| {
        dictionary! { "XObject" => dictionary! { "Im0" => doc.add_object(image) } }
    })
}

#[test]
fn text_pdf() {
    let dir = tempfile::tempdir().unwrap();
    let probe = probe(&write(dir.path(), "letter.pdf", &three_text_pages()));
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
    let probe = probe(&write(dir.path(), "scan.pdf", &drawing_pdf()));
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
    let whole = three_text_pages();
    let probe = probe(&write(dir.path(), "cut.pdf", &whole[..whole.len() * 2 / 3]));
    // Either the parser gives up or it rebuilds what it can; both are worth a word.
    assert!(!probe.metadata.problems.is_empty(), "{:?}", probe.metadata);
}

#[test]
fn large_pdf_is_not_parsed() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "big.pdf", &three_text_pages());
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
    let probe = probe(&write(dir.path(), "holiday.jpg", &three_text_pages()));
    assert_eq!(probe.kind, MediaKind::Document);
    assert_eq!(probe.metadata.pages, Some(3));
    assert_eq!(
        probe.metadata.problems,
        ["extension .jpg does not match content (application/pdf)"]
    );
}
