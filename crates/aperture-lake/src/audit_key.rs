//! The audit log's key: read from `[audit] key_file`, or made once when missing.

use std::path::{Path, PathBuf};

use aperture_catalog::Backend;
use aperture_catalog::access::{AUDIT_KEY, AuditKey};

use crate::{Error, Result};

/// Entries read at once when looking through the log.
const AUDIT_PAGE: usize = 10_000;

/// The audit key file's first line.
const KEY_FILE_HEADER: &str = "# The key of this lake's audit log. Keep it secret, with a copy away from \
the catalog: whoever holds it and can write the catalog can rewrite the log unseen. Every server \
and CLI of the lake needs the same one ([audit] key_file).";

/// The audit key file's contents.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    key: String,
    keyed_from: i64,
}

/// Reads the lake's audit key from `path`; when the file is missing, makes a key for the
/// entries from the next one on, whose first entry is the key's own (`audit_key`, with its
/// fingerprint). The key is written (under a temporary name, synced) before the log says it
/// exists, and the log says so only if no process keyed it first: two machines starting at
/// once end with one key. A log keyed already whose key is not here is an error: another
/// machine has the key, and making a second one would split the chain.
pub(crate) fn load_or_make_key(path: &Path, catalog: &dyn Backend) -> Result<AuditKey> {
    loop {
        if let Some(key) = read_key(path)? {
            return Ok(key);
        }
        let (keyed, last) = keying_of(catalog)?;
        if let Some(fingerprint) = keyed {
            // A process that died between keying the log and linking its key left it here.
            if let Some(found) = adopt_partial(path, &fingerprint)? {
                return Ok(found);
            }
            return Err(Error::Audit {
                reason: format!(
                    "the audit log is keyed (key {fingerprint}), but there is no key at {}: copy \
                     the key file from the machine that made it (or set [audit] key_file)",
                    path.display()
                ),
            });
        }
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| Error::Audit {
            reason: format!("no randomness for the audit key: {e}"),
        })?;
        let key = AuditKey::new(bytes, last + 1);
        let text = format!(
            "{KEY_FILE_HEADER}\nkey = \"{}\"\nkeyed_from = {}\n",
            aperture_core::hex(&bytes),
            last + 1
        );
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(Error::io("create", parent))?;
        }
        let temp = partial_name(path, std::process::id());
        let _ = std::fs::remove_file(&temp);
        write_private(&temp, &text).map_err(Error::io("write", &temp))?;
        if !catalog.start_keyed_audit(&key)? {
            // Keyed by another process, or the log grew meanwhile: look again.
            let _ = std::fs::remove_file(&temp);
            continue;
        }
        let linked = std::fs::hard_link(&temp, path);
        let _ = std::fs::remove_file(&temp);
        linked.map_err(Error::io("write", path))?;
        return Ok(key);
    }
}

/// The fingerprint the log's `audit_key` entry names, if any, and the log's last number.
fn keying_of(catalog: &dyn Backend) -> Result<(Option<String>, i64)> {
    let mut after = 0;
    loop {
        let page = catalog.audit_entries(after, AUDIT_PAGE)?;
        if let Some(keyed) = page.iter().find(|e| e.action == AUDIT_KEY) {
            let fingerprint = serde_json::from_str::<serde_json::Value>(&keyed.detail)
                .ok()
                .and_then(|d| d.get("fingerprint")?.as_str().map(str::to_owned))
                .unwrap_or_default();
            return Ok((Some(fingerprint), keyed.seq));
        }
        match page.last() {
            Some(last) => after = last.seq,
            None => return Ok((None, after)),
        }
    }
}

fn partial_name(path: &Path, pid: u32) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "audit.key".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!("{name}.partial-{pid}"))
}

/// Links into place a key left under its temporary name whose fingerprint is `fingerprint`.
fn adopt_partial(path: &Path, fingerprint: &str) -> Result<Option<AuditKey>> {
    let Some(dir) = path.parent() else {
        return Ok(None);
    };
    let prefix = partial_name(path, 0)
        .file_name()
        .map(|n| n.to_string_lossy().trim_end_matches('0').to_owned())
        .unwrap_or_default();
    let Ok(listing) = std::fs::read_dir(dir) else {
        return Ok(None);
    };
    for entry in listing.flatten() {
        if !entry.file_name().to_string_lossy().starts_with(&prefix) {
            continue;
        }
        let candidate = entry.path();
        if let Ok(Some(key)) = read_key(&candidate)
            && key.fingerprint().as_deref() == Some(fingerprint)
        {
            match std::fs::hard_link(&candidate, path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(Error::io("write", path)(e)),
            }
            let _ = std::fs::remove_file(&candidate);
            return read_key(path);
        }
    }
    Ok(None)
}

/// Where the heads of the log are written: `<key file>.head`, beside the key.
pub(crate) fn head_file(key_file: &Path) -> PathBuf {
    let name = key_file
        .file_name()
        .map_or_else(|| "audit.key".into(), |n| n.to_string_lossy().into_owned());
    key_file.with_file_name(format!("{name}.head"))
}

/// The head of the log as last written here: (seq, hash in hex), when the file is there and its
/// MAC is the key's; an error when it is there but was changed.
pub(crate) fn read_head(file: &Path, key: &AuditKey) -> Result<Option<(i64, String)>> {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("read", file)(e)),
    };
    let mut parts = text.trim().split(':');
    let (Some(seq), Some(hash), Some(mac), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad_head(file));
    };
    let seq: i64 = seq.parse().map_err(|_| bad_head(file))?;
    if head_mac(key, seq, hash).as_deref() != Some(mac) {
        return Err(bad_head(file));
    }
    Ok(Some((seq, hash.to_owned())))
}

fn bad_head(file: &Path) -> Error {
    Error::Audit {
        reason: format!(
            "{} is not a head of this log written with its key: it was changed",
            file.display()
        ),
    }
}

fn head_mac(key: &AuditKey, seq: i64, hash: &str) -> Option<String> {
    let mac_key = key.derive("aperture audit head")?;
    Some(aperture_core::hex(
        blake3::keyed_hash(&mac_key, format!("{seq}:{hash}").as_bytes()).as_bytes(),
    ))
}

/// Writes `(seq, hash)` as the head of the log, with a MAC under the key, unless the file holds
/// a later one: kept outside the catalog, it lets `audit --verify` find a log cut short. A head
/// that cannot be written is logged, not fatal (the entries are in the log).
pub(crate) fn record_head(file: &Path, key: &AuditKey, seq: i64, hash: &[u8; 32]) {
    let Some(mac) = head_mac(key, seq, &aperture_core::hex(hash)) else {
        return;
    };
    if matches!(read_head(file, key), Ok(Some((known, _))) if known >= seq) {
        return;
    }
    let text = format!("{seq}:{}:{mac}\n", aperture_core::hex(hash));
    let temp = file.with_file_name(format!(
        "{}.{}",
        file.file_name()
            .map_or_else(Default::default, |n| n.to_string_lossy()),
        std::process::id()
    ));
    let written = std::fs::write(&temp, text).and_then(|()| std::fs::rename(&temp, file));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        tracing::warn!(file = %file.display(), error = %e, "cannot write the audit log's head");
    }
}

fn read_key(path: &Path) -> Result<Option<AuditKey>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("read", path)(e)),
    };
    let bad = |why: String| Error::Audit {
        reason: format!("{} is not an audit key file: {why}", path.display()),
    };
    let file: KeyFile = toml::from_str(&text).map_err(|e| bad(e.message().to_owned()))?;
    // blake3's hex parser: 64 digits, or an error.
    let key = *blake3::Hash::from_hex(file.key.trim())
        .map_err(|_| bad("key is not 64 hexadecimal digits".into()))?
        .as_bytes();
    if file.keyed_from < 1 {
        return Err(bad("keyed_from must be at least 1".into()));
    }
    Ok(Some(AuditKey::new(key, file.keyed_from)))
}

/// Writes a new file readable by its owner only (a config may carry a password, a key file is
/// a key).
pub(crate) fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}
