//! What every translation engine offers ([`Pair`]), the pairs installed ([`Translators`]),
//! and routes through them from one language to another, chained through a third language
//! where no pair translates directly ([`Route`]).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// Why a text was not translated.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The engine took longer than its deadline and was killed; the same text would hang it
    /// again.
    #[error("{engine} {pair} did not answer within {secs} s and was stopped")]
    Timeout {
        /// The engine, e.g. `apertium`.
        engine: &'static str,
        /// The pair, as the engine names it (`spa-eng`).
        pair: String,
        /// The deadline it missed.
        secs: u64,
    },
    /// The engine's process ended or could not start.
    #[error("{engine} {pair} failed: {reason}")]
    Failed {
        /// The engine.
        engine: &'static str,
        /// The pair, as the engine names it.
        pair: String,
        /// What happened.
        reason: String,
    },
}

/// One installed way to translate from one language into another.
pub trait Pair: Send + Sync {
    /// The source language, two letters (`es`).
    fn from(&self) -> &str;
    /// The target language, two letters (`en`).
    fn to(&self) -> &str;
    /// The engine: `apertium`, `marian`.
    fn engine(&self) -> &'static str;
    /// What the engine runs, as it names it: `apertium-eng-spa spa-eng`,
    /// `Helsinki-NLP/opus-mt-ru-en`.
    fn model(&self) -> String;
    /// The version of what it runs (a package version, a files' fingerprint).
    fn version(&self) -> String;
    /// Translates each text, in order. Blocking.
    fn translate(&self, texts: &[&str]) -> Result<Vec<String>, Error>;
}

/// The pairs installed, from every engine.
#[derive(Clone, Default)]
pub struct Translators {
    pairs: Vec<Arc<dyn Pair>>,
}

impl std::fmt::Debug for Translators {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(
                self.pairs
                    .iter()
                    .map(|p| format!("{}-{}", p.from(), p.to())),
            )
            .finish()
    }
}

/// The most engines a chain runs one after another: each one loses some meaning.
pub const MAX_HOPS: usize = 3;

impl Translators {
    /// The given pairs; where two translate the same languages, the earlier is used.
    pub fn new(pairs: Vec<Arc<dyn Pair>>) -> Translators {
        Translators { pairs }
    }

    /// Every pair, in the order given.
    pub fn pairs(&self) -> &[Arc<dyn Pair>] {
        &self.pairs
    }

    /// What results depend on: every pair with its engine, model and version, sorted.
    pub fn fingerprint(&self) -> String {
        let mut parts: Vec<String> = self
            .pairs
            .iter()
            .map(|p| format!("{}-{}:{}:{}", p.from(), p.to(), p.model(), p.version()))
            .collect();
        parts.sort();
        parts.join(",")
    }

    /// The shortest way from `from` to `to` (direct first; else through at most
    /// [`MAX_HOPS`] engines, preferring pairs given earlier), or `None`.
    pub fn route(&self, from: &str, to: &str) -> Option<Route> {
        if from == to {
            return None;
        }
        // Croatian, Serbian and Bosnian are one language to Apertium: Serbo-Croatian.
        let from = match from {
            "hr" | "sr" | "bs" if !self.pairs.iter().any(|p| p.from() == from) => "sh",
            _ => from,
        };
        // Breadth-first over languages; the first way to reach a language is kept.
        let mut reached: BTreeMap<&str, Option<(usize, &str)>> = BTreeMap::new();
        reached.insert(from, None);
        let mut queue = VecDeque::from([(from, 0usize)]);
        while let Some((lang, hops)) = queue.pop_front() {
            if lang == to {
                let mut steps = Vec::new();
                let mut at = to;
                while let Some(Some((pair, before))) = reached.get(at) {
                    steps.push(self.pairs[*pair].clone());
                    at = before;
                }
                steps.reverse();
                return Some(Route { steps });
            }
            if hops == MAX_HOPS {
                continue;
            }
            for (n, pair) in self.pairs.iter().enumerate() {
                if pair.from() == lang && !reached.contains_key(pair.to()) {
                    reached.insert(pair.to(), Some((n, lang)));
                    queue.push_back((pair.to(), hops + 1));
                }
            }
        }
        None
    }
}

/// Pairs run one after another, from a language to another.
#[derive(Clone)]
pub struct Route {
    steps: Vec<Arc<dyn Pair>>,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Route({})", self.model())
    }
}

impl Route {
    /// The pairs, in order.
    pub fn steps(&self) -> &[Arc<dyn Pair>] {
        &self.steps
    }

    /// The engines, joined by `+` when a chain mixes them: `apertium`, `apertium+marian`.
    pub fn engine(&self) -> String {
        let mut engines: Vec<&str> = self.steps.iter().map(|p| p.engine()).collect();
        engines.dedup();
        engines.join("+")
    }

    /// The models, joined by ` → `.
    pub fn model(&self) -> String {
        self.steps
            .iter()
            .map(|p| p.model())
            .collect::<Vec<_>>()
            .join(" → ")
    }

    /// The versions, joined by `+`.
    pub fn version(&self) -> String {
        self.steps
            .iter()
            .map(|p| p.version())
            .collect::<Vec<_>>()
            .join("+")
    }

    /// The languages gone through, joined by `,` (`es` for French → Spanish → English), or
    /// `None` for a direct pair.
    pub fn pivot(&self) -> Option<String> {
        (self.steps.len() > 1).then(|| {
            self.steps[..self.steps.len() - 1]
                .iter()
                .map(|p| p.to())
                .collect::<Vec<_>>()
                .join(",")
        })
    }

    /// Translates each text through every step.
    pub fn translate(&self, texts: &[&str]) -> Result<Vec<String>, Error> {
        let mut current: Vec<String> = texts.iter().map(|t| (*t).to_owned()).collect();
        for step in &self.steps {
            let refs: Vec<&str> = current.iter().map(String::as_str).collect();
            current = step.translate(&refs)?;
        }
        Ok(current)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A pair that marks each text with its languages, for routing tests.
    pub(crate) struct Marker(pub &'static str, pub &'static str);

    impl Pair for Marker {
        fn from(&self) -> &str {
            self.0
        }
        fn to(&self) -> &str {
            self.1
        }
        fn engine(&self) -> &'static str {
            "marker"
        }
        fn model(&self) -> String {
            format!("{}-{}", self.0, self.1)
        }
        fn version(&self) -> String {
            "1".into()
        }
        fn translate(&self, texts: &[&str]) -> Result<Vec<String>, Error> {
            Ok(texts
                .iter()
                .map(|t| format!("{t} [{}>{}]", self.0, self.1))
                .collect())
        }
    }

    fn translators(pairs: &[(&'static str, &'static str)]) -> Translators {
        Translators::new(
            pairs
                .iter()
                .map(|(a, b)| Arc::new(Marker(a, b)) as Arc<dyn Pair>)
                .collect(),
        )
    }

    #[test]
    fn routes_go_direct_when_they_can_and_through_other_languages_when_not() {
        let t = translators(&[
            ("fr", "es"),
            ("es", "en"),
            ("it", "es"),
            ("fr", "en"),
            ("ro", "es"),
            ("en", "eo"),
        ]);
        let direct = t.route("fr", "en").unwrap();
        assert_eq!(direct.model(), "fr-en");
        assert_eq!(direct.pivot(), None);
        let chained = t.route("it", "en").unwrap();
        assert_eq!(chained.model(), "it-es → es-en");
        assert_eq!(chained.pivot().as_deref(), Some("es"));
        assert_eq!(
            chained.translate(&["ciao"]).unwrap(),
            ["ciao [it>es] [es>en]"]
        );
        let three = t.route("ro", "eo").unwrap();
        assert_eq!(three.pivot().as_deref(), Some("es,en"));
        assert!(t.route("en", "ru").is_none());
        let sh = translators(&[("sh", "en")]);
        assert_eq!(sh.route("hr", "en").unwrap().model(), "sh-en");
        assert!(t.route("en", "en").is_none());
        // Four hops are too many.
        let long = translators(&[("a", "b"), ("b", "c"), ("c", "d"), ("d", "e")]);
        assert!(long.route("a", "d").is_some());
        assert!(long.route("a", "e").is_none());
    }
}
