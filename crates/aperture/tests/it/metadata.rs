//! What probing finds reaches the catalog and `aperture show`: one file of every kind, made by
//! `aperture_media::fixtures`, ingested together, each shown with its metadata.

use std::collections::BTreeMap;

use aperture_media::fixtures;
use serde_json::Value;

use crate::Aperture;

#[test]
fn every_kind_is_shown_with_its_metadata() {
    let ap = Aperture::init();
    let dir = ap.inputs();
    let write = |name: &str, bytes: Vec<u8>| std::fs::write(dir.join(name), bytes).unwrap();
    write(
        "IMG_0001.JPG",
        fixtures::with_exif(&fixtures::jpeg(64, 48), &fixtures::exif_block()),
    );
    write("drawing.png", fixtures::png(64, 48));
    write("letter.pdf", fixtures::pdf_with_text_pages(3));
    write("scan.pdf", fixtures::pdf_without_text(2));
    fixtures::video(&dir);
    fixtures::wav(&dir);

    let report = ap.ingest(&dir, "mixed");
    assert_eq!(report["totals"]["stored"], 6, "{report:#}");
    assert_eq!(report["totals"]["failed"], 0, "{report:#}");
    assert_eq!(report["totals"]["warnings"], 0, "{report:#}");
    assert_eq!(ap.assets().len(), 6);
    // `--json` reports every file; find each asset by the name it was ingested under.
    let ids: BTreeMap<String, String> = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let name = f["path"].as_str().unwrap().rsplit('/').next().unwrap();
            (name.to_owned(), f["asset"].as_str().unwrap().to_owned())
        })
        .collect();
    let show = |name: &str| -> Value {
        let id = ids
            .get(name)
            .unwrap_or_else(|| panic!("{name} not in {ids:?}"));
        let shown = ap.json(&["show", id]);
        let asset = &shown["asset"];
        assert_eq!(asset["name"], name, "{shown:#}");
        assert_eq!(shown["sources"].as_array().unwrap().len(), 1, "{shown:#}");
        assert_eq!(shown["insights"], serde_json::json!([]), "{shown:#}");
        assert_eq!(asset["metadata"]["problems"], Value::Null, "{shown:#}");
        // The catalog's own column agrees with the metadata it was taken from.
        assert_eq!(asset["captured_at"], asset["metadata"]["captured_at"]);
        asset.clone()
    };

    let photo = show("IMG_0001.JPG");
    assert_eq!(
        (&photo["kind"], &photo["mime"]),
        (&"image".into(), &"image/jpeg".into())
    );
    let meta = &photo["metadata"];
    assert_eq!((&meta["width"], &meta["height"]), (&64.into(), &48.into()));
    assert_eq!(meta["orientation"], 6);
    assert_eq!(meta["captured_at"], "2021-07-04T10:20:30");
    assert_eq!(meta["camera_make"], "TestCam");
    assert_eq!(meta["camera_model"], "Model X");
    assert_near(&meta["gps"]["latitude"], 48.8582, 1e-4);
    assert_near(&meta["gps"]["longitude"], 2.2945, 1e-4);
    assert_eq!(meta["gps"]["altitude"], Value::Null);

    let drawing = show("drawing.png");
    assert_eq!(
        (&drawing["kind"], &drawing["mime"]),
        (&"image".into(), &"image/png".into())
    );
    let meta = &drawing["metadata"];
    assert_eq!((&meta["width"], &meta["height"]), (&64.into(), &48.into()));
    assert_eq!(
        (&meta["orientation"], &meta["captured_at"]),
        (&Value::Null, &Value::Null)
    );

    let clip = show("clip.mp4");
    assert_eq!(
        (&clip["kind"], &clip["mime"]),
        (&"video".into(), &"video/mp4".into())
    );
    let meta = &clip["metadata"];
    assert_eq!(
        (&meta["width"], &meta["height"]),
        (&320.into(), &240.into())
    );
    assert_eq!(meta["frame_rate"], 25.0);
    assert_eq!(meta["video_codec"], "h264");
    assert_eq!(meta["audio_codec"], "aac");
    assert_near(&meta["duration_ms"], 2000.0, 100.0);
    assert_eq!(meta["captured_at"], "2020-01-02T03:04:05Z");
    assert!(
        meta["container"].as_str().unwrap().contains("mp4"),
        "{meta}"
    );
    assert_eq!(meta["gps"]["latitude"], 48.8582);
    assert_eq!(meta["gps"]["longitude"], 2.2945);
    assert_eq!(
        (&meta["sample_rate"], &meta["channels"]),
        (&44100.into(), &1.into())
    );

    let tone = show("tone.wav");
    assert_eq!(
        (&tone["kind"], &tone["mime"]),
        (&"audio".into(), &"audio/x-wav".into())
    );
    let meta = &tone["metadata"];
    assert_eq!(meta["container"], "wav");
    assert_eq!(
        (&meta["sample_rate"], &meta["channels"]),
        (&44100.into(), &1.into())
    );
    assert_eq!(meta["duration_ms"], 1000);
    assert_eq!(
        (&meta["width"], &meta["video_codec"]),
        (&Value::Null, &Value::Null)
    );

    let letter = show("letter.pdf");
    assert_eq!(
        (&letter["kind"], &letter["mime"]),
        (&"document".into(), &"application/pdf".into())
    );
    assert_eq!(letter["metadata"]["pages"], 3);
    assert_eq!(letter["metadata"]["has_text_layer"], true);

    let scan = show("scan.pdf");
    assert_eq!(
        (&scan["kind"], &scan["mime"]),
        (&"document".into(), &"application/pdf".into())
    );
    assert_eq!(scan["metadata"]["pages"], 2);
    assert_eq!(scan["metadata"]["has_text_layer"], false);
}

fn assert_near(value: &Value, expected: f64, tolerance: f64) {
    let found = value
        .as_f64()
        .unwrap_or_else(|| panic!("expected a number near {expected}, found {value}"));
    assert!(
        (found - expected).abs() <= tolerance,
        "{found} is not within {tolerance} of {expected}"
    );
}
