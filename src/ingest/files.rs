//! Input files: found from a source's path or glob, hashed for the manifest, and checked for the
//! faults a reader would otherwise report without a line number — empty files, header-only
//! exports, ragged rows, bytes that are not UTF-8, unreadable Parquet footers.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::{IngestError, normalise};
use crate::definitions::{Pipeline, SourceDef, SourceFormat};

/// One input file, as recorded in the manifest.
#[derive(Debug, Clone)]
pub struct InputFile {
    pub(crate) path: PathBuf,
    /// Where the scan reads it: the file itself, its UTF-8 copy when it is in another encoding,
    /// or an object's local stand-in (both removed when the last clone of this record goes).
    pub(crate) read_path: PathBuf,
    _temp_copy: Option<std::sync::Arc<tempfile::TempPath>>,
    /// The path as shown to users (normalised).
    pub(crate) display: String,
    pub(crate) size: u64,
    /// blake3 of the bytes; for an object in a store, of its URL, ETag, version, size and
    /// modification time as the store reports them (the client does not download the data).
    pub(crate) blake3: String,
    /// Data rows (CSV records after the header, or Parquet rows).
    pub(crate) rows: u64,
    /// Modification time when hashed: with `size`, tells whether the file changed since.
    pub(crate) modified: Option<std::time::SystemTime>,
    /// Where quoted fields span lines (a CSV cell holding a newline), records and lines part
    /// ways: `(record, extra lines)` from that record on (record 0 is the header). Empty for
    /// most files; see [`InputFile::line_of_row`].
    pub(crate) line_shifts: Vec<(u64, u64)>,
    /// Set when the file is an object in a store (`s3://…`), read by the SQL engines where it
    /// lives; `read_path` is then a local stand-in with its schema and no rows.
    pub(crate) object: Option<StoredObject>,
}

/// An input that is an object in a store.
#[derive(Debug, Clone)]
// The URL and version are read by the SQL engines, which only distributed builds have.
#[cfg_attr(not(feature = "distributed"), allow(dead_code))]
pub(crate) struct StoredObject {
    pub(crate) url: String,
    pub(crate) e_tag: Option<String>,
    pub(crate) version: Option<String>,
}

impl InputFile {
    /// An object in a store, with its local stand-in.
    #[cfg(feature = "distributed")]
    pub(super) fn stored(
        object: StoredObject,
        stand_in: tempfile::TempPath,
        size: u64,
        blake3: String,
        rows: u64,
        modified: std::time::SystemTime,
    ) -> InputFile {
        InputFile {
            path: PathBuf::from(&object.url),
            read_path: stand_in.to_path_buf(),
            _temp_copy: Some(std::sync::Arc::new(stand_in)),
            display: object.url.clone(),
            size,
            blake3,
            rows,
            modified: Some(modified),
            line_shifts: Vec::new(),
            object: Some(object),
        }
    }

    /// An error when the file's size or modification time differs from when it was hashed: it
    /// was written to while the run read it, so the manifest would not describe the bytes used.
    pub fn check_unchanged(&self) -> Result<(), IngestError> {
        // Objects exist only in `distributed` builds (the only ones that can list a store).
        #[cfg(feature = "distributed")]
        if let Some(object) = &self.object {
            return stored_unchanged(object, self.size, &self.display);
        }
        let meta = std::fs::metadata(&self.path).ok();
        let now = meta.as_ref().map(|m| (m.len(), m.modified().ok()));
        if now != Some((self.size, self.modified)) {
            return Err(IngestError::Changed {
                file: self.display.clone(),
            });
        }
        Ok(())
    }
}

#[cfg(feature = "distributed")]
fn stored_unchanged(object: &StoredObject, size: u64, display: &str) -> Result<(), IngestError> {
    match super::remote::unchanged(object, size) {
        Ok(true) => Ok(()),
        Ok(false) => Err(IngestError::Changed {
            file: display.to_string(),
        }),
        Err(message) => Err(IngestError::Unreadable {
            file: display.to_string(),
            message,
        }),
    }
}

/// The physical line of data row `row` given a file's line shifts.
pub(crate) fn line_of_row(shifts: &[(u64, u64)], row: u64) -> u64 {
    let record = row + 1;
    let at = shifts.partition_point(|&(from, _)| from <= record);
    let shift = if at == 0 { 0 } else { shifts[at - 1].1 };
    1 + record + shift
}

/// Follows CSV records across the bytes: a newline inside quotes continues the record, so every
/// later record starts one line further down than its number says.
#[derive(Default)]
struct RecordLines {
    in_quotes: bool,
    record: u64,
    shift: u64,
    pending: bool,
    shifts: Vec<(u64, u64)>,
}

impl RecordLines {
    fn feed(&mut self, bytes: &[u8]) {
        for at in memchr::memchr2_iter(b'"', b'\n', bytes) {
            if bytes[at] == b'"' {
                // `""` inside quotes toggles twice: an escaped quote leaves the state as it was.
                self.in_quotes = !self.in_quotes;
            } else if self.in_quotes {
                self.shift += 1;
                self.pending = true;
            } else {
                self.record += 1;
                if self.pending {
                    self.shifts.push((self.record, self.shift));
                    self.pending = false;
                }
            }
        }
    }
}

/// Feeds every byte read through a hasher (and for CSV, the record-line tracker), so one pass
/// parses, hashes and maps lines.
struct HashingReader<R> {
    inner: R,
    hasher: blake3::Hasher,
    bytes: u64,
    lines: Option<RecordLines>,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        if let Some(lines) = &mut self.lines {
            lines.feed(&buf[..n]);
        }
        self.bytes += n as u64;
        Ok(n)
    }
}

/// Every source's files, found, hashed and checked, per source in the pipeline's order: its
/// files sorted by path, or its first fault (its files not found, else the first file in path
/// order that fails its checks).
///
/// The files of all sources are read side by side, the largest first, each by the next free
/// thread. Source by source, one large source could end long after the others (at scale 1000
/// CSV one thread checked 4.0 s of files, the other 2.9 s), and a source of many monthly files
/// was read on one thread.
pub(crate) fn expand_sources(pipeline: &Pipeline) -> Vec<Result<Vec<InputFile>, IngestError>> {
    use rayon::iter::{IntoParallelIterator, ParallelIterator};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// One unit of work: a local file of source `source`, or a source in an object store.
    struct Job {
        source: usize,
        file: usize,
        path: Option<PathBuf>,
        bytes: u64,
    }
    let sources = &pipeline.def.sources;
    let mut jobs = Vec::new();
    // Per source: whether its files were found.
    let mut found: Vec<Result<(), IngestError>> = Vec::with_capacity(sources.len());
    for (k, source) in sources.iter().enumerate() {
        if is_object_url(source.path.get_ref()) {
            // Listed in the store, as one unit: asked first, as its answer takes a round trip.
            jobs.push(Job {
                source: k,
                file: 0,
                path: None,
                bytes: u64::MAX,
            });
            found.push(Ok(()));
            continue;
        }
        match source_paths(pipeline, source) {
            Ok(paths) => {
                found.push(Ok(()));
                for (file, path) in paths.into_iter().enumerate() {
                    let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
                    jobs.push(Job {
                        source: k,
                        file,
                        path: Some(path),
                        bytes,
                    });
                }
            }
            Err(e) => found.push(Err(e)),
        }
    }
    jobs.sort_by(|a, b| (b.bytes, a.source, a.file).cmp(&(a.bytes, b.source, b.file)));
    // One worker per thread, each taking the next job in that order when it is free. (rayon's
    // `par_bridge` does the same but took 25 MB more memory on the fixtures; a parallel
    // iterator over the list splits it in halves, which can leave the two largest files to
    // one thread.)
    let next = AtomicUsize::new(0);
    let workers = rayon::current_num_threads().clamp(1, jobs.len().max(1));
    // Per job: its source, its file, and the file (a store's files) or its fault.
    type Done = (usize, usize, Result<Vec<InputFile>, IngestError>);
    let done: Vec<Vec<Done>> = (0..workers)
        .into_par_iter()
        .map(|_| {
            let mut mine = Vec::new();
            while let Some(job) = jobs.get(next.fetch_add(1, Ordering::Relaxed)) {
                let source = &sources[job.source];
                let files = match &job.path {
                    Some(path) => inspect_input(path, source).map(|file| vec![file]),
                    None => expand_stored(source),
                };
                mine.push((job.source, job.file, files));
            }
            mine
        })
        .collect();
    let mut done: Vec<_> = done.into_iter().flatten().collect();
    done.sort_by_key(|(source, file, _)| (*source, *file));
    let mut done = done.into_iter().peekable();
    found
        .into_iter()
        .enumerate()
        .map(|(k, found)| {
            found?;
            let mut files = Vec::new();
            let mut fault = None;
            while let Some((_, _, result)) = done.next_if(|(source, _, _)| *source == k) {
                match result {
                    Ok(part) => files.extend(part),
                    Err(e) => {
                        fault.get_or_insert(e);
                    }
                }
            }
            match fault {
                Some(e) => Err(e),
                None => Ok(files),
            }
        })
        .collect()
}

/// The local files a source's path or glob names: sorted, each once, regular files only.
fn source_paths(pipeline: &Pipeline, source: &SourceDef) -> Result<Vec<PathBuf>, IngestError> {
    let pattern = pipeline.resolve(source.path.get_ref());
    let pattern_text = pattern.to_string_lossy().to_string();
    let mut paths: Vec<PathBuf> = glob::glob(&pattern_text)
        .map_err(|e| IngestError::BadPattern {
            source_name: source.name.get_ref().clone(),
            pattern: source.path.get_ref().clone(),
            message: e.to_string(),
        })?
        .filter_map(Result::ok)
        .collect();
    // A FIFO or device named like a source would hang the reader or fill memory: refused. Folders
    // a pattern happens to match are skipped.
    if let Some(odd) = paths
        .iter()
        .find(|p| std::fs::metadata(p).is_ok_and(|m| !m.is_file() && !m.is_dir()))
    {
        return Err(IngestError::Unreadable {
            file: normalise(odd),
            message: "not a regular file (a pipe or device)".to_string(),
        });
    }
    paths.retain(|p| p.is_file());
    paths.sort();
    if paths.is_empty() {
        return Err(IngestError::NoFiles {
            source_name: source.name.get_ref().clone(),
            pattern: normalise(&pattern),
        });
    }
    read_once(paths, source.name.get_ref())
}

/// One local file of a source, hashed and checked; a file without data rows is a fault unless
/// the source allows it.
fn inspect_input(path: &Path, source: &SourceDef) -> Result<InputFile, IngestError> {
    let file = inspect(path, source)?;
    if file.rows == 0 && !source.allow_empty {
        return Err(IngestError::NoRows {
            file: file.display,
            source_name: source.name.get_ref().clone(),
        });
    }
    Ok(file)
}

/// Whether a source path names objects in a store (`s3://bucket/key`) rather than local files.
pub(crate) fn is_object_url(path: &str) -> bool {
    path.split_once("://").is_some_and(|(scheme, _)| {
        !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric())
    })
}

#[cfg(feature = "distributed")]
fn expand_stored(source: &SourceDef) -> Result<Vec<InputFile>, IngestError> {
    if source.format != SourceFormat::Parquet {
        return Err(IngestError::StoredNotParquet {
            source_name: source.name.get_ref().clone(),
        });
    }
    super::remote::expand(source, source.path.get_ref())
}

#[cfg(not(feature = "distributed"))]
fn expand_stored(source: &SourceDef) -> Result<Vec<InputFile>, IngestError> {
    Err(IngestError::NeedsSqlEngine {
        file: source.path.get_ref().clone(),
    })
}

/// Every file once: paths that reach the same file (a second link to it) are dropped with a
/// warning, and a path that passes through a symlink pointing back to a folder above it (a
/// loop, which a recursive `**` pattern follows again and again) is refused.
fn read_once(paths: Vec<PathBuf>, source_name: &str) -> Result<Vec<PathBuf>, IngestError> {
    let mut seen: BTreeMap<PathBuf, PathBuf> = BTreeMap::new();
    let mut unique = Vec::new();
    for path in paths {
        if let Some(link) = looping_link(&path) {
            return Err(IngestError::SymlinkLoop {
                source_name: source_name.to_string(),
                file: normalise(&path),
                link: normalise(&link),
            });
        }
        let canonical = std::fs::canonicalize(&path).map_err(|e| IngestError::Unreadable {
            file: normalise(&path),
            message: e.to_string(),
        })?;
        match seen.get(&canonical) {
            Some(first) => tracing::warn!(
                source = source_name,
                file = %normalise(&path),
                same_as = %normalise(first),
                "the pattern matches one file twice (a link); it is read once"
            ),
            None => {
                seen.insert(canonical, path.clone());
                unique.push(path);
            }
        }
    }
    Ok(unique)
}

/// A folder on the path that is a symlink to itself or to a folder above it.
fn looping_link(path: &Path) -> Option<PathBuf> {
    let mut ancestors: Vec<&Path> = path.ancestors().skip(1).collect();
    ancestors.reverse();
    for dir in ancestors {
        let is_link = std::fs::symlink_metadata(dir)
            .map(|m| m.file_type().is_symlink())
            .unwrap_or(false);
        if !is_link {
            continue;
        }
        let (Ok(target), Some(parent)) = (std::fs::canonicalize(dir), dir.parent()) else {
            continue;
        };
        let parent = std::fs::canonicalize(parent).unwrap_or_else(|_| parent.to_path_buf());
        if parent.starts_with(&target) {
            return Some(dir.to_path_buf());
        }
    }
    None
}

fn inspect(path: &Path, source: &SourceDef) -> Result<InputFile, IngestError> {
    let (format, delimiter, encoding) = (
        source.format,
        source.delimiter_byte(),
        source.text_encoding(),
    );
    let display = normalise(path);
    let unreadable = |message: String| IngestError::Unreadable {
        file: display.clone(),
        message,
    };
    let meta = std::fs::metadata(path).map_err(|e| unreadable(e.to_string()))?;
    let (size, modified) = (meta.len(), meta.modified().ok());
    if size == 0 {
        return Err(IngestError::EmptyFile { file: display });
    }
    if format == SourceFormat::Csv {
        refuse_binary(path, &display)?;
    }
    let file = File::open(path).map_err(|e| unreadable(e.to_string()))?;
    let mut reader = HashingReader {
        inner: std::io::BufReader::with_capacity(1 << 20, file),
        hasher: blake3::Hasher::new(),
        bytes: 0,
        lines: (format == SourceFormat::Csv).then(RecordLines::default),
    };
    let mut decoded = None;
    let rows = match format {
        SourceFormat::Csv if encoding.is_some() || source.fallback_encoding().is_some() => {
            let (rows, copy) = decoded_csv_rows(&mut reader, path, &display, source)?;
            decoded = copy;
            rows
        }
        SourceFormat::Csv => csv_rows(&mut reader, path, &display, delimiter)?,
        SourceFormat::KoladaJson => {
            std::io::copy(&mut reader, &mut std::io::sink())
                .map_err(|e| unreadable(e.to_string()))?;
            super::kolada_json::read(path).map_err(unreadable)?.height() as u64
        }
        SourceFormat::Xlsx => {
            std::io::copy(&mut reader, &mut std::io::sink())
                .map_err(|e| unreadable(e.to_string()))?;
            let sheet = source.sheet.as_ref().map(|s| s.get_ref().as_str());
            crate::definitions::read_sheet(path, sheet, &|_| crate::definitions::CellText::Plain)
                .map_err(unreadable)?
                .data_rows() as u64
        }
        SourceFormat::Parquet => {
            std::io::copy(&mut reader, &mut std::io::sink())
                .map_err(|e| unreadable(e.to_string()))?;
            parquet_rows(path).map_err(|e| IngestError::Parquet {
                file: display.clone(),
                message: e,
            })?
        }
    };
    // The CSV reader may stop before the end (it does not read past the last record).
    std::io::copy(&mut reader, &mut std::io::sink()).map_err(|e| unreadable(e.to_string()))?;
    let file = InputFile {
        path: path.to_path_buf(),
        read_path: decoded
            .as_ref()
            .map(|d| d.to_path_buf())
            .unwrap_or_else(|| path.to_path_buf()),
        _temp_copy: decoded,
        display,
        size: reader.bytes,
        blake3: reader.hasher.finalize().to_hex().to_string(),
        rows,
        modified,
        line_shifts: reader.lines.map(|l| l.shifts).unwrap_or_default(),
        object: None,
    };
    // Bytes appended while hashing: size and hash would not match what the scan reads.
    if file.size != size {
        return Err(IngestError::Changed { file: file.display });
    }
    file.check_unchanged()?;
    Ok(file)
}

/// The rows of a CSV in an encoding other than UTF-8 (declared, or the dialect's fallback for a
/// file that is not UTF-8 already): the whole file is decoded once into a UTF-8 temporary copy,
/// returned for the scan to read instead of the file (none when it was UTF-8 after all).
fn decoded_csv_rows(
    reader: &mut impl Read,
    path: &Path,
    display: &str,
    source: &SourceDef,
) -> Result<(u64, Option<std::sync::Arc<tempfile::TempPath>>), IngestError> {
    let unreadable = |message: String| IngestError::Unreadable {
        file: display.to_string(),
        message,
    };
    let delimiter = source.delimiter_byte();
    let mut bytes = Vec::new();
    reader
        .read_to_end(&mut bytes)
        .map_err(|e| unreadable(e.to_string()))?;
    let encoding = source.text_encoding().or_else(|| {
        std::str::from_utf8(&bytes)
            .is_err()
            .then(|| source.fallback_encoding())
            .flatten()
    });
    let Some(encoding) = encoding else {
        return Ok((csv_rows(bytes.as_slice(), path, display, delimiter)?, None));
    };
    let (text, _, _) = encoding.decode(&bytes);
    let mut copy = tempfile::Builder::new()
        .prefix("styrkort-")
        .suffix(".csv")
        .tempfile()
        .map_err(|e| unreadable(format!("cannot write its UTF-8 copy: {e}")))?;
    std::io::Write::write_all(&mut copy, text.as_bytes())
        .map_err(|e| unreadable(format!("cannot write its UTF-8 copy: {e}")))?;
    let rows = csv_rows(text.as_bytes(), copy.path(), display, delimiter)?;
    Ok((rows, Some(std::sync::Arc::new(copy.into_temp_path()))))
}

/// A CSV whose first 64 KiB hold a NUL byte is not text: refused at once, before a reader
/// spends minutes on gigabytes of one endless field.
fn refuse_binary(path: &Path, display: &str) -> Result<(), IngestError> {
    let mut head = vec![0u8; 64 * 1024];
    let mut file = File::open(path).map_err(|e| IngestError::Unreadable {
        file: display.to_string(),
        message: e.to_string(),
    })?;
    let mut filled = 0;
    while filled < head.len() {
        match file.read(&mut head[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) => {
                return Err(IngestError::Unreadable {
                    file: display.to_string(),
                    message: e.to_string(),
                });
            }
        }
    }
    match head[..filled].iter().position(|&b| b == 0) {
        Some(at) => Err(IngestError::NotText {
            file: display.to_string(),
            offset: at + 1,
        }),
        None => Ok(()),
    }
}

/// Counts records, failing on the first ragged row or non-UTF-8 field with its line.
fn csv_rows<R: Read>(
    reader: R,
    path: &Path,
    display: &str,
    delimiter: u8,
) -> Result<u64, IngestError> {
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .delimiter(delimiter)
        .from_reader(reader);
    let header_fields = match csv.headers() {
        Ok(h) => {
            // One header field holding another separator: the file uses that one.
            if h.len() == 1 {
                for (sep, name) in [(b';', ";"), (b'\t', "\\t"), (b',', ",")] {
                    if sep != delimiter && h[0].as_bytes().contains(&sep) {
                        return Err(IngestError::Delimiter {
                            file: display.to_string(),
                            found: name.to_string(),
                        });
                    }
                }
            }
            h.len()
        }
        Err(e) => return Err(csv_error(path, display, e, 0)),
    };
    let mut record = csv::StringRecord::new();
    let mut rows = 0u64;
    loop {
        match csv.read_record(&mut record) {
            Ok(true) => rows += 1,
            Ok(false) => return Ok(rows),
            Err(e) => return Err(csv_error(path, display, e, header_fields)),
        }
    }
}

/// The physical line (1-based) where the record at `pos` starts: counted from the bytes, as the
/// reader's own count drifts after a quoted field that spans lines. Only read on the error path.
fn physical_line(path: &Path, pos: Option<&csv::Position>) -> u64 {
    let Some(pos) = pos else { return 0 };
    let Ok(file) = File::open(path) else {
        return pos.line();
    };
    let mut head = Vec::new();
    // The record's first bytes too: its position may sit on the line break before it.
    if file.take(pos.byte() + 4).read_to_end(&mut head).is_err() {
        return pos.line();
    }
    let mut at = pos.byte() as usize;
    while matches!(head.get(at), Some(b'\r' | b'\n')) {
        at += 1;
    }
    1 + memchr::memchr_iter(b'\n', &head[..at.min(head.len())]).count() as u64
}

fn csv_error(path: &Path, display: &str, e: csv::Error, header_fields: usize) -> IngestError {
    let line = physical_line(path, e.position());
    match e.kind() {
        csv::ErrorKind::UnequalLengths { pos, len, .. } => IngestError::Ragged {
            file: display.to_string(),
            line: pos
                .as_ref()
                .map(|p| physical_line(path, Some(p)))
                .unwrap_or(line),
            found: *len as usize,
            expected: header_fields,
        },
        csv::ErrorKind::Utf8 { pos, err } => IngestError::NotUtf8 {
            file: display.to_string(),
            line: pos
                .as_ref()
                .map(|p| physical_line(path, Some(p)))
                .unwrap_or(line),
            field: err.field() + 1,
        },
        _ => IngestError::Unreadable {
            file: display.to_string(),
            message: format!("line {line}: {e}"),
        },
    }
}

/// Rows from the Parquet footer, without reading the data.
fn parquet_rows(path: &Path) -> Result<u64, String> {
    use polars::prelude::*;
    let file = File::open(path).map_err(|e| e.to_string())?;
    let mut reader = ParquetReader::new(file);
    reader
        .num_rows()
        .map(|n| n as u64)
        .map_err(|e| e.to_string().trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_newlines_shift_the_lines_of_later_records() {
        let text = "a,b\r\n1,\"two\r\nlines\"\r\n\r\n3,\"say \"\"hi\"\"\"\r\n4,\"x\ny\nz\"\n5,e\n";
        let mut lines = RecordLines::default();
        // Fed in pieces, as a reader delivers it.
        for chunk in text.as_bytes().chunks(3) {
            lines.feed(chunk);
        }
        // Row 0 (`1,"two…`) is on line 2; row 1 is the blank line 4; row 2 (`3,…`) line 5;
        // row 3 (`4,"x…`) line 6; row 4 (`5,e`) line 9.
        let lines_of: Vec<u64> = (0..5).map(|r| line_of_row(&lines.shifts, r)).collect();
        assert_eq!(lines_of, [2, 4, 5, 6, 9]);
    }
}
