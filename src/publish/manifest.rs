//! `manifest.json`: what a run read, what it wrote, how long it took — enough to tell whether two
//! runs saw the same inputs and definitions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub run_id: String,
    pub pipeline: String,
    pub as_of: String,
    /// First and last month reported.
    pub first_period: String,
    pub last_period: String,
    pub styrkort_version: String,
    pub started_at: String,
    pub finished_at: String,
    /// blake3 of the pipeline file and every definitions file it names (org units, mapping).
    pub definitions_hash: String,
    pub definitions: Vec<FileRecord>,
    pub sources: Vec<SourceRecord>,
    pub outputs: Vec<OutputRecord>,
    /// Rows of `deviations.parquet` per status.
    pub status_counts: BTreeMap<String, usize>,
    /// Rows of `goal_status.parquet` per status.
    pub goal_status_counts: BTreeMap<String, usize>,
    pub actions: ActionCounts,
    /// Series in `signals.parquet` per flag.
    pub signal_flags: BTreeMap<String, usize>,
    pub durations_ms: Vec<(String, u64)>,
    pub warnings: Vec<String>,
}

impl Manifest {
    /// The manifest of a published run folder, if it is there and readable.
    pub fn read(run_dir: &std::path::Path) -> Option<Manifest> {
        let text = std::fs::read_to_string(run_dir.join("manifest.json")).ok()?;
        serde_json::from_str(&text).ok()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileRecord {
    pub path: String,
    pub size: u64,
    pub blake3: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InputRecord {
    pub path: String,
    pub size: u64,
    pub rows: i64,
    /// blake3 of the bytes; for an object in a store (`s3://…`), of its URL, ETag, version, size
    /// and modification time, as the client does not download it.
    pub blake3: String,
    /// An object's ETag as its store reported it (objects only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SourceRecord {
    pub name: String,
    pub indicators: Vec<String>,
    pub files: Vec<InputRecord>,
    pub rows_read: i64,
    pub rows_rejected: usize,
    /// Usable rows dated outside the run's months: not rejected, just not in this run.
    pub rows_outside_periods: i64,
    /// The latest month of the run with usable rows (`YYYY-MM`), if any.
    pub latest_month: Option<String>,
    /// The data-quality gates' verdicts on this source.
    pub gates: Vec<GateRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GateRecord {
    pub gate: String,
    /// `pass`, `warn` or `fail`.
    pub outcome: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutputRecord {
    pub file: String,
    pub rows: usize,
    pub size: u64,
    /// blake3 of the file as written, so `--skip-unchanged` can tell a damaged run.
    pub blake3: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ActionCounts {
    pub actions: usize,
    pub overdue: usize,
    /// Not-met goal × unit in a latest period with no open action.
    pub deviations_without_action: usize,
}
