//! The audit log's key: read from `[audit] key_file`, or made once when missing.

use std::path::Path;

use aperture_catalog::access::AuditKey;
use aperture_catalog::{Backend, NewAuditEntry};

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
/// entries from the next one on and says so in the log (`audit_key`, with the key's
/// fingerprint), unless the log is keyed already: then another machine has its key, and
/// making a second one would split the chain.
pub(crate) fn load_or_make_key(path: &Path, catalog: &dyn Backend) -> Result<AuditKey> {
    if let Some(key) = read_key(path)? {
        return Ok(key);
    }
    let mut after = 0;
    loop {
        let page = catalog.audit_entries(after, AUDIT_PAGE)?;
        if let Some(keyed) = page.iter().find(|e| e.action == "audit_key") {
            return Err(Error::Audit {
                reason: format!(
                    "the audit log is keyed since entry #{} ({}), but there is no key at {}: copy \
                     the key file from the machine that made it (or set [audit] key_file)",
                    keyed.seq,
                    keyed.detail,
                    path.display()
                ),
            });
        }
        match page.last() {
            Some(last) => after = last.seq,
            None => break,
        }
    }
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| Error::Audit {
        reason: format!("no randomness for the audit key: {e}"),
    })?;
    let text = format!(
        "{KEY_FILE_HEADER}\nkey = \"{}\"\nkeyed_from = {}\n",
        aperture_core::hex(&key),
        after + 1
    );
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(Error::io("create", parent))?;
    }
    // Written whole under a temporary name, then linked: two processes making a key at once
    // end with one of them, which both use.
    let temp = path.with_extension(format!("partial-{}", std::process::id()));
    let _ = std::fs::remove_file(&temp);
    write_private(&temp, &text).map_err(Error::io("write", &temp))?;
    let linked = std::fs::hard_link(&temp, path);
    let _ = std::fs::remove_file(&temp);
    match linked {
        Ok(()) => {
            let key = AuditKey::new(key, after + 1);
            let entry = NewAuditEntry::new(
                "aperture",
                "audit_key",
                None,
                serde_json::json!({ "fingerprint": key.fingerprint() }),
            );
            catalog.append_audit(&key, &[entry])?;
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            read_key(path)?.ok_or_else(|| Error::Audit {
                reason: format!("{} vanished while it was made", path.display()),
            })
        }
        Err(e) => Err(Error::io("write", path)(e)),
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
