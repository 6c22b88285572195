//! The store's liveness as a write: a few bytes through sled to the `meta` tree, flushed like any
//! acknowledged write, and a few bytes to a file of their own in the data directory, synced.
//! The file catches a full or read-only disk at once, where sled would go on writing into the
//! space it already holds until it next needs more. `/readyz` runs it (at most once a second,
//! `crate::readiness`).

use std::io::Write;
use std::path::Path;

use super::SledStore;
use crate::error::Error;

/// The `meta` key the probe overwrites.
const PROBE_KEY: &[u8] = b"readiness-probe";
/// The file the probe overwrites, in the data directory.
pub const PROBE_FILE: &str = "readiness-probe";

impl SledStore {
    /// `Ok` when the store and the data directory `dir` take writes to disk.
    pub async fn probe_write(&self, dir: &Path, now_ms: u64) -> Result<(), Error> {
        self.meta.insert(PROBE_KEY, &now_ms.to_be_bytes())?;
        self.flush().await?;
        let path = dir.join(PROBE_FILE);
        tokio::task::spawn_blocking(move || write_synced(&path, now_ms))
            .await
            .map_err(|e| Error::internal(format!("probe task: {e}")))?
    }

    /// Whether sled still flushes: `false` once it has met an I/O error, which it then keeps
    /// returning until the directory is opened again (`super::super::sled_cell`). Blocking.
    pub fn db_flush_works(&self) -> bool {
        self.db.flush().is_ok()
    }
}

/// Whether the data directory `dir` takes a synced write of a new file (blocking).
pub fn directory_takes_writes(dir: &Path) -> bool {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    write_synced(&dir.join(PROBE_FILE), now).is_ok()
}

/// Writes a new file and renames it over the last one, so each probe needs space the disk does
/// not already give the probe (overwriting in place would reuse the last probe's page).
fn write_synced(path: &Path, now_ms: u64) -> Result<(), Error> {
    let fresh = path.with_extension("new");
    let fail =
        |e: std::io::Error| Error::internal(format!("probe write to {}: {e}", fresh.display()));
    let written = std::fs::File::create(&fresh).and_then(|mut file| {
        file.write_all(&now_ms.to_be_bytes())?;
        file.sync_data()
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&fresh);
        return Err(fail(e));
    }
    std::fs::rename(&fresh, path).map_err(fail)
}
