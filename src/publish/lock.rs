//! One run at a time per pipeline and output directory. The lock is an advisory `flock` on
//! `OUT/<pipeline>/.lock`, which the kernel releases when the holder exits, however it exits; the
//! file's text (pid, start time, run id) names the holder for the second run's message, and a
//! text left by a dead run shows that its lock was taken over.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub(crate) enum LockError {
    #[error(
        "another styrkort run is writing to {dir} ({holder}); wait for it to finish, or stop it if it hangs"
    )]
    Held { dir: String, holder: String },
    #[error("cannot lock {path}: {message}")]
    Io { path: String, message: String },
}

/// Held until dropped.
pub(crate) struct Lock {
    file: File,
    /// What a previous, dead holder wrote, if its lock was taken over.
    pub(crate) taken_over: Option<String>,
}

impl Lock {
    pub(crate) fn acquire(pipeline_dir: &Path, run_id: &str) -> Result<Lock, LockError> {
        let io = |path: &Path, e: std::io::Error| LockError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        fs::create_dir_all(pipeline_dir).map_err(|e| io(pipeline_dir, e))?;
        let path = pipeline_dir.join(".lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io(&path, e))?;
        let mut previous = String::new();
        let _ = file.read_to_string(&mut previous);
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(LockError::Held {
                    dir: pipeline_dir.display().to_string(),
                    holder: if previous.trim().is_empty() {
                        "holder unknown".into()
                    } else {
                        previous.trim().to_string()
                    },
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(&path, e)),
        }
        let text = format!(
            "pid {}, started {}, run {run_id}",
            std::process::id(),
            chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ")
        );
        file.set_len(0).map_err(|e| io(&path, e))?;
        file.seek(SeekFrom::Start(0)).map_err(|e| io(&path, e))?;
        file.write_all(text.as_bytes()).map_err(|e| io(&path, e))?;
        let _ = file.sync_all();
        let taken_over = (!previous.trim().is_empty()).then(|| previous.trim().to_string());
        Ok(Lock { file, taken_over })
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // An empty file after a clean exit; a dead holder leaves its text for the next run to report.
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}
