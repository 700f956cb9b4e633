//! The `styrkort` binary end to end, on the committed Uddevalla fixtures.

use crate::common;

use polars::prelude::{Column, ParquetWriter};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn styrkort(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_styrkort"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("the binary runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn run_into(out: &Path) -> Output {
    styrkort(&[
        "run",
        "pipelines/uddevalla.toml",
        "--out",
        out.to_str().unwrap(),
    ])
}

#[test]
fn run_writes_the_tables_and_prints_a_summary() {
    let out = tempfile::tempdir().unwrap();
    let o = run_into(out.path());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    for needle in [
        "29 indicators",
        "57 units",
        "36 months",
        "indicator value rows",
        "rejected rows",
        "done in",
    ] {
        assert!(
            stdout.contains(needle),
            "summary lacks '{needle}':\n{stdout}"
        );
    }
    let dir = out.path().join("uddevalla/as_of=2025-01-01");
    for f in [
        "indicator_values.parquet",
        "rejected_rows.parquet",
        "manifest.json",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["as_of"], "2025-01-01");
    assert_eq!(manifest["first_period"], "2022-01");
    assert_eq!(manifest["last_period"], "2024-12");
    assert_eq!(manifest["sources"].as_array().unwrap().len(), 9);
    assert_eq!(manifest["definitions_hash"].as_str().unwrap().len(), 64);
}

#[test]
fn reruns_write_byte_identical_tables() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    assert_eq!(run_into(a.path()).status.code(), Some(0));
    assert_eq!(run_into(b.path()).status.code(), Some(0));
    for table in ["indicator_values.parquet", "rejected_rows.parquet"] {
        let read =
            |d: &Path| std::fs::read(d.join("uddevalla/as_of=2025-01-01").join(table)).unwrap();
        assert!(
            read(a.path()) == read(b.path()),
            "{table} differs between identical runs"
        );
    }
}

#[test]
fn explain_shows_one_fused_plan_per_source() {
    let o = styrkort(&["explain", "pipelines/uddevalla.toml"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(out.matches("== source ").count(), 9, "{out}");
    assert!(out.contains("== source hr_time ==\n"), "{out}");
    assert!(
        out.contains("5 indicators fused into one plan: sick_leave_pct, overtime_pct, headcount, headcount_avg, permanent_share_pct"),
        "{out}"
    );
    assert!(out.contains("group-bys: total, by gender"), "{out}");
    assert!(out.contains("phase 1"), "{out}");
    assert!(out.contains("phase 2"), "{out}");
    assert!(
        out.contains("headcount: 2 sums/counts + a distinct-value set [tree]"),
        "{out}"
    );
    assert!(
        !out.contains("computed directly from rows"),
        "every fixture indicator has mergeable states:\n{out}"
    );
    assert!(
        !out.contains("AGGREGATE"),
        "the plan only with --verbose:\n{out}"
    );
    let o = styrkort(&["explain", "pipelines/uddevalla.toml", "--verbose"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("AGGREGATE") || out.contains("GROUP_BY") || out.contains("group_by"),
        "the polars plan is shown with --verbose:\n{out}"
    );
}

#[test]
fn validate_accepts_the_fixture_pipeline() {
    let o = styrkort(&["validate", "pipelines/uddevalla.toml"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .contains("definitions ok: 29 indicators, 10 goals, 57 org units")
    );
}

#[test]
fn invalid_definitions_exit_2_and_missing_input_exits_1() {
    let f = common::Fixture::new();
    f.file("hr.csv", "month,unit,person,gender,hours,sick\n");
    f.pipeline(
        &(common::HR_SOURCE.to_string()
            + &common::indicator("x", "numerator = \"sum(nope)\"\ngrains = [\"month\"]")),
    );
    let o = styrkort(&[
        "run",
        f.path("pipeline.toml").to_str().unwrap(),
        "--out",
        f.path("out").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("numerator uses column 'nope'"),
        "{}",
        text(&o)
    );

    std::fs::remove_file(f.path("hr.csv")).unwrap();
    f.pipeline(
        &(common::HR_SOURCE.to_string()
            + &common::indicator("x", "numerator = \"sum(sick)\"\ngrains = [\"month\"]")),
    );
    let o = styrkort(&[
        "run",
        f.path("pipeline.toml").to_str().unwrap(),
        "--as-of",
        "2024-03-01",
        "--out",
        f.path("out").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("source 'hr': no file matches"),
        "{}",
        text(&o)
    );
    assert!(
        !f.path("out/t/as_of=2024-03-01").exists(),
        "nothing is published"
    );
}

#[test]
fn an_as_of_before_the_first_period_is_a_usage_error() {
    let o = styrkort(&[
        "run",
        "pipelines/uddevalla.toml",
        "--as-of",
        "2022-01-15",
        "--out",
        "/nonexistent/never",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("leaves no complete month"),
        "{}",
        text(&o)
    );
    let o = styrkort(&["run", "pipelines/uddevalla.toml", "--as-of", "2024-13-01"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn generate_scale_1_seed_1_is_exactly_the_committed_fixtures() {
    let out = tempfile::tempdir().unwrap();
    let o = styrkort(&[
        "generate",
        "--scale",
        "1",
        "--seed",
        "1",
        "--out",
        out.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let fixtures = repo().join("fixtures/uddevalla");
    let mut names: Vec<_> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    // 11 generated tables, the hand-kept targets, actions and analyses, and the pipeline file.
    assert_eq!(names.len(), 15, "{names:?}");
    for name in names.into_iter().filter(|n| n != "pipeline.toml") {
        let generated = std::fs::read(out.path().join(&name)).unwrap();
        let committed = std::fs::read(fixtures.join(&name)).unwrap_or_default();
        assert!(
            generated == committed,
            "{name:?} differs from fixtures/uddevalla"
        );
    }
}

#[test]
fn generated_folder_runs_as_it_is_in_csv_and_parquet() {
    let work = tempfile::tempdir().unwrap();
    let mut values = Vec::new();
    for format in ["csv", "parquet"] {
        let dir = work.path().join(format);
        let o = styrkort(&[
            "generate",
            "--format",
            format,
            "--out",
            dir.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        assert!(
            dir.join(format!("hr_time.{format}")).exists(),
            "{format} source written"
        );
        let out = work.path().join(format!("out-{format}"));
        let o = styrkort(&[
            "run",
            dir.join("pipeline.toml").to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        values.push(common::read_parquet(
            &out.join("uddevalla/latest/indicator_values.parquet"),
        ));
    }
    // The committed fixtures run to the same table as the generated CSV folder.
    let fixtures_out = tempfile::tempdir().unwrap();
    assert_eq!(run_into(fixtures_out.path()).status.code(), Some(0));
    let fixtures = common::read_parquet(
        &fixtures_out
            .path()
            .join("uddevalla/latest/indicator_values.parquet"),
    );
    assert!(values[0].equals_missing(&fixtures), "csv folder = fixtures");
    // Parquet holds typed columns; the same rows give the same cells and numbers.
    let (csv, parquet) = (&values[0], &values[1]);
    assert_eq!(csv.height(), parquet.height());
    for name in ["indicator_id", "org_unit_id", "period", "segment", "n_rows"] {
        assert!(
            csv.column(name)
                .unwrap()
                .equals_missing(parquet.column(name).unwrap()),
            "column {name}"
        );
    }
    let (a, b) = (
        csv.column("value").unwrap().f64().unwrap(),
        parquet.column("value").unwrap().f64().unwrap(),
    );
    for (x, y) in a.iter().zip(b.iter()) {
        match (x, y) {
            (Some(x), Some(y)) => assert!((x - y).abs() <= 1e-12 * x.abs().max(1.0), "{x} vs {y}"),
            (x, y) => assert_eq!(x, y),
        }
    }
}

#[test]
fn generate_scales_the_rows() {
    let (one, three) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for (dir, scale) in [(&one, "1"), (&three, "3")] {
        let o = styrkort(&[
            "generate",
            "--scale",
            scale,
            "--seed",
            "7",
            "--out",
            dir.path().to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    }
    let lines = |d: &Path| {
        std::fs::read_to_string(d.join("citizen_contacts.csv"))
            .unwrap()
            .lines()
            .count()
            - 1
    };
    assert_eq!(lines(three.path()), 3 * lines(one.path()));
}

#[test]
fn every_command_has_help() {
    let o = styrkort(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    let top = String::from_utf8_lossy(&o.stdout).to_string();
    // Every command is listed with what it does (a doc comment in the wrong place once left
    // `generate` without one and gave `cluster` two).
    let listed: Vec<(&str, &str)> = top
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .map(|l| {
            let l = l.trim_start();
            let (name, about) = l.split_once(' ').unwrap_or((l, ""));
            (name, about.trim())
        })
        .collect();
    let mut commands = vec![
        "run", "validate", "explain", "inspect", "spc", "report", "export", "init", "generate",
    ];
    if cfg!(feature = "distributed") {
        commands.push("cluster");
    }
    for cmd in &commands {
        let about = listed
            .iter()
            .find(|(name, _)| name == cmd)
            .unwrap_or_else(|| panic!("{cmd} is not listed:\n{top}"))
            .1;
        assert!(about.len() > 20, "{cmd} has no description:\n{top}");
        let o = styrkort(&[cmd, "--help"]);
        assert_eq!(o.status.code(), Some(0), "{cmd}");
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains("Usage:"), "{out}");
    }
    let about = |cmd: &str| listed.iter().find(|(name, _)| *name == cmd).unwrap().1;
    assert!(about("generate").starts_with("Write a synthetic municipality"));
    if cfg!(feature = "distributed") {
        assert!(about("cluster").starts_with("Start a Ballista cluster"));
    }
    let o = styrkort(&["run", "--help"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("Exit codes: 0 ok, 1"));
}

#[test]
fn inspect_signals_lists_the_flagged_series_with_reasons() {
    let out = tempfile::tempdir().unwrap();
    assert_eq!(run_into(out.path()).status.code(), Some(0));
    let dir = out.path().join("uddevalla/as_of=2025-01-01");
    let o = styrkort(&[
        "inspect",
        dir.to_str().unwrap(),
        "--signals",
        "--unit",
        "SOC-ALD-HTN",
        "--limit",
        "0",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let line = stdout
        .lines()
        .find(|l| l.contains("sick_leave_pct") && l.contains("| total"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(line.starts_with("| act"), "{line}");
    assert!(line.contains("concern: "), "{line}");
    assert!(
        stdout
            .lines()
            .filter(|l| l.starts_with("| ") && !l.starts_with("| flag"))
            .all(|l| l.contains("(SOC-ALD-HTN)"))
    );
}

#[test]
fn tables_do_not_depend_on_the_number_of_threads_or_on_sources_running_side_by_side() {
    let run_with = |env: &[(&str, &str)]| {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_styrkort"));
        cmd.args([
            "run",
            "pipelines/uddevalla.toml",
            "--out",
            dir.path().to_str().unwrap(),
        ])
        .current_dir(repo())
        .envs(env.iter().copied());
        assert_eq!(cmd.output().unwrap().status.code(), Some(0));
        dir
    };
    let many = run_with(&[]);
    let variants = [
        (
            "1 thread",
            run_with(&[("POLARS_MAX_THREADS", "1"), ("RAYON_NUM_THREADS", "1")]),
        ),
        // The fixtures' sources are all small: by default they run side by side.
        (
            "sources one at a time",
            run_with(&[("STYRKORT_PARALLEL_SOURCES", "0")]),
        ),
        // polars' group-by in place of the dense accumulation of sums and counts.
        ("the group-by", run_with(&[("STYRKORT_DENSE", "0")])),
    ];
    for table in [
        "indicator_values",
        "rejected_rows",
        "deviations",
        "goal_status",
        "signals",
        "actions",
    ] {
        let read =
            |d: &Path| std::fs::read(d.join(format!("uddevalla/latest/{table}.parquet"))).unwrap();
        for (what, dir) in &variants {
            assert!(
                read(dir.path()) == read(many.path()),
                "{table} differs between {what} and the default"
            );
        }
    }
}

/// Sums of arbitrary decimals depend on the order they are added in. Phase 1 adds each cell's
/// rows in file order, so reruns, on any number of threads, give the same bits — here with
/// 140,000 hour rows (many batches of the streaming scan) of random decimals.
#[test]
fn float_sums_of_arbitrary_decimals_are_byte_identical_across_reruns_and_threads() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let o = styrkort(&[
        "generate",
        "--scale",
        "10",
        "--format",
        "parquet",
        "--out",
        data.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let hours = data.join("hr_time.parquet");
    let mut frame = common::read_parquet(&hours);
    assert!(frame.height() > 100_000, "{} rows", frame.height());
    // Thirds and sevenths of an hour: no sum of them is exact in binary.
    let n = frame.height();
    let sick: Vec<f64> = (0..n).map(|i| (i % 61) as f64 / 3.0 + 0.001).collect();
    let worked: Vec<f64> = (0..n).map(|i| 100.0 + (i % 97) as f64 / 7.0).collect();
    frame
        .with_column(Column::new("sick_hours".into(), sick))
        .unwrap();
    frame
        .with_column(Column::new("worked_hours".into(), worked))
        .unwrap();
    let mut file = std::fs::File::create(&hours).unwrap();
    ParquetWriter::new(&mut file).finish(&mut frame).unwrap();

    let run = |threads: Option<&str>| {
        let out = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_styrkort"));
        cmd.args([
            "run",
            data.join("pipeline.toml").to_str().unwrap(),
            "--out",
            out.path().to_str().unwrap(),
        ]);
        if let Some(t) = threads {
            cmd.env("POLARS_MAX_THREADS", t);
        }
        let o = cmd.output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        std::fs::read(out.path().join("uddevalla/latest/indicator_values.parquet")).unwrap()
    };
    let first = run(None);
    for (what, threads) in [
        ("a rerun", None),
        ("another rerun", None),
        ("1 thread", Some("1")),
    ] {
        assert!(run(threads) == first, "indicator_values differ in {what}");
    }
}

#[test]
fn init_writes_a_starting_point_that_runs_at_once_and_never_overwrites() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("vara-mal");
    let o = styrkort(&["init", dir.to_str().unwrap(), "--name", "vara-mal"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = styrkort(&["validate", dir.join("pipeline.toml").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = work.path().join("out");
    let o = styrkort(&[
        "run",
        dir.join("pipeline.toml").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // The kommun's sick leave in 2024: the example rows' sums, computed here from the CSV.
    let mut reader = csv::Reader::from_path(dir.join("hr_time.csv")).unwrap();
    let (mut sick, mut scheduled) = (0.0, 0.0);
    for r in reader.records() {
        let r = r.unwrap();
        scheduled += r[4].parse::<f64>().unwrap();
        sick += r[5].parse::<f64>().unwrap();
    }
    let values = common::read_parquet(&out.join("vara-mal/latest/indicator_values.parquet"));
    common::assert_close(
        common::value(&values, "sick_leave_pct", "K", "year", "2024"),
        100.0 * sick / scheduled,
    );
    // A second init into the same folder is refused, the files left alone.
    let before = std::fs::read(dir.join("pipeline.toml")).unwrap();
    let o = styrkort(&["init", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("is not empty"), "{}", text(&o));
    assert_eq!(std::fs::read(dir.join("pipeline.toml")).unwrap(), before);
}
