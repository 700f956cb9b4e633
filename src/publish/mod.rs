//! Result tables and the run manifest, published so that a reader never sees a half-written run
//! and a failed or killed run leaves the previous results exactly as they were.
//!
//! Layout under `OUT/<pipeline>/`:
//! - `.runs/<as-of>-<run id>/`: each published run's files, written once and never changed;
//! - `as_of=<YYYY-MM-DD>`: a symlink to the run published for that as-of date;
//! - `latest`: a symlink to the newest `as_of=` link;
//! - `.lock`: held (flock) by the run in progress, with its pid and start time.
//!
//! A run writes into `.runs/.staging-<run id>/`, renames it into `.runs/`, then swaps the
//! `as_of=` symlink with one `rename` — atomic on POSIX file systems. Whatever a killed run
//! leaves behind (staging folders, temporary links, unreferenced run folders) is removed by the
//! next run, under the lock.

mod goal_model;
mod lock;
mod manifest;

pub(crate) use goal_model::{goal_model_tables, with_name};
pub(crate) use lock::Lock;
pub use manifest::{
    ActionCounts, FileRecord, GateRecord, InputRecord, Manifest, OutputRecord, SourceRecord,
};

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use polars::prelude::*;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("cannot write {path}: {message}")]
    Write { path: String, message: String },
    /// Something styrkort did not make sits where it publishes a link: it is left untouched.
    #[error(
        "{path} is a real {kind}, not a link styrkort made; styrkort publishes a symlink there and does not move or delete what it did not write. Move it elsewhere (e.g. `mv {path} {path}.saved`) and rerun"
    )]
    NotOurs { path: String, kind: &'static str },
}

fn write_err(path: &Path, e: impl std::fmt::Display) -> PublishError {
    PublishError::Write {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// `OUT/<pipeline>`
pub(crate) fn pipeline_dir(out: &Path, pipeline: &str) -> PathBuf {
    out.join(pipeline)
}

/// `OUT/<pipeline>/as_of=<YYYY-MM-DD>`: the published run for an as-of date (a symlink).
pub fn run_dir(out: &Path, pipeline: &str, as_of: NaiveDate) -> PathBuf {
    pipeline_dir(out, pipeline).join(as_of_name(as_of))
}

fn as_of_name(as_of: NaiveDate) -> String {
    format!("as_of={}", as_of.format("%Y-%m-%d"))
}

/// Test hooks for the fault tests, read from the environment. `STYRKORT_TEST_PAUSE=<point>`
/// makes the run touch `STYRKORT_TEST_PAUSE_MARKER` and sleep at that point, so a test can
/// kill it there; `STYRKORT_TEST_FAIL_WRITE=<file>` makes writing that output fail as a full
/// disk would (`link:latest` / `link:as_of=<date>`: making that link fail, as when inodes run
/// out).
pub(crate) fn test_pause(point: &str) {
    if std::env::var("STYRKORT_TEST_PAUSE").as_deref() == Ok(point) {
        if let Ok(marker) = std::env::var("STYRKORT_TEST_PAUSE_MARKER") {
            let _ = fs::write(marker, point);
        }
        std::thread::sleep(std::time::Duration::from_secs(60));
    }
}

fn injected_failure(name: &str) -> Option<std::io::Error> {
    (std::env::var("STYRKORT_TEST_FAIL_WRITE").as_deref() == Ok(name)).then(|| {
        std::io::Error::other(
            "No space left on device (os error 28, injected by STYRKORT_TEST_FAIL_WRITE)",
        )
    })
}

/// A run folder being filled; nothing is visible at `as_of=` until `publish`.
pub(crate) struct Staging {
    runs: PathBuf,
    dir: PathBuf,
    run_name: String,
    link: PathBuf,
}

impl Staging {
    /// Starts staging the run `run_id` for `as_of` under `OUT/<pipeline>/` (which the caller
    /// holds the lock on).
    pub(crate) fn new(
        pipeline_dir: &Path,
        as_of: NaiveDate,
        run_id: &str,
    ) -> Result<Staging, PublishError> {
        let runs = pipeline_dir.join(".runs");
        fs::create_dir_all(&runs).map_err(|e| write_err(&runs, e))?;
        let dir = runs.join(format!(".staging-{run_id}"));
        fs::create_dir_all(&dir).map_err(|e| write_err(&dir, e))?;
        Ok(Staging {
            runs,
            dir,
            run_name: format!("{}-{run_id}", as_of.format("%Y-%m-%d")),
            link: pipeline_dir.join(as_of_name(as_of)),
        })
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Writes a table as Parquet and flushes it to disk; returns its record for the manifest.
    pub(crate) fn write_parquet(
        &self,
        name: &str,
        df: &mut DataFrame,
    ) -> Result<OutputRecord, PublishError> {
        let path = self.path(name);
        if let Some(e) = injected_failure(name) {
            return Err(write_err(&path, e));
        }
        let file = fs::File::create(&path).map_err(|e| write_err(&path, e))?;
        ParquetWriter::new(&file)
            .with_compression(ParquetCompression::Zstd(None))
            .finish(df)
            .map_err(|e| write_err(&path, e))?;
        file.sync_all().map_err(|e| write_err(&path, e))?;
        let (size, blake3) = hash_file(&path).map_err(|e| write_err(&path, e))?;
        Ok(OutputRecord {
            file: name.to_string(),
            rows: df.height(),
            size,
            blake3,
        })
    }

    pub(crate) fn write_json(
        &self,
        name: &str,
        value: &impl serde::Serialize,
    ) -> Result<(), PublishError> {
        let path = self.path(name);
        if let Some(e) = injected_failure(name) {
            return Err(write_err(&path, e));
        }
        let mut file = fs::File::create(&path).map_err(|e| write_err(&path, e))?;
        serde_json::to_writer_pretty(&mut file, value).map_err(|e| write_err(&path, e))?;
        file.write_all(b"\n").map_err(|e| write_err(&path, e))?;
        file.sync_all().map_err(|e| write_err(&path, e))?;
        Ok(())
    }

    /// Makes the staged run the published one for its as-of date, and `latest` point to the
    /// newest as-of. Both links are made under temporary names first, then renamed into place
    /// one after the other, so nothing that can run out (inodes, space) fails between the two.
    /// Returns the `as_of=` path.
    pub(crate) fn publish(self) -> Result<PathBuf, PublishError> {
        let pipeline_dir = self
            .link
            .parent()
            .expect("as_of links live in the pipeline dir")
            .to_path_buf();
        let link_name = self
            .link
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        check_links(&pipeline_dir, &link_name)?;
        let final_dir = self.runs.join(&self.run_name);
        fs::rename(&self.dir, &final_dir).map_err(|e| write_err(&final_dir, e))?;
        sync_dir(&self.runs);
        // Nothing is switched until both links exist under temporary names; if either cannot
        // be made, the run folder goes too and the published state is as it was.
        let links = newest_as_of(&pipeline_dir, &link_name).and_then(|newest| {
            let as_of_tmp = temp_link(
                &pipeline_dir,
                &link_name,
                &Path::new(".runs").join(&self.run_name),
            )?;
            match temp_link(&pipeline_dir, "latest", Path::new(&newest)) {
                Ok(latest_tmp) => Ok((as_of_tmp, latest_tmp)),
                Err(e) => {
                    let _ = fs::remove_file(&as_of_tmp);
                    Err(e)
                }
            }
        });
        let (as_of_tmp, latest_tmp) = match links {
            Ok(l) => l,
            Err(e) => {
                let _ = fs::remove_dir_all(&final_dir);
                return Err(e);
            }
        };
        test_pause("before_link_swap");
        fs::rename(&as_of_tmp, &self.link).map_err(|e| {
            let _ = fs::remove_file(&latest_tmp);
            write_err(&self.link, e)
        })?;
        test_pause("after_link_swap");
        let latest = pipeline_dir.join("latest");
        fs::rename(&latest_tmp, &latest).map_err(|e| write_err(&latest, e))?;
        sync_dir(&pipeline_dir);
        Ok(self.link)
    }

    /// Removes the staging folder after a failure.
    pub(crate) fn discard(self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Refuses to publish over a real folder or file at `as_of=…` or `latest` (an analyst's copy,
/// `cp -L` of a run): styrkort only replaces symlinks it made.
pub(crate) fn check_links(pipeline_dir: &Path, as_of_link: &str) -> Result<(), PublishError> {
    for name in [as_of_link, "latest"] {
        let path = pipeline_dir.join(name);
        if let Ok(meta) = fs::symlink_metadata(&path)
            && !meta.file_type().is_symlink()
        {
            return Err(PublishError::NotOurs {
                path: path.display().to_string(),
                kind: if meta.is_dir() { "folder" } else { "file" },
            });
        }
    }
    Ok(())
}

/// The `as_of=` link name `latest` should point to once `adding` is published.
fn newest_as_of(pipeline_dir: &Path, adding: &str) -> Result<String, PublishError> {
    let newest = fs::read_dir(pipeline_dir)
        .map_err(|e| write_err(pipeline_dir, e))?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with("as_of="))
        .chain(std::iter::once(adding.to_string()))
        .max()
        .expect("at least the link being added");
    Ok(newest)
}

/// A symlink to `target` under a temporary name in `dir`, to be renamed over `name`.
fn temp_link(dir: &Path, name: &str, target: &Path) -> Result<PathBuf, PublishError> {
    let tmp = dir.join(format!(".tmp-link-{}-{name}", std::process::id()));
    if let Some(e) = injected_failure(&format!("link:{name}")) {
        return Err(write_err(&tmp, e));
    }
    let _ = fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp).map_err(|e| write_err(&tmp, e))?;
    Ok(tmp)
}

/// Size and blake3 of a file.
pub(crate) fn hash_file(path: &Path) -> std::io::Result<(u64, String)> {
    let mut hasher = blake3::Hasher::new();
    let mut file = fs::File::open(path)?;
    let size = std::io::copy(&mut file, &mut hasher)?;
    Ok((size, hasher.finalize().to_hex().to_string()))
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Removes what killed runs left behind: staging folders, temporary links, and run folders no
/// `as_of=` link points to. Call with the lock held. Returns what was removed.
pub(crate) fn clean_up(pipeline_dir: &Path) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    let Ok(entries) = fs::read_dir(pipeline_dir) else {
        return removed;
    };
    let mut referenced = std::collections::BTreeSet::new();
    for e in entries.filter_map(Result::ok) {
        let name = e.file_name().to_string_lossy().to_string();
        if name.starts_with(".tmp-link-") {
            let _ = fs::remove_file(e.path());
            removed.push(e.path());
        } else if name.starts_with("as_of=")
            && let Ok(target) = fs::read_link(e.path())
            && let Some(run) = target.file_name()
        {
            referenced.insert(run.to_os_string());
        }
    }
    let runs = pipeline_dir.join(".runs");
    for e in fs::read_dir(&runs)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
    {
        if !referenced.contains(&e.file_name()) {
            let _ = fs::remove_dir_all(e.path());
            removed.push(e.path());
        }
    }
    removed
}
