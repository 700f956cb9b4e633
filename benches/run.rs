//! End-to-end throughput: generate the synthetic municipality at a scale, then time `run`.
//!
//!     cargo bench --bench run                 # scale 10
//!     STYRKORT_BENCH_SCALE=100 cargo bench --bench run
//!
//! Prints the input rows, each run's wall time and the median; it asserts nothing.

use std::path::PathBuf;
use std::time::Instant;

fn main() {
    let scale: u32 = std::env::var("STYRKORT_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let repeats: usize = std::env::var("STYRKORT_BENCH_REPEATS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let work = tempfile::tempdir().expect("temp dir");
    let data = work.path().join("data");
    let started = Instant::now();
    let files = styrkort::generate::write_municipality(&data, scale, 1).expect("generate");
    let input_rows: usize = files
        .iter()
        .map(|f| {
            std::fs::read_to_string(f)
                .map(|t| t.lines().count().saturating_sub(1))
                .unwrap_or(0)
        })
        .sum();
    let input_bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
        .sum();
    println!(
        "scale {scale}: generated {input_rows} rows ({:.1} MB) in {:.2} s",
        input_bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );

    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    // Targets and actions are maintained by hand, not generated: use the fixtures' own.
    for f in ["targets.csv", "actions.csv"] {
        std::fs::copy(repo.join("fixtures/uddevalla").join(f), data.join(f)).expect("copy fixture");
    }
    let pipeline_text = std::fs::read_to_string(repo.join("pipelines/uddevalla.toml"))
        .expect("pipeline")
        .replace("../fixtures/uddevalla/", &format!("{}/", data.display()));
    let pipeline = work.path().join("uddevalla.toml");
    std::fs::write(&pipeline, pipeline_text).expect("write pipeline");

    let mut times = Vec::new();
    for i in 0..repeats {
        let started = Instant::now();
        let summary = styrkort::run(
            &pipeline,
            &styrkort::RunOptions::new(None, work.path().join("out")),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let secs = started.elapsed().as_secs_f64();
        println!(
            "run {}: {:.2} s, {} value rows, {} rejected, {:.0} input rows/s",
            i + 1,
            secs,
            summary.value_rows,
            summary.rejected_rows,
            input_rows as f64 / secs
        );
        times.push(secs);
    }
    times.sort_by(|a, b| a.partial_cmp(b).expect("finite times"));
    println!(
        "median: {:.2} s over {repeats} runs",
        times[times.len() / 2]
    );
}
