//! The engines agree: phase 1 on polars, on DataFusion in this process, and on a Ballista
//! cluster (a scheduler and two executors started by the test, on 127.0.0.1) publish the same
//! tables for the synthetic municipality in Parquet — every published table, keys and
//! statuses identical, numbers within 1e-12 relative. And a cluster that loses an executor
//! mid-run either finishes right or fails naming the engine, with nothing half-published.
#![cfg(feature = "distributed")]

use crate::common;

use std::path::{Path, PathBuf};

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
    run_as_of(pipeline, out, engine, AS_OF)
}

fn run_as_of(
    pipeline: &Path,
    out: &Path,
    engine: Option<Engine>,
    as_of: &str,
) -> Result<PathBuf, styrkort::Error> {
    let options = styrkort::RunOptions {
        engine,
        ..styrkort::RunOptions::new(Some(as_of.parse().unwrap()), out.to_path_buf())
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
        for (ca, cb) in fa.columns().iter().zip(fb.columns()) {
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
            eprintln!("the run survived the lost executor");
            assert_same_tables(&expected, &run_dir);
        }
        Err(e) => {
            let message = e.to_string();
            eprintln!("the run failed: {message}");
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

/// Where SQL and polars part ways, both engines give the README's semantics: a sum over rows
/// whose values are all null is null (SQL's empty sum, not polars' 0), an even count's median is
/// the mean of the middle two, rows that exist but do not pass the filter give `n_rows = 0` (and
/// 0 with `when_no_rows = "zero"`), an average over nulls is null. Values worked out by hand.
#[test]
fn empty_sums_even_medians_and_filtered_out_rows_read_alike_on_both_engines() {
    use common::{Fixture, HR_SOURCE, assert_close, cell, indicator, read_parquet};
    use polars::prelude::*;

    let f = Fixture::new();
    let rows = df!(
        "month" => ["2024-01-01", "2024-01-01", "2024-01-01", "2024-01-01", "2024-02-01"],
        "unit" => ["A1", "A1", "A2", "A2", "B1"],
        "person" => ["p1", "p2", "p3", "p4", "p5"],
        "gender" => ["K", "M", "K", "K", "M"],
        "hours" => [Some(10.0), Some(20.0), None, None, Some(7.0)],
        "sick" => [1i64, 3, 2, 4, 0],
    )
    .unwrap();
    common::write_hr_parquet(&f.path("hr.parquet"), rows);
    let source = HR_SOURCE
        .replace("hr.csv", "hr.parquet")
        .replace("format = \"csv\"", "format = \"parquet\"");
    let month = "grains = [\"month\"]";
    f.pipeline(
        &(source
            + &indicator("hours_median", &format!("numerator = \"median(hours)\"\n{month}"))
            + &indicator("hours_sum", &format!("numerator = \"sum(hours)\"\n{month}"))
            + &indicator("hours_avg", &format!("numerator = \"avg(hours)\"\n{month}"))
            + &indicator(
                "x_sick",
                &format!("numerator = \"sum(sick)\"\nfilter = \"gender = 'X'\"\n{month}"),
            )
            + &indicator(
                "x_sick_zero",
                &format!(
                    "numerator = \"sum(sick)\"\nfilter = \"gender = 'X'\"\nwhen_no_rows = \"zero\"\n{month}"
                ),
            )
            + &indicator(
                "people",
                &format!("numerator = \"count(distinct person)\"\n{month}"),
            )
            // A1 has women and men: by gender, A1 is in two segments; the total counts it once.
            + &indicator(
                "units_by_gender",
                &format!("numerator = \"count(distinct unit)\"\nbreakdown = [\"gender\"]\n{month}"),
            )),
    );
    let pipeline = f.path("pipeline.toml");
    let mut published = Vec::new();
    for engine in [None, Some(styrkort::compute::Engine::DataFusion)] {
        let out = f.path(&format!("out-{}", published.len()));
        let run_dir = run_as_of(&pipeline, &out, engine, "2024-03-01").unwrap();
        let df = read_parquet(&run_dir.join("indicator_values.parquet"));
        let at = |id: &str, unit: &str, period: &str| cell(&df, id, unit, "month", period, "total");
        assert_close(at("hours_median", "A1", "2024-01").value, 15.0);
        assert_close(at("hours_median", "K", "2024-01").value, 15.0);
        assert_eq!(at("hours_median", "A2", "2024-01").value, None);
        assert_eq!(at("hours_median", "A2", "2024-01").n_rows, 2);
        assert_close(at("hours_sum", "K", "2024-01").value, 30.0);
        assert_eq!(at("hours_sum", "A2", "2024-01").numerator, None);
        assert_eq!(at("hours_sum", "A2", "2024-01").n_rows, 2);
        assert_eq!(at("hours_avg", "A2", "2024-01").value, None);
        assert_close(at("hours_avg", "A", "2024-01").value, 15.0);
        assert_eq!(at("x_sick", "A1", "2024-01").n_rows, 0);
        assert_eq!(at("x_sick", "A1", "2024-01").value, None);
        assert_close(at("x_sick_zero", "A1", "2024-01").value, 0.0);
        assert_close(at("people", "K", "2024-01").value, 4.0);
        assert_close(at("people", "K", "2024-02").value, 1.0);
        let by = |segment: &str| cell(&df, "units_by_gender", "K", "month", "2024-01", segment);
        assert_close(by("total").value, 2.0);
        assert_close(by("gender=K").value, 2.0);
        assert_close(by("gender=M").value, 1.0);
        published.push(run_dir);
    }
    assert_same_tables(&published[0], &published[1]);
}

/// Two Parquet files of one source: the first has no empty cell (its footer shows no row can be
/// blank, so polars leaves that check out for it), the second has a blank row and a row without
/// a date. DataFusion checks all files with one statement, so it keeps the blank-row check: both
/// engines reject the same two rows and publish the same tables.
#[test]
fn a_blank_row_in_a_later_parquet_file_is_not_a_row_on_either_engine() {
    use common::{Fixture, assert_close, cell, read_parquet};
    use polars::prelude::*;

    let f = Fixture::new();
    let write = |name: &str, rows: DataFrame| common::write_hr_parquet(&f.path(name), rows);
    write(
        "hr_a.parquet",
        df!(
            "month" => ["2024-01-01", "2024-01-01", "2024-02-01"],
            "unit" => ["A1", "ZZ", "A1"],
            "person" => ["p1", "p2", "p1"],
            "gender" => ["K", "M", "K"],
            "hours" => [100.0, 10.0, 50.0],
            "sick" => [5i64, 1, 1],
        )
        .unwrap(),
    );
    write(
        "hr_b.parquet",
        df!(
            "month" => [Some("2024-01-01"), None, None],
            "unit" => [Some("A2"), None, Some("A1")],
            "person" => [Some("p3"), None, Some("p4")],
            "gender" => [Some("M"), None, Some("K")],
            "hours" => [Some(30.0), None, Some(70.0)],
            "sick" => [Some(2i64), None, Some(1)],
        )
        .unwrap(),
    );
    let published = hours_on_both_engines(&f, "hr_*.parquet");
    for (name, run_dir) in &published {
        let rejected = read_parquet(&run_dir.join("rejected_rows.parquet"));
        assert_eq!(rejected.height(), 2, "{name}: {rejected}");
        let df = read_parquet(&run_dir.join("indicator_values.parquet"));
        let at = |unit: &str, period: &str| cell(&df, "hours", unit, "month", period, "total");
        assert_close(at("A", "2024-01").value, 130.0);
        assert_close(at("A1", "2024-02").value, 50.0);
    }
    assert_same_tables(&published[0].1, &published[1].1);
}

/// `sum(hours)` by month over the HR rows in the Parquet files `files` (any share of rows may
/// be rejected), run as of 2024-03-01 on polars and on DataFusion: each engine's name and run.
fn hours_on_both_engines(f: &common::Fixture, files: &str) -> Vec<(String, PathBuf)> {
    let source = common::HR_SOURCE
        .replace("hr.csv", files)
        .replace("format = \"csv\"", "format = \"parquet\"")
        .replace(
            "org_column = \"unit\"",
            "org_column = \"unit\"\nmax_rejected_share = 1",
        );
    let hours = common::indicator("hours", "numerator = \"sum(hours)\"\ngrains = [\"month\"]");
    f.pipeline(&(source + &hours));
    let pipeline = f.path("pipeline.toml");
    [None, Some(styrkort::compute::Engine::DataFusion)]
        .into_iter()
        .enumerate()
        .map(|(k, engine)| {
            let out = f.path(&format!("out-{k}"));
            let name = format!("{engine:?}");
            (
                name,
                run_as_of(&pipeline, &out, engine, "2024-03-01").unwrap(),
            )
        })
        .collect()
}

/// NaN and ±infinity in a Parquet float column are not measurements: each is a rejected row
/// naming its value, on polars and on DataFusion alike, and the finite rows add up.
#[test]
fn nan_and_infinite_parquet_floats_are_rejected_rows_on_either_engine() {
    use common::{Fixture, assert_close, cell, read_parquet, strings};
    use polars::prelude::*;

    let f = Fixture::new();
    common::write_hr_parquet(
        &f.path("hr.parquet"),
        df!(
            "month" => ["2024-01-01", "2024-01-01", "2024-01-01", "2024-01-01", "2024-02-01"],
            "unit" => ["A1", "A1", "A2", "A2", "A1"],
            "person" => ["p1", "p2", "p3", "p4", "p1"],
            "gender" => ["K", "M", "M", "K", "K"],
            "hours" => [100.0, f64::NAN, f64::INFINITY, 30.0, f64::NEG_INFINITY],
            "sick" => [5i64, 1, 1, 2, 1],
        )
        .unwrap(),
    );
    let published = hours_on_both_engines(&f, "hr.parquet");
    for (name, run_dir) in &published {
        let rejected = read_parquet(&run_dir.join("rejected_rows.parquet"));
        let mut reasons = strings(&rejected, "reason");
        reasons.sort();
        assert_eq!(
            reasons,
            [
                "column 'hours': expected float, found '-inf'",
                "column 'hours': expected float, found 'NaN'",
                "column 'hours': expected float, found 'inf'",
            ],
            "{name}"
        );
        let df = read_parquet(&run_dir.join("indicator_values.parquet"));
        let at = |unit: &str, period: &str| cell(&df, "hours", unit, "month", period, "total");
        // 100 (A1) + 30 (A2); A1's only February row is rejected.
        assert_close(at("A", "2024-01").value, 130.0);
        assert_eq!(at("A1", "2024-02").n_rows, 0, "{name}");
    }
    assert_same_tables(&published[0].1, &published[1].1);
}

/// A SQL Server export (DECIMAL hours, a TIMESTAMP month with a time of day, INTEGER cost
/// centres through a code mapping) and the CSV fixtures: the same tables on DataFusion. The CSV
/// sources are read by polars on every engine, and `explain` says so.
#[test]
fn sql_server_parquet_and_the_csv_fixtures_give_the_same_tables_on_datafusion() {
    use common::{Fixture, indicator};
    let f = Fixture::new();
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let source = common::sql_server_hr_source(&f);
    f.pipeline(
        &(source
            + &indicator(
                "sick_pct",
                "numerator = \"sum(sick)\"\ndenominator = \"sum(hours)\"\nscale = 100\ngrains = [\"month\", \"ytd\"]\nbreakdown = [\"gender\"]",
            )),
    );
    let explained = styrkort::explain(
        &f.path("pipeline.toml"),
        None,
        Some(Engine::DataFusion),
        false,
    )
    .unwrap();
    assert_eq!(explained[0].engine, "datafusion");
    let verbose = styrkort::explain(
        &f.path("pipeline.toml"),
        None,
        Some(Engine::DataFusion),
        true,
    )
    .unwrap();
    assert!(
        verbose[0].sql[0].contains("GROUP BY GROUPING SETS") && verbose[0].polars_plan.is_empty(),
        "{:?}",
        verbose[0].sql
    );
    let polars = run(&f.path("pipeline.toml"), &f.path("p"), None).unwrap();
    let datafusion = run(
        &f.path("pipeline.toml"),
        &f.path("d"),
        Some(Engine::DataFusion),
    )
    .unwrap();
    assert_same_tables(&polars, &datafusion);

    let fixtures = repo.join("pipelines/uddevalla.toml");
    let explained = styrkort::explain(&fixtures, None, Some(Engine::DataFusion), false).unwrap();
    assert!(
        explained
            .iter()
            .all(|s| s.engine == "polars — CSV sources are read by polars"),
        "{:?}",
        explained.iter().map(|s| &s.engine).collect::<Vec<_>>()
    );
    let out = tempfile::tempdir().unwrap();
    let polars = run(&fixtures, &out.path().join("p"), None).unwrap();
    let datafusion = run(&fixtures, &out.path().join("d"), Some(Engine::DataFusion)).unwrap();
    assert_eq!(assert_same_tables(&polars, &datafusion), 10);
}

/// As a scheduler runs it: `styrkort cluster` in one process, `styrkort run --engine
/// ballista://…` in another (exit 0); a scheduler nobody listens at fails the run with exit 1,
/// a message naming the engine, and nothing published.
#[test]
fn the_cli_runs_on_a_cluster_process_and_exits_1_when_the_cluster_is_gone() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let bin = env!("CARGO_BIN_EXE_styrkort");
    let (dir, pipeline) = municipality(1);
    let mut cluster = Command::new(bin)
        .args(["cluster", "--executors", "2"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut url = String::new();
    BufReader::new(cluster.stdout.take().unwrap())
        .read_line(&mut url)
        .unwrap();
    let url = url.trim().to_string();
    assert!(url.starts_with("ballista://127.0.0.1:"), "{url}");
    let run = |engine: &str, out: &str| {
        Command::new(bin)
            .args(["run", pipeline.to_str().unwrap(), "--as-of", AS_OF, "--out"])
            .arg(dir.path().join(out))
            .args(["--engine", engine])
            .output()
            .unwrap()
    };
    let ok = run(&url, "on-cluster");
    cluster.kill().unwrap();
    cluster.wait().unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let polars = run("polars", "polars");
    assert!(polars.status.success());
    assert_same_tables(
        &dir.path().join("polars/uddevalla/latest"),
        &dir.path().join("on-cluster/uddevalla/latest"),
    );

    let gone = run(&url, "gone");
    assert_eq!(gone.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&gone.stderr);
    assert!(stderr.contains(&format!("engine {url}")), "{stderr}");
    assert!(!dir.path().join("gone/uddevalla/latest").exists());
}

/// An S3-compatible store on 127.0.0.1: moto's server (`pip install "moto[server]"`; `.ci/run`
/// installs it into a venv and names it in `STYRKORT_MOTO_SERVER`). Stopped when dropped.
struct S3Server {
    child: std::process::Child,
    endpoint: String,
}

impl S3Server {
    fn start() -> S3Server {
        let program = std::env::var("STYRKORT_MOTO_SERVER").unwrap_or("moto_server".to_string());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {program} ({e}): the object-store test needs moto's S3 server — \
                     `python3 -m venv V && V/bin/pip install \"moto[server]\"`, then \
                     STYRKORT_MOTO_SERVER=V/bin/moto_server (.ci/run does this)"
                )
            });
        let server = S3Server {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return server;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("{program} did not listen on port {port} within 10 s");
    }

    /// The `AWS_*` variables every styrkort process of the test gets.
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", "test".to_string()),
            ("AWS_SECRET_ACCESS_KEY", "test".to_string()),
            ("AWS_REGION", "us-east-1".to_string()),
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ALLOW_HTTP", "true".to_string()),
        ]
    }

    /// Creates a bucket (moto takes an unsigned `PUT /bucket`; object_store has no such call).
    fn create_bucket(&self, bucket: &str) {
        use std::io::{Read, Write};
        let host = self.endpoint.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(host).unwrap();
        write!(
            stream,
            "PUT /{bucket} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }

    fn put(&self, bucket: &str, key: &str, bytes: Vec<u8>) {
        use object_store::ObjectStoreExt;
        let store = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_endpoint(&self.endpoint)
            .with_allow_http(true)
            .with_access_key_id("test")
            .with_secret_access_key("test")
            .with_region("us-east-1")
            .build()
            .unwrap();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(store.put(&key.into(), bytes.into()))
            .unwrap();
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Rows of a Parquet file split in two files at `at`.
fn split_parquet(file: &Path, at: i64, into: &Path) {
    use polars::prelude::*;
    let df = common::read_parquet(file);
    std::fs::create_dir_all(into).unwrap();
    for (k, mut part) in [df.slice(0, at as usize), df.slice(at, usize::MAX)]
        .into_iter()
        .enumerate()
    {
        let f = std::fs::File::create(into.join(format!("part-{k}.parquet"))).unwrap();
        ParquetWriter::new(f).finish(&mut part).unwrap();
    }
}

#[test]
fn s3_sources_run_on_datafusion_and_a_cluster_and_polars_refuses_them() {
    use std::process::Command;
    let bin = env!("CARGO_BIN_EXE_styrkort");
    let (dir, pipeline) = municipality(1);
    let d = dir.path();
    // hr_time in two files, read through a pattern, locally and in the store.
    split_parquet(&d.join("hr_time.parquet"), 6000, &d.join("hr_time"));
    std::fs::remove_file(d.join("hr_time.parquet")).unwrap();
    let text = std::fs::read_to_string(&pipeline)
        .unwrap()
        .replace("\"hr_time.parquet\"", "\"hr_time/*.parquet\"");
    std::fs::write(&pipeline, &text).unwrap();

    let s3 = S3Server::start();
    s3.create_bucket("kommun");
    let mut sources = Vec::new();
    for entry in walk(d) {
        let key = entry.strip_prefix(d).unwrap().to_string_lossy().to_string();
        if key.ends_with(".parquet") {
            s3.put(
                "kommun",
                &format!("exports/{key}"),
                std::fs::read(&entry).unwrap(),
            );
            sources.push(key);
        }
    }
    assert_eq!(sources.len(), 10, "{sources:?}");
    // What the pattern must not match: another suffix, and a file one folder down (`*` stops
    // at `/`; matched, its rows would count twice).
    s3.put("kommun", "exports/hr_time/notes.txt", b"not data".to_vec());
    s3.put(
        "kommun",
        "exports/hr_time/old/part-9.parquet",
        std::fs::read(d.join("hr_time/part-0.parquet")).unwrap(),
    );
    let mut remote = text.clone();
    for line in text.lines().filter(|l| l.starts_with("path = \"")) {
        let path = line.trim_start_matches("path = \"").trim_end_matches('"');
        if path.ends_with(".parquet") {
            remote = remote.replace(line, &format!("path = \"s3://kommun/exports/{path}\""));
        }
    }
    assert_eq!(remote.matches("s3://").count(), 9, "{remote}");
    let remote_pipeline = d.join("pipeline_s3.toml");
    std::fs::write(&remote_pipeline, &remote).unwrap();

    let run = |pipeline: &Path, engine: &str, out: &str, extra: &[&str]| {
        Command::new(bin)
            .args(["run", pipeline.to_str().unwrap(), "--as-of", AS_OF, "--out"])
            .arg(d.join(out))
            .args(["--engine", engine])
            .args(extra)
            .envs(s3.env())
            .output()
            .unwrap()
    };
    let ok = |o: &std::process::Output| {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    ok(&run(&pipeline, "polars", "local", &[]));
    ok(&run(&remote_pipeline, "datafusion", "datafusion", &[]));

    let mut cluster = Command::new(bin)
        .args(["cluster", "--executors", "2"])
        .envs(s3.env())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut url = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(cluster.stdout.take().unwrap()),
        &mut url,
    )
    .unwrap();
    let on_cluster = run(&remote_pipeline, url.trim(), "ballista", &[]);
    cluster.kill().unwrap();
    cluster.wait().unwrap();
    ok(&on_cluster);

    let local = d.join("local/uddevalla/latest");
    for engine in ["datafusion", "ballista"] {
        let published = d.join(engine).join("uddevalla/latest");
        // Every table alike, but rejected rows name their file by where it was read.
        let mut identical = 0;
        for entry in std::fs::read_dir(&local).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().to_string();
            if !name.ends_with(".parquet") {
                continue;
            }
            let (a, b) = (local.join(&name), published.join(&name));
            if name != "rejected_rows.parquet" {
                assert_eq!(
                    std::fs::read(&a).unwrap(),
                    std::fs::read(&b).unwrap(),
                    "{engine}: {name}"
                );
                identical += 1;
                continue;
            }
            let (ra, rb) = (common::read_parquet(&a), common::read_parquet(&b));
            assert!(ra.height() > 0, "the fixture has rejected rows");
            let (fa, fb) = (common::strings(&ra, "file"), common::strings(&rb, "file"));
            for (x, y) in fa.iter().zip(&fb) {
                let key = x.strip_prefix(&format!("{}/", d.display())).unwrap_or(x);
                assert_eq!(y, &format!("s3://kommun/exports/{key}"), "{engine}");
            }
            assert!(
                ra.drop("file")
                    .unwrap()
                    .equals_missing(&rb.drop("file").unwrap()),
                "{engine}"
            );
        }
        assert_eq!(
            identical, 9,
            "{engine}: the nine tables besides rejected rows"
        );
    }

    // The manifest lists the objects the pattern matched, in key order, with rows from their
    // footers and their ETags.
    let published = d.join("datafusion/uddevalla/latest");
    let files = source_record(&published, "hr_time").files;
    let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "s3://kommun/exports/hr_time/part-0.parquet",
            "s3://kommun/exports/hr_time/part-1.parquet"
        ]
    );
    let rows: Vec<i64> = files.iter().map(|f| f.rows).collect();
    let all = common::read_parquet(&d.join("hr_time/part-1.parquet")).height() as i64;
    assert_eq!(rows, [6000, all]);
    assert!(
        files
            .iter()
            .all(|f| f.etag.as_ref().is_some_and(|e| !e.is_empty()))
    );

    // Unchanged objects are recognised without downloading them; a rewritten one is not.
    let again = run(
        &remote_pipeline,
        "datafusion",
        "datafusion",
        &["--skip-unchanged"],
    );
    ok(&again);
    assert!(String::from_utf8_lossy(&again.stdout).contains("unchanged"));
    let ledger = common::read_parquet(&d.join("ledger.parquet"));
    let mut shorter = ledger.slice(0, ledger.height() - 1);
    let mut bytes = Vec::new();
    polars::prelude::ParquetWriter::new(&mut bytes)
        .finish(&mut shorter)
        .unwrap();
    s3.put("kommun", "exports/ledger.parquet", bytes);
    let changed = run(
        &remote_pipeline,
        "datafusion",
        "datafusion",
        &["--skip-unchanged"],
    );
    ok(&changed);
    assert!(!String::from_utf8_lossy(&changed.stdout).contains("unchanged"));
    let ledger_rows = source_record(&published, "ledger").rows_read;
    assert_eq!(ledger_rows, ledger.height() as i64 - 1);

    // polars reads local files only: it refuses, naming the object and the way out.
    let refused = run(&remote_pipeline, "polars", "refused", &[]);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("s3://kommun/exports/hr_time/part-0.parquet is in an object store")
            && stderr.contains("--engine datafusion"),
        "{stderr}"
    );
    assert!(!d.join("refused/uddevalla/latest").exists());
}

/// A source's record in the manifest of the run published at `run`.
fn source_record(run: &Path, name: &str) -> styrkort::publish::SourceRecord {
    styrkort::publish::Manifest::read(run)
        .expect("a readable manifest")
        .sources
        .into_iter()
        .find(|s| s.name == name)
        .expect("the source is in the manifest")
}

/// Every file under `dir`, sorted.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}
