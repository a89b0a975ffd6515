//! Whole-file replacement that a crash cannot leave half done: write a temporary file, fsync it,
//! rename it over the target, fsync the directory.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use super::StoreError;

/// The suffix of temporary files; leftovers from a crash are removed when the store opens.
pub const TEMP_SUFFIX: &str = ".tmp";

/// Atomically replaces `path` with `bytes`.
pub fn write(path: &Path, bytes: &[u8], fsync: bool) -> Result<(), StoreError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(TEMP_SUFFIX);
    let tmp = std::path::PathBuf::from(tmp);
    let result = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        if fsync {
            file.sync_all()?;
        }
        drop(file);
        fs::rename(&tmp, path)?;
        if fsync {
            if let Some(dir) = path.parent() {
                File::open(dir)?.sync_all()?;
            }
        }
        Ok(())
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        StoreError::io(path, e)
    })
}
