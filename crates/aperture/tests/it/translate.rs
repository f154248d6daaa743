//! Translation as a user meets it, with Apertium as `scripts/setup.sh` installs it: text in
//! Spanish, Catalan, French (through Spanish), Russian (no engine), Arabic and junk ingested
//! and indexed; English queries find the other languages by their translations, Spanish
//! queries find French and English text, Latin letters find Cyrillic; `translate` on demand;
//! an engine that hangs fails its job naming the file while the batch goes on; a 100 MB text
//! is translated up to the limit and says so.

use crate::Aperture;
use crate::search::asset_id;

const DOCUMENTS: &[(&str, &str)] = &[
    (
        "informe.txt",
        "La farmacia de guardia está cerrada los domingos. Los vecinos se reunieron frente \
         al ayuntamiento para pedir agua potable.",
    ),
    (
        "acta.txt",
        "El consell municipal ha aprovat el pressupost de la biblioteca pública del barri \
         per a l'any vinent.",
    ),
    (
        "rapport.txt",
        "Les journalistes ont publié une enquête sur la pollution de la rivière près de \
         l'usine chimique.",
    ),
    (
        "otchet.txt",
        "Аптека закрыта в воскресенье. Жители собрались перед мэрией, чтобы потребовать \
         питьевой воды.",
    ),
    (
        "weather.txt",
        "The weather was fine, so we walked along the river to the old bridge and back.",
    ),
    (
        "mixed.txt",
        "Hola amigos: مرحبا بكم في المكتبة، نحن نفتح كل يوم من التاسعة حتى الخامسة مساء \
         Москва 2024 東京",
    ),
    (
        "junk.txt",
        "qx7 zv9 k2p wq8 jj4 xx1 vv0 qq3 zz5 kk6 pp2 ww7 yy8 hh9 gg0 ff1 dd2 ss3 aa4",
    ),
];

fn names(hits: &serde_json::Value) -> Vec<String> {
    hits.as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["asset"]["name"].as_str().map(str::to_owned))
        .collect()
}

fn translations(ap: &Aperture, name: &str) -> Vec<serde_json::Value> {
    let shown = ap.json(&["show", &asset_id(ap, name)]);
    shown["insights"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["kind"] == "translation")
        .cloned()
        .collect()
}

#[test]
fn english_queries_find_text_in_other_languages_by_its_translation() {
    let ap = Aperture::init();
    let dir = ap.inputs();
    for (name, text) in DOCUMENTS {
        std::fs::write(dir.join(name), text).unwrap();
    }
    ap.ingest(&dir, "leaks");
    ap.ok(&["index", "--no-progress"]);

    // Stored: Spanish and Catalan directly, French through Spanish; Russian and Arabic said.
    let es = translations(&ap, "informe.txt");
    assert_eq!(es.len(), 1, "{es:?}");
    let value = &es[0]["value"];
    assert_eq!(value["source_language"], "es");
    assert_eq!(value["target_language"], "en");
    assert_eq!(value["engine"], "apertium");
    assert!(
        value["text"].as_str().unwrap().contains("pharmacy"),
        "{es:?}"
    );
    assert!(
        es[0]["model"].as_str().unwrap().contains("spa-eng"),
        "{es:?}"
    );
    let fr = translations(&ap, "rapport.txt");
    assert_eq!(fr[0]["value"]["pivot_language"], "es", "{fr:?}");
    assert!(
        fr[0]["model"].as_str().unwrap().contains("fr-es → "),
        "{fr:?}"
    );
    let ru = translations(&ap, "otchet.txt");
    assert_eq!(ru[0]["value"]["engine"], "none", "{ru:?}");
    assert_eq!(ru[0]["value"]["text"], "");
    assert!(
        ru[0]["value"]["note"]
            .as_str()
            .unwrap()
            .contains("no engine installed translates ru into en"),
        "{ru:?}"
    );
    assert!(translations(&ap, "weather.txt").is_empty());
    // Junk that passes as text: not translated, and said so (whatever language the text
    // analyzer's detector calls it, no engine takes it); the job does not fail.
    let junk = translations(&ap, "junk.txt");
    assert_eq!(junk.len(), 1, "{junk:?}");
    assert_eq!(junk[0]["value"]["engine"], "none", "{junk:?}");
    assert!(junk[0]["value"]["note"].as_str().is_some(), "{junk:?}");
    let shown = ap.ok(&["show", &asset_id(&ap, "junk.txt")]);
    assert!(!shown.contains("translate    failed"), "{shown}");
    // Arabic in a mixed line: said, not skipped.
    let mixed = translations(&ap, "mixed.txt");
    assert!(
        mixed.iter().any(|t| t["value"]["note"]
            .as_str()
            .is_some_and(|n| n.contains("translates ar into en"))),
        "{mixed:?}"
    );

    // English words find Spanish, Catalan and French text; the reason shows both sides.
    let pharmacy = ap.json(&["search", "pharmacy"]);
    assert_eq!(names(&pharmacy), ["informe.txt"], "{pharmacy}");
    let reason = pharmacy[0]["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["field"] == "translation")
        .unwrap_or_else(|| panic!("{pharmacy}"));
    assert_eq!(reason["original"]["language"], "es");
    let original = reason["original"]["text"].as_str().unwrap();
    let marks = reason["original"]["highlights"].as_array().unwrap();
    let start = marks[0]["start"].as_u64().unwrap() as usize;
    let end = marks[0]["end"].as_u64().unwrap() as usize;
    assert_eq!(original[start..end].to_lowercase(), "farmacia", "{reason}");
    let library = ap.json(&["search", "library budget"]);
    assert_eq!(names(&library), ["acta.txt"], "{library}");
    let river = names(&ap.json(&["search", "river pollution"]));
    assert_eq!(river, ["rapport.txt"]);
    let described = ap.ok(&["search", "pharmacy"]);
    assert!(
        described.contains("translation: The «pharmacy»")
            && described.contains("(from es: La «farmacia»"),
        "{described}"
    );

    // A Spanish query finds the French report and the English walk by translating itself.
    let rio = names(&ap.json(&["search", "río"]));
    assert!(rio.contains(&"weather.txt".to_owned()), "{rio:?}");
    assert!(rio.contains(&"rapport.txt".to_owned()), "{rio:?}");
    assert!(names(&ap.json(&["search", "río translate:off"])).is_empty());

    // Latin letters find Cyrillic, unless asked not to.
    assert_eq!(names(&ap.json(&["search", "apteka"])), ["otchet.txt"]);
    assert_eq!(names(&ap.json(&["search", "moskva"])), ["mixed.txt"]);
    assert!(names(&ap.json(&["search", "apteka translit:off"])).is_empty());
    let bad = ap.run(&["search", "apteka translit:maybe"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("translit:on or translit:off"));

    // On demand, into a language that is not a target: through two engines.
    let out = ap.ok(&["translate", &asset_id(&ap, "weather.txt"), "--to", "fr"]);
    assert!(out.starts_with("text en → fr via es (apertium)"), "{out}");
    assert!(out.to_lowercase().contains("rivière"), "{out}");
    let none = ap.ok(&["translate", &asset_id(&ap, "otchet.txt"), "--to", "es"]);
    assert!(
        none.contains("no engine installed translates ru into es"),
        "{none}"
    );
    let bad = ap.run(&[
        "translate",
        &asset_id(&ap, "weather.txt"),
        "--to",
        "english",
    ]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("two-letter"));
    let audit = ap.ok(&["audit"]);
    assert!(audit.contains("translate"), "{audit}");

    // Every pair into English is listed with its version, and how each language gets there.
    let listed = ap.ok(&["models", "list"]);
    assert!(listed.contains("apertium-eng-spa spa-eng"), "{listed}");
    assert!(listed.contains("fr (via es)"), "{listed}");
}

/// Apertium's modes folder with one pair, spa-eng, whose pipeline hangs.
fn hanging_modes(dir: &std::path::Path) -> std::path::PathBuf {
    let data = dir.join("apertium-hang");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("never"), "").unwrap();
    let modes = dir.join("modes");
    std::fs::create_dir_all(&modes).unwrap();
    std::fs::write(
        modes.join("spa-eng.mode"),
        format!("tail -f '{}'", data.join("never").display()),
    )
    .unwrap();
    modes
}

#[test]
fn an_engine_that_hangs_fails_its_job_naming_the_file_and_the_batch_goes_on() {
    let ap = Aperture::init();
    let modes = hanging_modes(ap.dir.path());
    let config = ap.data().join("aperture.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text
        .replace(
            "apertium_modes = \"/usr/share/apertium/modes\"",
            &format!("apertium_modes = \"{}\"", modes.display()),
        )
        .replace("timeout_secs = 30", "timeout_secs = 1");
    std::fs::write(&config, text).unwrap();
    let dir = ap.inputs();
    std::fs::write(dir.join("informe.txt"), DOCUMENTS[0].1).unwrap();
    std::fs::write(dir.join("weather.txt"), DOCUMENTS[4].1).unwrap();
    ap.ingest(&dir, "leaks");
    let started = std::time::Instant::now();
    ap.run(&["index", "--no-progress"]);
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
    let shown = ap.ok(&["show", &asset_id(&ap, "informe.txt")]);
    assert!(
        shown.contains("translate    failed")
            && shown.contains("translating informe.txt from es into en: apertium spa-eng did not answer within 1 s"),
        "{shown}"
    );
    assert!(shown.contains("text         succeeded"), "{shown}");
    // The rest of the batch: the English file's text is indexed and found.
    assert_eq!(names(&ap.json(&["search", "bridge"])), ["weather.txt"]);
}

#[test]
fn a_hundred_megabyte_text_is_translated_up_to_the_limit_and_says_so() {
    let ap = Aperture::init();
    let dir = ap.inputs();
    let sentence = "El río pasa junto a la fábrica y los vecinos piden agua limpia. ";
    let big = sentence.repeat(100 * 1024 * 1024 / sentence.len());
    std::fs::write(dir.join("enorme.txt"), &big).unwrap();
    drop(big);
    ap.ingest(&dir, "leaks");
    ap.ok(&["index", "--no-progress"]);
    let found = translations(&ap, "enorme.txt");
    assert_eq!(found.len(), 1, "one page of text, translated in part");
    let value = &found[0]["value"];
    assert_eq!(value["truncated"], true, "{value}");
    assert!(
        value["note"]
            .as_str()
            .unwrap()
            .contains("only the first 1.00 MiB of text of an asset is translated"),
        "{value}"
    );
    let text = value["text"].as_str().unwrap();
    assert!(
        text.contains("river") && text.len() > 900_000,
        "{}",
        text.len()
    );
    assert!(text.len() < 2 << 20);
}
