//! The engines agree: phase 1 on polars, on DataFusion in this process, and on a Ballista
//! cluster (a scheduler and two executors started by the test, on 127.0.0.1) publish the same
//! tables for the synthetic municipality in Parquet — every published table, keys and
//! statuses identical, numbers within 1e-12 relative. And a cluster that loses an executor
//! mid-run either finishes right or fails naming the engine, with nothing half-published.
#![cfg(feature = "distributed")]

mod common;

use std::path::{Path, PathBuf};

use polars::prelude::*;
use styrkort::compute::Engine;
use styrkort::compute::cluster::LocalCluster;
use styrkort::generate::{DataFormat, write_pipeline_dir};

const AS_OF: &str = "2025-01-01";

fn municipality(scale: u32) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    write_pipeline_dir(dir.path(), scale, 1, DataFormat::Parquet, false).unwrap();
    let pipeline = dir.path().join("pipeline.toml");
    (dir, pipeline)
}

fn run(pipeline: &Path, out: &Path, engine: Option<Engine>) -> Result<PathBuf, styrkort::Error> {
    let options = styrkort::RunOptions {
        engine,
        ..styrkort::RunOptions::new(Some(AS_OF.parse().unwrap()), out.to_path_buf())
    };
    styrkort::run(pipeline, &options).map(|s| s.run_dir)
}

/// Every Parquet table of two published runs: same columns and rows in the same order; text,
/// integers, dates and booleans identical; floats within 1e-12 relative (summing in another
/// order may change the last bit). Returns how many tables were byte-identical.
fn assert_same_tables(a: &Path, b: &Path) -> usize {
    let mut names: Vec<String> = std::fs::read_dir(a)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".parquet"))
        .collect();
    names.sort();
    assert!(names.len() >= 5, "{names:?}");
    let mut identical = 0;
    for name in &names {
        let (pa, pb) = (a.join(name), b.join(name));
        if std::fs::read(&pa).unwrap() == std::fs::read(&pb).unwrap() {
            identical += 1;
            continue;
        }
        let (fa, fb) = (common::read_parquet(&pa), common::read_parquet(&pb));
        assert_eq!(fa.get_column_names(), fb.get_column_names(), "{name}");
        assert_eq!(fa.height(), fb.height(), "{name}");
        for (ca, cb) in fa.get_columns().iter().zip(fb.get_columns()) {
            if ca.dtype().is_float() {
                let (xa, xb) = (ca.f64().unwrap(), cb.f64().unwrap());
                for (k, (x, y)) in xa.iter().zip(xb.iter()).enumerate() {
                    match (x, y) {
                        (Some(x), Some(y)) => assert!(
                            x == y || (x - y).abs() <= 1e-12 * x.abs().max(y.abs()),
                            "{name} column {} row {k}: {x} vs {y}",
                            ca.name()
                        ),
                        (x, y) => assert!(
                            x.is_none() && y.is_none(),
                            "{name} column {} row {k}: {x:?} vs {y:?}",
                            ca.name()
                        ),
                    }
                }
            } else {
                assert!(
                    ca.as_materialized_series()
                        .equals_missing(cb.as_materialized_series()),
                    "{name} column {} differs",
                    ca.name()
                );
            }
        }
    }
    identical
}

#[test]
fn polars_datafusion_and_a_ballista_cluster_publish_the_same_tables() {
    let cluster = LocalCluster::start(2, 1).unwrap();
    let ballista = Engine::parse(&cluster.url()).unwrap();
    for scale in [1, 3] {
        let (dir, pipeline) = municipality(scale);
        let polars = run(&pipeline, &dir.path().join("polars"), None).unwrap();
        let datafusion = run(
            &pipeline,
            &dir.path().join("datafusion"),
            Some(Engine::DataFusion),
        )
        .unwrap();
        let on_cluster = run(
            &pipeline,
            &dir.path().join("ballista"),
            Some(ballista.clone()),
        )
        .unwrap_or_else(|e| panic!("scale {scale} on {ballista}: {e}"));
        // The generator plants bad rows: the rejected rows, found by SQL, must be there.
        let rejected = common::read_parquet(&polars.join("rejected_rows.parquet"));
        assert!(
            rejected.height() > 0,
            "scale {scale}: no rejected rows to compare"
        );
        let same = assert_same_tables(&polars, &datafusion);
        let same_on_cluster = assert_same_tables(&polars, &on_cluster);
        eprintln!(
            "scale {scale}: byte-identical tables: datafusion {same}, ballista {same_on_cluster}"
        );
    }
}

#[test]
fn an_executor_lost_mid_run_fails_the_run_or_is_survived_never_half_published() {
    let (dir, pipeline) = municipality(3);
    let expected = run(&pipeline, &dir.path().join("polars"), None).unwrap();
    // A short timeout: a cluster that stops answering must fail the run, not hang it.
    let text = std::fs::read_to_string(&pipeline).unwrap();
    std::fs::write(
        &pipeline,
        format!("{text}\n[engine]\ntimeout_seconds = 20\n"),
    )
    .unwrap();
    let mut cluster = LocalCluster::start(2, 1).unwrap();
    let engine = Engine::parse(&cluster.url()).unwrap();
    let out = dir.path().join("ballista");
    let outcome = std::thread::scope(|s| {
        let running = s.spawn(|| run(&pipeline, &out, Some(engine.clone())));
        std::thread::sleep(std::time::Duration::from_millis(700));
        assert!(
            !running.is_finished(),
            "the run ended before the executor was lost"
        );
        cluster.kill_executor(1);
        running.join().unwrap()
    });
    match outcome {
        Ok(run_dir) => {
            assert_same_tables(&expected, &run_dir);
        }
        Err(e) => {
            let message = e.to_string();
            assert!(message.contains(&engine.to_string()), "{message}");
            let published: Vec<_> = std::fs::read_dir(out.join("uddevalla"))
                .map(|d| d.map(|e| e.unwrap().file_name()).collect())
                .unwrap_or_default();
            assert!(
                published
                    .iter()
                    .all(|n| !n.to_string_lossy().starts_with("as_of=") && n != "latest"),
                "a failed run published {published:?}"
            );
        }
    }
}
