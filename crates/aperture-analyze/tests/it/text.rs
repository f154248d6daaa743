//! The text analyzer on documents the tests make: PDFs built with lopdf, text and HTML files.

use aperture_analyze::{Analyzer, Error, Input, Output, Text, builtin, detect_language};
use aperture_catalog::Asset;
use aperture_core::{AssetId, ContentHash, MediaKind, MediaMetadata, Place, UnixMillis};
use aperture_media::fixtures;
use lopdf::content::{Content, Operation};
use lopdf::{Object, Stream, StringFormat, dictionary};
use proptest::prelude::*;

const ENGLISH: &[&str] = &[
    "The committee met on Tuesday to discuss the budget for next year.",
    "Most members agreed that the library should stay open in the evenings,",
    "although nobody could say where the money for the extra staff would come from.",
];
const SPANISH: &[&str] = &[
    "El comité se reunió el martes para hablar del presupuesto del año próximo.",
    "La mayoría de los miembros estuvo de acuerdo en que la biblioteca debería",
    "abrir por las tardes, aunque nadie supo decir de dónde saldría el dinero.",
];
const RUSSIAN: &str = "Комитет собрался во вторник, чтобы обсудить бюджет на следующий год. \
    Большинство членов согласились, что библиотека должна работать по вечерам.\n";

const HTML: &str = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
        <title>Caf&eacute; &amp; Bar</title>\
        <script>document.write('<p>never shown</p>'); var x = 1 < 2;</script>\
        <style>body { font-family: serif }</style></head>\n<body>\
        <h1>Today&rsquo;s menu</h1><p>Fresh bread &mdash; baked every morning &#8211; \
        with butter &lt;salted&gt; or&nbsp;plain, for 2&euro;.</p>\
        <p>Our soup is made with vegetables from the market down the road.</p></body></html>";

fn asset(name: &str, mime: &str, kind: MediaKind) -> Asset {
    Asset {
        id: AssetId::new(),
        collection: "c".into(),
        hash: ContentHash::of(name.as_bytes()),
        size: 0,
        kind,
        mime: mime.into(),
        ingested_at: UnixMillis::now(),
        captured_at: None,
        name: name.into(),
        metadata: MediaMetadata::default(),
    }
}

fn analyze_with(text: &Text, name: &str, mime: &str, bytes: &[u8]) -> Result<Output, Error> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    let kind = match mime {
        "application/x-empty" | "application/octet-stream" => MediaKind::Other,
        _ => MediaKind::Document,
    };
    text.analyze(&Input {
        asset: &asset(name, mime, kind),
        path: &path,
        insights: &[],
        frames: &[],
        suppress_plates: true,
    })
}

fn analyze(name: &str, mime: &str, bytes: &[u8]) -> Result<Output, Error> {
    analyze_with(&Text::default(), name, mime, bytes)
}

/// A page that writes `lines` in Helvetica, one under the other.
fn page(lines: &[&str]) -> Vec<u8> {
    let mut operations = vec![
        Operation::new("BT", vec![]),
        Operation::new("Tf", vec!["F1".into(), 12.into()]),
        Operation::new("TL", vec![16.into()]),
        Operation::new("Td", vec![72.into(), 760.into()]),
    ];
    for line in lines {
        // WinAnsiEncoding is Windows-1252.
        let bytes = encoding_rs::WINDOWS_1252.encode(line).0.into_owned();
        operations.push(Operation::new(
            "Tj",
            vec![Object::String(bytes, StringFormat::Literal)],
        ));
        operations.push(Operation::new("T*", vec![]));
    }
    operations.push(Operation::new("ET", vec![]));
    Content { operations }.encode().unwrap()
}

/// Helvetica as `F1`, in WinAnsiEncoding so that Spanish accents survive.
fn helvetica_win_ansi(_: &mut lopdf::Document) -> lopdf::Dictionary {
    dictionary! {
        "Font" => dictionary! {
            "F1" => dictionary! {
                "Type" => "Font",
                "Subtype" => "Type1",
                "BaseFont" => "Helvetica",
                "Encoding" => "WinAnsiEncoding",
            },
        },
    }
}

fn texts(output: &Output) -> Vec<(Place, &str, Option<&str>)> {
    output
        .insights
        .iter()
        .map(|i| {
            assert_eq!((i.analyzer.as_str(), i.kind()), ("text", "text"));
            assert_eq!(i.analyzer_version, Text::default().version());
            let text = i.value.text().unwrap();
            assert_eq!(
                i.value.to_json_value()["chars"].as_u64(),
                Some(text.chars().count() as u64)
            );
            (i.place, text, i.language.as_deref())
        })
        .collect()
}

fn on_page(page: u32) -> Place {
    Place::Page { page, rect: None }
}

#[test]
fn each_pdf_page_with_text_is_an_insight_in_its_language() {
    let drawing = b"0 0 1 rg 100 100 300 200 re f".to_vec();
    let pdf = fixtures::pdf(
        &[page(ENGLISH), page(SPANISH), drawing, page(ENGLISH)],
        helvetica_win_ansi,
    );
    let output = analyze("minutes.pdf", "application/pdf", &pdf).unwrap();
    let texts = texts(&output);
    let english = ENGLISH.join("\n");
    let spanish = SPANISH.join("\n");
    assert_eq!(
        texts,
        [
            (on_page(1), english.as_str(), Some("en")),
            (on_page(2), spanish.as_str(), Some("es")),
            (on_page(4), english.as_str(), Some("en")),
        ]
    );
    assert!(output.derived.is_empty());
}

/// pdfjam and pdfpages impose pages by drawing each original page as a form, inside a form:
/// the page's own content stream has no text at all.
#[test]
fn text_inside_forms_is_read_once() {
    let pdf = fixtures::pdf(
        &[b"q 0.5 0 0 0.5 0 0 cm /Outer Do Q q 0.5 0 0 0.5 297 0 cm /Outer Do Q".to_vec()],
        |doc| {
            let form = |resources: lopdf::Dictionary| {
                dictionary! {
                    "Type" => "XObject",
                    "Subtype" => "Form",
                    "BBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
                    "Resources" => resources,
                }
            };
            // The inner form also draws itself: a cycle that must end.
            let inner = doc.new_object_id();
            let mut resources = helvetica_win_ansi(doc);
            resources.set("XObject", dictionary! { "Inner" => inner });
            let mut content = page(SPANISH);
            content.extend_from_slice(b"\n/Inner Do");
            doc.objects
                .insert(inner, Stream::new(form(resources), content).into());
            let outer = doc.add_object(Stream::new(
                form(dictionary! { "XObject" => dictionary! { "Inner" => inner } }),
                b"q /Inner Do Q".to_vec(),
            ));
            dictionary! { "XObject" => dictionary! { "Outer" => outer } }
        },
    );
    let output = analyze("imposed.pdf", "application/pdf", &pdf).unwrap();
    let spanish = SPANISH.join("\n");
    assert_eq!(texts(&output), [(on_page(1), spanish.as_str(), Some("es"))]);
}

#[test]
fn short_pdf_text_has_no_language() {
    let output = analyze(
        "hello.pdf",
        "application/pdf",
        &fixtures::pdf_with_text_pages(3),
    )
    .unwrap();
    assert_eq!(
        texts(&output),
        [
            (on_page(1), "Hello page 1", None),
            (on_page(2), "Hello page 2", None),
            (on_page(3), "Hello page 3", None),
        ]
    );
}

#[test]
fn a_scan_needs_ocr_and_garbage_is_named() {
    let err = analyze(
        "scan.pdf",
        "application/pdf",
        &fixtures::pdf_without_text(2),
    )
    .unwrap_err();
    assert!(matches!(err, Error::NotApplicable { .. }), "{err:?}");
    assert!(err.to_string().contains("needs OCR"), "{err}");
    assert!(err.to_string().contains("scan.pdf"), "{err}");

    let mut garbage = b"%PDF-1.7\n".to_vec();
    garbage.extend((0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    let err = analyze("broken.pdf", "application/pdf", &garbage).unwrap_err();
    assert!(matches!(err, Error::BadInput { .. }), "{err:?}");
    assert!(err.to_string().contains("broken.pdf"), "{err}");
}

#[test]
fn pdf_limits() {
    let small = Text {
        max_pdf_bytes: 100,
        ..Text::default()
    };
    let err = analyze_with(
        &small,
        "big.pdf",
        "application/pdf",
        &fixtures::pdf_with_text_pages(1),
    )
    .unwrap_err();
    assert!(matches!(err, Error::BadInput { .. }), "{err:?}");
    assert!(err.to_string().contains("big.pdf") && err.to_string().contains("limit"));

    let two_pages = Text {
        max_pages: 2,
        ..Text::default()
    };
    let output = analyze_with(
        &two_pages,
        "long.pdf",
        "application/pdf",
        &fixtures::pdf_with_text_pages(5),
    )
    .unwrap();
    assert_eq!(output.insights.len(), 2);
    let last = output.insights[1].value.to_json_value();
    assert_eq!(last["truncated"], true);
    assert_eq!(last["note"], "only the first 2 of 5 pages are read");
    assert!(
        output.insights[0]
            .value
            .to_json_value()
            .get("truncated")
            .is_none()
    );
}

#[test]
fn plain_text_in_utf8_and_latin1() {
    let output = analyze("notes.txt", "text/plain", RUSSIAN.as_bytes()).unwrap();
    assert_eq!(
        texts(&output),
        [(Place::Whole, RUSSIAN.trim_end(), Some("ru"))]
    );

    let french = "Le comité s'est réuni mardi pour discuter du budget de l'année prochaine, \
        et presque tous les membres étaient d'accord.";
    let latin1 = encoding_rs::WINDOWS_1252.encode(french).0;
    assert!(std::str::from_utf8(&latin1).is_err());
    let output = analyze("notes-fr.txt", "text/plain", &latin1).unwrap();
    assert_eq!(texts(&output), [(Place::Whole, french, Some("fr"))]);
}

#[test]
fn long_text_is_cut_with_a_note() {
    let small = Text {
        max_text_bytes: 1000,
        ..Text::default()
    };
    let long = RUSSIAN.repeat(20);
    let output = analyze_with(&small, "long.txt", "text/plain", long.as_bytes()).unwrap();
    let value = output.insights[0].value.to_json_value();
    let text = value["text"].as_str().unwrap();
    assert!(text.len() <= 1000 && text.len() > 900, "{}", text.len());
    assert!(long.starts_with(text));
    assert_eq!(value["truncated"], true);
    assert!(value["note"].as_str().unwrap().contains("first"));
    assert_eq!(output.insights[0].language.as_deref(), Some("ru"));
}

#[test]
fn html_without_scripts_and_with_entities_decoded() {
    let output = analyze("menu.html", "text/html", HTML.as_bytes()).unwrap();
    assert_eq!(
        texts(&output),
        [(
            Place::Whole,
            "Café & Bar\nToday’s menu\nFresh bread — baked every morning – with butter \
             <salted> or plain, for 2€.\nOur soup is made with vegetables from the market \
             down the road.",
            Some("en")
        )]
    );
}

/// An empty file has no text to index: the job is skipped (`NotApplicable`) rather than
/// stored as an empty insight, the same answer as for a scan without a text layer.
#[test]
fn empty_and_binary_files_have_no_text() {
    for (name, mime, bytes) in [
        ("empty.txt", "application/x-empty", &b""[..]),
        ("blank.txt", "text/plain", b" \n\t\r\n  \n"),
        (
            "blank.html",
            "text/html",
            b"<html><script>x()</script></html>",
        ),
        (
            "blob.bin",
            "application/octet-stream",
            b"\x00\x01\x02binary\xFF",
        ),
        ("book.epub", "application/epub+zip", b"PK\x03\x04"),
    ] {
        let err = analyze(name, mime, bytes).unwrap_err();
        assert!(
            matches!(err, Error::NotApplicable { .. }),
            "{name}: {err:?}"
        );
        assert!(err.to_string().contains(name), "{err}");
    }
    // Text that no sniffer put a name to is still read.
    let output = analyze("README", "application/octet-stream", RUSSIAN.as_bytes()).unwrap();
    assert_eq!(output.insights[0].language.as_deref(), Some("ru"));
}

#[test]
fn text_is_a_builtin_analyzer_of_documents() {
    let text = builtin().into_iter().find(|a| a.name() == "text").unwrap();
    assert!(text.kinds().contains(&MediaKind::Document));
    assert!(text.version().contains(aperture_analyze::LANGUAGE_DETECTOR));
}

#[test]
fn single_sentences_get_their_language() {
    let sentences = [
        (
            "en",
            "The weather was lovely, so we walked along the river to the old bridge.",
        ),
        (
            "es",
            "Hacía buen tiempo, así que caminamos por el río hasta el puente viejo.",
        ),
        (
            "fr",
            "Il faisait beau, alors nous avons marché le long de la rivière jusqu'au vieux pont.",
        ),
        (
            "de",
            "Das Wetter war schön, also gingen wir am Fluss entlang bis zur alten Brücke.",
        ),
        (
            "ru",
            "Погода была чудесная, и мы пошли вдоль реки к старому мосту.",
        ),
        (
            "ja",
            "天気がとても良かったので、私たちは川に沿って古い橋まで歩きました。",
        ),
        ("zh", "天气很好，所以我们沿着河边一直走到那座老桥。"),
        (
            "ar",
            "كان الطقس جميلا، فمشينا على طول النهر حتى الجسر القديم.",
        ),
    ];
    for (code, sentence) in sentences {
        let found = detect_language(sentence).map(|(code, _)| code);
        assert_eq!(found.as_deref(), Some(code), "{sentence}");
    }
    assert_eq!(detect_language("OK"), None);
}

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

/// What every text insight holds to, whatever the input.
fn check(output: &Output, pages: u32) -> Result<(), TestCaseError> {
    for insight in &output.insights {
        let text = insight.value.text().unwrap();
        prop_assert!(
            !text.trim().is_empty() && text.trim_end() == text,
            "{text:?}"
        );
        prop_assert!(
            text.chars()
                .all(|c| matches!(c, '\n' | '\t') || !c.is_control()),
            "{text:?}"
        );
        if let Place::Page { page, .. } = insight.place {
            prop_assert!((1..=pages).contains(&page));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn damaged_documents_give_text_or_an_error_naming_them(
        fixture in 0usize..3,
        cut in 0.0f64..=1.0,
        flips in proptest::collection::vec((0.0f64..1.0, any::<u8>()), 0..6),
    ) {
        let (name, mime, bytes) = match fixture {
            0 => (
                "minutes.pdf",
                "application/pdf",
                fixtures::pdf(&[page(ENGLISH), page(SPANISH)], helvetica_win_ansi),
            ),
            1 => ("menu.html", "text/html", HTML.as_bytes().to_vec()),
            _ => ("notes.txt", "text/plain", RUSSIAN.as_bytes().to_vec()),
        };
        match analyze(name, mime, &damage(bytes, cut, &flips)) {
            Ok(output) => check(&output, 2)?,
            Err(e @ Error::Transient { .. }) => prop_assert!(false, "{e}"),
            Err(e) => prop_assert!(e.to_string().contains(name), "{e}"),
        }
    }

    #[test]
    fn any_markup_is_stripped_without_panic(html in "[<>&;#xX0-9a-zé语\"' /!=-]{0,300}") {
        if let Ok(output) = analyze("page.html", "text/html", html.as_bytes()) {
            check(&output, 0)?;
        }
    }
}
