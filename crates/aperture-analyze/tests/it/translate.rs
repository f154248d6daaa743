//! Translation through Apertium as Debian installs it (`scripts/setup.sh`): the wrapper gives
//! exactly what the `apertium` command gives, keeps one pipeline per pair, and stops an engine
//! that hangs or dies without stopping the caller.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use aperture_analyze::translate::apertium::{Apertium, MODES_DIR};
use aperture_analyze::translate::engine::{Error, Pair};
use aperture_analyze::translate::{Translate, Translators};

fn pair(mode: &str) -> Apertium {
    Apertium::discover(Path::new(MODES_DIR), Duration::from_secs(30))
        .into_iter()
        .find(|p| p.mode() == mode)
        .unwrap_or_else(|| panic!("Apertium's {mode} is not installed: run scripts/setup.sh"))
}

/// What `apertium -u MODE` prints for `text`.
fn cli(mode: &str, text: &str) -> String {
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("printf '%s' \"$1\" | apertium -u {mode}"))
        .arg("bash")
        .arg(text)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim_end().to_owned()
}

const SPANISH: &[&str] = &[
    "Hola, el perro come pan en la casa.",
    "Farmacia de guardia",
    "Prohibido aparcar. Zona de carga y descarga de 8 a 14 horas.",
    "El precio es 5$ [con IVA] y <b>no</b> incluye el envío a {Madrid} ~ @tienda #oferta *nuevo* \\ fin",
    "Primera línea.\nSegunda línea con más palabras.\n\nTercer párrafo.",
    "¿Dónde está la estación de tren? ¡Aquí!",
    "Los manifestantes se reunieron frente al ayuntamiento el 3 de marzo de 2021.",
];

#[test]
fn the_wrapper_translates_exactly_as_the_apertium_command() {
    let spa_eng = pair("spa-eng");
    assert_eq!((spa_eng.from(), spa_eng.to()), ("es", "en"));
    assert_eq!(spa_eng.engine(), "apertium");
    assert!(
        spa_eng.model().starts_with("apertium-eng-spa"),
        "{}",
        spa_eng.model()
    );
    let ours = spa_eng.translate(SPANISH).unwrap();
    for (text, translated) in SPANISH.iter().zip(&ours) {
        assert_eq!(translated, &cli("spa-eng", text), "{text}");
    }
    assert!(ours[0].contains("dog"), "{ours:?}");
    // One pipeline served every text, and serves the next ones too.
    spa_eng.translate(&["Buenos días"; 20]).unwrap();
    assert_eq!(spa_eng.starts(), 1);
}

#[test]
fn french_reaches_english_through_spanish() {
    let translators = Translators::new(
        Apertium::discover(Path::new(MODES_DIR), Duration::from_secs(30))
            .into_iter()
            .map(|p| std::sync::Arc::new(p) as std::sync::Arc<dyn Pair>)
            .collect(),
    );
    let route = translators
        .route("fr", "en")
        .expect("fr-es and spa-eng are installed");
    assert_eq!(route.pivot().as_deref(), Some("es"));
    assert_eq!(route.engine(), "apertium");
    let text = "La pharmacie est fermée le dimanche.";
    let ours = route.translate(&[text]).unwrap();
    assert_eq!(ours[0], cli("spa-eng", &cli("fr-es", text)));
    assert!(ours[0].to_lowercase().contains("pharmacy"), "{ours:?}");
    // Every pair Debian has into English is found.
    for from in [
        "es", "ca", "gl", "eo", "eu", "sh", "is", "mk", "fr", "pt", "it", "ro",
    ] {
        assert!(translators.route(from, "en").is_some(), "{from}");
    }
    assert!(translators.route("ru", "en").is_none());
    let analyzer = Translate::new(translators, vec!["en".into()]);
    assert!(aperture_analyze::Analyzer::version(&analyzer).starts_with("1+"));
}

/// A modes folder with one pair, `spa-eng`, whose pipeline is `pipeline` over a file in a
/// package folder of its own.
fn fake_modes(pipeline: &str) -> (tempfile::TempDir, Apertium) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("apertium-fake");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("file"), "").unwrap();
    std::fs::create_dir_all(dir.path().join("modes")).unwrap();
    std::fs::write(
        dir.path().join("modes/spa-eng.mode"),
        pipeline.replace("DATA", &data.join("file").display().to_string()),
    )
    .unwrap();
    let mut pairs = Apertium::discover(&dir.path().join("modes"), Duration::from_secs(2));
    assert_eq!(pairs.len(), 1);
    (dir, pairs.remove(0))
}

#[test]
fn an_engine_that_hangs_is_stopped_at_its_deadline_and_started_again_next_time() {
    // `tail -f` of an empty file reads nothing and never answers.
    let (_dir, hung) = fake_modes("tail -f 'DATA'");
    let started = Instant::now();
    let err = hung.translate(&["Hola"]).unwrap_err();
    assert!(matches!(err, Error::Timeout { secs: 2, .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        err.to_string()
            .contains("spa-eng did not answer within 2 s"),
        "{err}"
    );
    assert!(hung.translate(&["Hola"]).is_err());
    assert_eq!(hung.starts(), 2);
}

#[test]
fn an_engine_that_dies_is_an_error_naming_it() {
    let (_dir, dead) = fake_modes("head -c 1 'DATA'");
    let err = dead.translate(&["Hola"]).unwrap_err();
    assert!(matches!(err, Error::Failed { .. }), "{err}");
    assert!(err.to_string().contains("apertium spa-eng failed"), "{err}");
}
