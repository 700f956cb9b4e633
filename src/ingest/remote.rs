//! Parquet sources in an S3-compatible object store (`path = "s3://bucket/exports/*.parquet"`),
//! for the SQL engines: the data stays where it is and DataFusion or the Ballista executors read
//! it. The client only lists the objects, reads each one's Parquet footer (a ranged read of the
//! file's tail: its schema and row count) and fingerprints it by what the store reports — URL,
//! ETag, size and modification time — instead of downloading it to hash its bytes.
//!
//! The polars plan of a source is still the one definition the SQL is printed from, so each
//! object gets a local *stand-in*: a Parquet file with no rows and exactly the object's footer
//! schema, which the plan scans for its schema. The polars engine refuses to run a source whose
//! files are stand-ins (it would read no rows).
//!
//! Connection settings come from the standard `AWS_*` variables (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT_URL` for MinIO and other S3-compatible
//! stores, `AWS_ALLOW_HTTP=true` for a plain-http endpoint), read where each part runs: the
//! client here, and every Ballista executor and the scheduler on their machines.

use std::sync::Arc;

use datafusion::parquet::file::FOOTER_SIZE;
use datafusion::parquet::file::metadata::{FooterTail, ParquetMetaData, ParquetMetaDataReader};
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::parquet::file::writer::SerializedFileWriter;
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use url::Url;

use super::IngestError;
use super::files::{InputFile, StoredObject};
use crate::definitions::SourceDef;

/// An object URL's bucket and key: `s3://bucket/key` → `("bucket", "key")`. Split by hand,
/// not by a URL parser, because a key pattern's `?` and `[` are glob characters here.
pub(crate) fn split(url: &str) -> Result<(&str, &str), String> {
    let (scheme, rest) = url.split_once("://").ok_or("not a URL")?;
    if scheme != "s3" {
        return Err(format!(
            "the '{scheme}' scheme is not supported (object-store sources are s3://bucket/key)"
        ));
    }
    match rest.split_once('/') {
        Some((bucket, key)) if !bucket.is_empty() => Ok((bucket, key)),
        _ => Err("expected s3://bucket/key".to_string()),
    }
}

/// The store of a bucket, configured from the `AWS_*` environment variables.
pub(crate) fn store_for(bucket: &str) -> Result<Arc<dyn ObjectStore>, String> {
    let store = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .build()
        .map_err(|e| e.to_string())?;
    Ok(Arc::new(store))
}

/// The bucket's root URL (`s3://bucket`), under which a DataFusion session registers the store.
pub(crate) fn bucket_url(bucket: &str) -> Result<Url, String> {
    Url::parse(&format!("s3://{bucket}")).map_err(|e| e.to_string())
}

fn block_on<F: std::future::Future>(f: F) -> Result<F::Output, String> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?
        .block_on(f))
}

/// The objects matching a source's URL pattern, sorted by key, each with its footer read and a
/// local stand-in written.
pub(crate) fn expand(source: &SourceDef, pattern: &str) -> Result<Vec<InputFile>, IngestError> {
    let name = source.name.get_ref().clone();
    let unreadable = |message: String| IngestError::Unreadable {
        file: pattern.to_string(),
        message,
    };
    let bad_pattern = |message: String| IngestError::BadPattern {
        source_name: name.clone(),
        pattern: pattern.to_string(),
        message,
    };
    let (bucket, key_pattern) = split(pattern).map_err(bad_pattern)?;
    let store = store_for(bucket).map_err(unreadable)?;
    let matcher = glob::Pattern::new(key_pattern).map_err(|e| bad_pattern(e.to_string()))?;
    // List from the folder before the first wildcard, then match the keys as a path glob would
    // (a `*` does not cross a `/`).
    let literal = key_pattern
        .find(['*', '?', '['])
        .map_or(key_pattern, |at| &key_pattern[..at]);
    let prefix = literal.rfind('/').map(|at| &literal[..at]).unwrap_or("");
    let options = glob::MatchOptions {
        require_literal_separator: true,
        ..Default::default()
    };
    // One runtime for the source: the listing, then every object's footer read concurrently.
    let listed = block_on(async {
        let prefix = (!prefix.is_empty()).then(|| ObjectPath::from(prefix));
        let mut objects: Vec<ObjectMeta> = store
            .list(prefix.as_ref())
            .try_collect::<Vec<_>>()
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter(|o| matcher.matches_with(o.location.as_ref(), options))
            .collect();
        objects.sort_by(|a, b| a.location.cmp(&b.location));
        let footers =
            futures::future::join_all(objects.iter().map(|o| read_footer(&store, o))).await;
        Ok::<_, String>(objects.into_iter().zip(footers).collect::<Vec<_>>())
    })
    .map_err(unreadable)?
    .map_err(unreadable)?;
    if listed.is_empty() {
        return Err(IngestError::NoFiles {
            source_name: name,
            pattern: pattern.to_string(),
        });
    }
    listed
        .into_iter()
        .map(|(meta, footer)| {
            let file = inspect(bucket, meta, footer)?;
            if file.rows == 0 && !source.allow_empty {
                return Err(IngestError::NoRows {
                    file: file.display,
                    source_name: name.clone(),
                });
            }
            Ok(file)
        })
        .collect()
}

/// One object, its footer read: its stand-in written, its fingerprint taken.
fn inspect(
    bucket: &str,
    meta: ObjectMeta,
    footer: Result<ParquetMetaData, String>,
) -> Result<InputFile, IngestError> {
    let url = format!("s3://{bucket}/{}", meta.location);
    if meta.size == 0 {
        return Err(IngestError::EmptyFile { file: url });
    }
    let not_parquet = |message: String| IngestError::Parquet {
        file: url.clone(),
        message,
    };
    let footer = footer.map_err(not_parquet)?;
    let stand_in = stand_in(&footer).map_err(|e| IngestError::Unreadable {
        file: url.clone(),
        message: format!("cannot write its local stand-in: {e}"),
    })?;
    let identity = format!(
        "{url}\n{}\n{}\n{}\n{}",
        meta.e_tag.as_deref().unwrap_or(""),
        meta.version.as_deref().unwrap_or(""),
        meta.size,
        meta.last_modified.to_rfc3339()
    );
    Ok(InputFile::stored(
        StoredObject {
            url,
            e_tag: meta.e_tag,
            version: meta.version,
        },
        stand_in,
        meta.size,
        blake3::hash(identity.as_bytes()).to_hex().to_string(),
        footer.file_metadata().num_rows().max(0) as u64,
        std::time::SystemTime::from(meta.last_modified),
    ))
}

/// The object's Parquet footer, from two ranged reads of its tail (the 8-byte tail says how long
/// the footer is).
async fn read_footer(
    store: &Arc<dyn ObjectStore>,
    meta: &ObjectMeta,
) -> Result<ParquetMetaData, String> {
    let tail_size = FOOTER_SIZE as u64;
    if meta.size < tail_size {
        return Err(format!("{} bytes is too short for Parquet", meta.size));
    }
    let tail = store
        .get_range(&meta.location, meta.size - tail_size..meta.size)
        .await
        .map_err(|e| e.to_string())?;
    let tail: [u8; FOOTER_SIZE] = tail[..].try_into().map_err(|_| "short read of the tail")?;
    let tail = FooterTail::try_new(&tail).map_err(|e| e.to_string())?;
    let length = tail.metadata_length() as u64;
    if length + tail_size > meta.size {
        return Err("the footer is longer than the file".to_string());
    }
    let end = meta.size - tail_size;
    let footer = store
        .get_range(&meta.location, end - length..end)
        .await
        .map_err(|e| e.to_string())?;
    ParquetMetaDataReader::decode_metadata(&footer).map_err(|e| e.to_string())
}

/// A local Parquet file with no rows and the footer's schema and key-value metadata (which
/// carries the Arrow schema), so a scan of it sees the same columns and types as the object.
fn stand_in(footer: &ParquetMetaData) -> Result<tempfile::TempPath, String> {
    let file = tempfile::Builder::new()
        .prefix("styrkort-stand-in-")
        .suffix(".parquet")
        .tempfile()
        .map_err(|e| e.to_string())?;
    let meta = footer.file_metadata();
    let properties = WriterProperties::builder()
        .set_key_value_metadata(meta.key_value_metadata().cloned())
        .build();
    let writer = SerializedFileWriter::new(
        file.as_file().try_clone().map_err(|e| e.to_string())?,
        meta.schema_descr().root_schema_ptr(),
        Arc::new(properties),
    )
    .map_err(|e| e.to_string())?;
    writer.close().map_err(|e| e.to_string())?;
    Ok(file.into_temp_path())
}

/// Whether the object still is what was fingerprinted (same ETag, version and size).
pub(crate) fn unchanged(object: &StoredObject, size: u64) -> Result<bool, String> {
    let (bucket, key) = split(&object.url)?;
    let store = store_for(bucket)?;
    let location = ObjectPath::from(key);
    let now = block_on(async { store.head(&location).await })?.map_err(|e| e.to_string())?;
    Ok(now.size == size && now.e_tag == object.e_tag && now.version == object.version)
}
