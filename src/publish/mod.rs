//! Result tables and the run manifest, written into a staging folder beside the destination and
//! published with one rename, so a reader never sees a half-written run and a failed run leaves
//! the previous results untouched.

mod manifest;

pub use manifest::{ActionCounts, FileRecord, InputRecord, Manifest, OutputRecord, SourceRecord};

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use polars::prelude::*;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("cannot write {path}: {message}")]
    Write { path: String, message: String },
}

fn write_err(path: &Path, e: impl std::fmt::Display) -> PublishError {
    PublishError::Write {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// `OUT/<pipeline>/as_of=<YYYY-MM-DD>`
pub fn run_dir(out: &Path, pipeline: &str, as_of: NaiveDate) -> PathBuf {
    out.join(pipeline)
        .join(format!("as_of={}", as_of.format("%Y-%m-%d")))
}

/// A folder being filled; nothing is visible at the destination until `publish`.
pub struct Staging {
    dir: PathBuf,
    destination: PathBuf,
}

impl Staging {
    pub fn new(destination: PathBuf, run_id: &str) -> Result<Staging, PublishError> {
        let parent = destination
            .parent()
            .expect("run directories always have a parent")
            .to_path_buf();
        fs::create_dir_all(&parent).map_err(|e| write_err(&parent, e))?;
        let dir = parent.join(format!(".staging-{run_id}"));
        fs::create_dir_all(&dir).map_err(|e| write_err(&dir, e))?;
        Ok(Staging { dir, destination })
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Writes a table as Parquet; returns its row count.
    pub fn write_parquet(&self, name: &str, df: &mut DataFrame) -> Result<usize, PublishError> {
        let path = self.path(name);
        let file = fs::File::create(&path).map_err(|e| write_err(&path, e))?;
        ParquetWriter::new(file)
            .with_compression(ParquetCompression::Zstd(None))
            .finish(df)
            .map_err(|e| write_err(&path, e))?;
        Ok(df.height())
    }

    pub fn write_json(
        &self,
        name: &str,
        value: &impl serde::Serialize,
    ) -> Result<(), PublishError> {
        let path = self.path(name);
        let mut file = fs::File::create(&path).map_err(|e| write_err(&path, e))?;
        serde_json::to_writer_pretty(&mut file, value).map_err(|e| write_err(&path, e))?;
        file.write_all(b"\n").map_err(|e| write_err(&path, e))?;
        file.sync_all().map_err(|e| write_err(&path, e))?;
        Ok(())
    }

    /// Replaces the destination with the staged folder. An earlier run for the same as-of date
    /// is moved aside first and removed only after the new one is in place.
    pub fn publish(self) -> Result<PathBuf, PublishError> {
        let old = self.dir.with_extension("replaced");
        let had_old = self.destination.exists();
        if had_old {
            fs::rename(&self.destination, &old).map_err(|e| write_err(&self.destination, e))?;
        }
        if let Err(e) = fs::rename(&self.dir, &self.destination) {
            if had_old {
                // Put yesterday's results back before reporting the failure.
                let _ = fs::rename(&old, &self.destination);
            }
            return Err(write_err(&self.destination, e));
        }
        if had_old {
            let _ = fs::remove_dir_all(&old);
        }
        Ok(self.destination.clone())
    }

    /// Removes the staging folder after a failure.
    pub fn discard(self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}
