//! A blob's file in a local store, written on the calling thread: the bytes go to a new file
//! beside it, named `<blob>#<digits>` as object_store's local store names the files it is
//! still writing (so `fsck` finds one a crash left behind), which then takes the blob's name.

use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// Names tried for the file beside the blob before giving up (another writer holds each).
const NAMES_TRIED: u32 = 64;

static NEXT: AtomicU32 = AtomicU32::new(0);
/// This process's id, asked once (it is a system call each time, once a blob on ingest). A
/// child forked without `exec` would keep its parent's; nothing forks but to run a command.
static PROCESS: LazyLock<u32> = LazyLock::new(std::process::id);

/// Writes `bytes` to `target` when no file is there; fails with `AlreadyExists` (and leaves
/// the file that is there alone) otherwise.
pub(crate) fn write_new(target: &Path, bytes: &[u8]) -> io::Result<()> {
    let beside = write_beside(target, bytes)?;
    let placed = rename_no_replace(&beside, target);
    if placed.is_err() {
        let _ = fs::remove_file(&beside);
    }
    placed
}

/// Writes `bytes` to `target`, replacing what is there in one step.
pub(crate) fn replace(target: &Path, bytes: &[u8]) -> io::Result<()> {
    let beside = write_beside(target, bytes)?;
    fs::rename(&beside, target).inspect_err(|_| {
        let _ = fs::remove_file(&beside);
    })
}

/// Whether the file at `target` is a regular file of `size` bytes that hash to `hash`: false
/// for a damaged one (wrong size or content), which the caller replaces. A symbolic link, a
/// folder or a device there, or a file that cannot be read, is an error: nothing of it is read
/// past `size` bytes, and it is never replaced unseen.
pub(crate) fn holds(
    target: &Path,
    size: u64,
    hash: aperture_core::ContentHash,
) -> io::Result<bool> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NOFOLLOW);
    let file = options.open(target)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::other(
            "not a regular file where a blob should be",
        ));
    }
    if meta.len() != size {
        return Ok(false);
    }
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(io::Read::take(file, size))?;
    Ok(aperture_core::ContentHash::from(hasher.finalize()) == hash)
}

fn write_beside(target: &Path, bytes: &[u8]) -> io::Result<PathBuf> {
    let mut made_folder = false;
    for _ in 0..NAMES_TRIED {
        // The process id keeps two processes writing the same blob apart.
        let n = u64::from(*PROCESS) << 32 | u64::from(NEXT.fetch_add(1, Ordering::Relaxed));
        let mut name = OsString::from(target.as_os_str());
        name.push(format!("#{n}"));
        let beside = PathBuf::from(name);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&beside)
        {
            Ok(mut file) => {
                return match file.write_all(bytes) {
                    Ok(()) => Ok(beside),
                    Err(e) => {
                        drop(file);
                        let _ = fs::remove_file(&beside);
                        Err(e)
                    }
                };
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound && !made_folder => {
                let folder = target.parent().ok_or(e)?;
                fs::create_dir_all(folder)?;
                made_folder = true;
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(format!(
        "{NAMES_TRIED} names beside {} are all taken",
        target.display()
    )))
}

/// Renames `from` to `to` unless `to` exists (`AlreadyExists` then): one `renameat2` where the
/// file system has it, else a hard link and an unlink, as object_store's local store does.
fn rename_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::ffi::OsStrExt;
        let c = |p: &Path| {
            std::ffi::CString::new(p.as_os_str().as_bytes())
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL in a path"))
        };
        let (from_c, to_c) = (c(from)?, c(to)?);
        // SAFETY: both paths are NUL-terminated strings that live across the call.
        let done = unsafe {
            libc::renameat2(
                libc::AT_FDCWD,
                from_c.as_ptr(),
                libc::AT_FDCWD,
                to_c.as_ptr(),
                libc::RENAME_NOREPLACE,
            )
        };
        if done == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        // File systems without the flag answer EINVAL; old kernels ENOSYS.
        if !matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS)) {
            return Err(e);
        }
    }
    fs::hard_link(from, to)?;
    fs::remove_file(from)
}
