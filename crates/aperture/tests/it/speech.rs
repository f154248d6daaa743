//! Speech as a user meets it: recordings in English, Spanish and French ingested, `index`
//! transcribing them with the real Whisper base (the default when it is installed), a word
//! that was said found at the moment it was said, `lang:` telling the languages apart, `show`
//! listing the transcript, captions, and a recording of monkeys (no speech) left without
//! invented text.

use crate::real_media::{env_dir, with_models};
use crate::search::asset_id;

#[test]
fn what_was_said_is_found_at_its_moment() {
    let ap = with_models();
    let samples = env_dir("APERTURE_TEST_SAMPLES");
    let dir = ap.inputs();
    for name in ["tt-weasels.wav", "conf-onlyperson.wav", "tt-monkeys.wav"] {
        std::fs::copy(samples.join("audio").join(name), dir.join(name)).unwrap();
    }
    for name in ["es-tt-weasels.wav", "fr-conf-onlyperson.wav"] {
        std::fs::copy(samples.join("audio-intl").join(name), dir.join(name)).unwrap();
    }
    ap.ingest(&dir, "calls");
    ap.ok(&["index", "--no-progress"]);

    let found = ap.ok(&["search", "weasels"]);
    assert!(found.contains("tt-weasels.wav"), "{found}");
    assert!(!found.contains("conf-onlyperson.wav"), "{found}");
    let hits = ap.json(&["search", "weasels"]);
    let reasons = hits[0]["reasons"].as_array().unwrap();
    assert!(
        reasons.iter().any(|r| r["place"]["type"] == "time"
            && r["place"]["start_ms"].as_u64().is_some_and(|s| s < 1000)),
        "{hits}"
    );
    // The English recording and the French one (by its words and its translation).
    let conference = ap.json(&["search", "conference"]);
    let mut top: Vec<&str> = names_of(&conference).into_iter().take(2).collect();
    top.sort_unstable();
    assert_eq!(
        top,
        ["conf-onlyperson.wav", "fr-conf-onlyperson.wav"],
        "{conference}"
    );
    // The Spanish and French recordings, by their words and by their languages.
    let spanish = ap.json(&["search", "sistema telefónico"]);
    assert_eq!(
        spanish[0]["asset"]["name"].as_str(),
        Some("es-tt-weasels.wav"),
        "{spanish}"
    );
    let spoken_fr = ap.json(&["search", "conférence lang:fr"]);
    let names: Vec<&str> = spoken_fr
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["asset"]["name"].as_str())
        .collect();
    assert_eq!(names, ["fr-conf-onlyperson.wav"], "{spoken_fr}");
    let spoken_en = ap.json(&["search", "conference lang:en"]);
    assert_eq!(
        spoken_en[0]["asset"]["name"].as_str(),
        Some("conf-onlyperson.wav"),
        "{spoken_en}"
    );

    let shown = ap.ok(&["show", &asset_id(&ap, "tt-weasels.wav")]);
    assert!(shown.contains("speech       succeeded"), "{shown}");
    assert!(shown.to_lowercase().contains("weasels have"), "{shown}");
    assert!(shown.to_lowercase().contains("phone system"), "{shown}");
    // Captions, as SubRip and WebVTT; none for a file where nothing was said.
    let weasels = asset_id(&ap, "tt-weasels.wav");
    let srt = ap.ok(&["captions", &weasels, "--format", "srt"]);
    assert!(srt.starts_with("1\n00:00:0"), "{srt}");
    assert!(
        srt.contains(" --> 00:00:0") && srt.contains("our phone"),
        "{srt}"
    );
    let vtt = ap.ok(&["captions", &weasels, "--lang", "en"]);
    assert!(vtt.starts_with("WEBVTT\n\n00:00:0"), "{vtt}");
    let none = ap.run(&["captions", &asset_id(&ap, "tt-monkeys.wav")]);
    assert!(!none.status.success());
    assert!(String::from_utf8_lossy(&none.stderr).contains("tt-monkeys.wav: no transcript"));
    let es = asset_id(&ap, "es-tt-weasels.wav");
    let vtt = ap.ok(&["captions", &es, "--lang", "es"]);
    assert!(vtt.to_lowercase().contains("sistema"), "{vtt}");
    // English captions of the Spanish recording: its translation, at the same times.
    let english = ap.ok(&["captions", &es, "--lang", "en"]);
    assert!(english.starts_with("WEBVTT\n\n00:00:0"), "{english}");
    assert!(english.to_lowercase().contains("telephone"), "{english}");
    let french = ap.run(&["captions", &es, "--lang", "fr"]);
    assert!(!french.status.success());
    let said = String::from_utf8_lossy(&french.stderr);
    assert!(
        said.contains(
            "es-tt-weasels.wav: nothing was said in fr nor translated into it; the transcript \
             is in es"
        ),
        "{said}"
    );
    // An English query finds the spoken Spanish sentence by its translation, at its moment.
    let hits = ap.json(&["search", "telephone lang:es"]);
    assert_eq!(names_of(&hits), ["es-tt-weasels.wav"], "{hits}");
    let reason = hits[0]["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["field"] == "translation")
        .unwrap_or_else(|| panic!("{hits}"));
    assert_eq!(reason["place"]["type"], "time", "{reason}");
    assert!(
        reason["original"]["text"]
            .as_str()
            .unwrap()
            .contains("Telefónico"),
        "{reason}"
    );

    let monkeys = ap.json(&["show", &asset_id(&ap, "tt-monkeys.wav")]);
    let kinds: Vec<&str> = monkeys["insights"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["kind"].as_str())
        .collect();
    assert!(!kinds.contains(&"transcript_segment"), "{monkeys}");
}

fn names_of(hits: &serde_json::Value) -> Vec<&str> {
    hits.as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["asset"]["name"].as_str())
        .collect()
}
