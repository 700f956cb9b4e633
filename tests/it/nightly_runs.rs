//! Nightly runs that never lose or corrupt results: a table of bad inputs, killed runs, a full
//! disk, the lock, deterministic reruns and `--skip-unchanged`. Every failure case checks the
//! message (file and row/column where there is one) and that the published run is unchanged.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Fixture, ORG};

const AS_OF: &str = "2024-04-01";

const MAPPING: &str = "source,code,unit_id,valid_from,valid_to
hr,100,A1,,
hr,200,A2,,2024-01-31
hr,200,B1,2024-02-01,
";

const HR: &str = "month,cc,person,gender,hours,sick
2024-01-01,100,p1,K,100,5
2024-01-01,200,p2,M,80,4
2024-02-01,100,p1,K,100,6
2024-02-01,200,p2,M,80,2
2024-03-01,100,p1,K,100,7
2024-03-01,200,p2,M,80,0
";

const TARGETS: &str =
    "indicator_id,org_unit_id,period,kind,value,value_high,tolerance,compare_to,note
sick_pct,,,ceiling,5,,1,,
";

const SOURCE: &str = r#"
[[sources]]
name = "hr"
path = "hr.csv"
format = "csv"
date_column = "month"
org_column = "cc"
org_codes = "mapping"
[sources.columns]
month = "date"
cc = "string"
person = "string"
gender = "string"
hours = { type = "float", min = 0 }
sick = { type = "float", min = 0 }
"#;

const INDICATOR: &str = r#"
[[indicators]]
id = "sick_pct"
name = "Sjukfrånvaro"
source = "hr"
numerator = "sum(sick)"
denominator = "sum(hours)"
scale = 100
grains = ["month", "quarter"]
polarity = "lower_is_better"

[[goals]]
id = "G"
name = "g"
level = "kf"
owner = "K"
basis = "law"
reference = "r"
indicators = ["sick_pct"]
"#;

/// A complete small pipeline whose run for AS_OF is published before each case.
fn good() -> Fixture {
    let f = Fixture::new();
    f.file("org.csv", ORG);
    f.file("mapping.csv", MAPPING);
    f.file("hr.csv", HR);
    f.file("targets.csv", TARGETS);
    write_pipeline(&f, "fail", SOURCE, INDICATOR);
    f
}

fn write_pipeline(f: &Fixture, on_bad_rows: &str, source: &str, indicator: &str) {
    f.pipeline_with(
        &format!("on_bad_rows = \"{on_bad_rows}\"\ntargets = \"targets.csv\""),
        &format!("{source}\n{indicator}"),
    );
}

fn styrkort(f: &Fixture, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_styrkort"));
    cmd.args(args).current_dir(f.dir.path());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("the binary runs")
}

fn run(f: &Fixture) -> Output {
    styrkort(
        f,
        &["run", "pipeline.toml", "--as-of", AS_OF, "--out", "out"],
        &[],
    )
}

/// `styrkort run pipeline.toml --as-of AS_OF --out out` with extra arguments.
fn run_with(f: &Fixture, as_of: &str, extra: &[&str]) -> Output {
    let mut args = vec!["run", "pipeline.toml", "--as-of", as_of, "--out", "out"];
    args.extend_from_slice(extra);
    styrkort(f, &args, &[])
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn published(f: &Fixture) -> PathBuf {
    f.path("out/t").join(format!("as_of={AS_OF}"))
}

/// A fingerprint of everything published: the links and every file of the run they point to.
fn fingerprint(f: &Fixture) -> String {
    let mut h = blake3::Hasher::new();
    for link in [published(f), f.path("out/t/latest")] {
        h.update(
            std::fs::read_link(&link)
                .map(|t| t.display().to_string())
                .unwrap_or_default()
                .as_bytes(),
        );
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(published(f))
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    for file in files {
        h.update(file.file_name().unwrap().as_encoded_bytes());
        h.update(&std::fs::read(&file).unwrap());
    }
    h.finalize().to_hex().to_string()
}

fn table(f: &Fixture, name: &str) -> Vec<u8> {
    std::fs::read(published(f).join(name)).unwrap_or_default()
}

type Mutation = fn(&Fixture);

/// (name, mutation, exit code, substrings the message must contain)
fn failing_cases() -> Vec<(&'static str, Mutation, i32, Vec<&'static str>)> {
    vec![
        (
            "missing file",
            |f| std::fs::remove_file(f.path("hr.csv")).unwrap(),
            1,
            vec!["source 'hr': no file matches", "hr.csv"],
        ),
        (
            "empty file",
            |f| {
                f.file("hr.csv", "");
            },
            1,
            vec!["hr.csv: the file is empty"],
        ),
        (
            "header only",
            |f| {
                f.file("hr.csv", "month,cc,person,gender,hours,sick\n");
            },
            1,
            vec!["hr.csv: a header but no rows"],
        ),
        (
            "missing column",
            |f| {
                let without_sick: String = HR
                    .lines()
                    .map(|l| format!("{}\n", l.rsplit_once(',').unwrap().0))
                    .collect();
                f.file("hr.csv", &without_sick);
            },
            1,
            vec!["hr.csv: missing column(s) sick declared by source 'hr'"],
        ),
        (
            "wrong type",
            |f| {
                f.file(
                    "hr.csv",
                    &HR.replace("2024-01-01,200,p2,M,80,4", "2024-01-01,200,p2,M,eighty,4"),
                );
            },
            1,
            vec!["hr.csv line/row 3: column 'hours': expected float, found 'eighty'"],
        ),
        (
            "unparsable date",
            |f| {
                f.file("hr.csv", &HR.replace("2024-02-01,100", "2024-13-01,100"));
            },
            1,
            vec!["hr.csv line/row 4: column 'month': expected date, found '2024-13-01'"],
        ),
        (
            "missing date",
            |f| {
                f.file("hr.csv", &HR.replace("2024-02-01,100", ",100"));
            },
            1,
            vec!["hr.csv line/row 4: column 'month': missing date"],
        ),
        (
            "negative hours",
            |f| {
                f.file("hr.csv", &HR.replace("100,7", "-100,7"));
            },
            1,
            vec!["hr.csv line/row 6: column 'hours': value '-100' is below the minimum 0"],
        ),
        (
            "NaN",
            |f| {
                f.file("hr.csv", &HR.replace("100,6", "NaN,6"));
            },
            1,
            vec!["hr.csv line/row 4: column 'hours': expected float, found 'NaN'"],
        ),
        (
            "infinity",
            |f| {
                f.file("hr.csv", &HR.replace("80,0", "80,inf"));
            },
            1,
            vec!["hr.csv line/row 7: column 'sick': expected float, found 'inf'"],
        ),
        (
            "non-UTF-8 bytes",
            |f| {
                let mut bytes = HR.as_bytes().to_vec();
                let at = HR.find("p2").unwrap();
                bytes[at] = 0xff;
                std::fs::write(f.path("hr.csv"), bytes).unwrap();
            },
            1,
            vec!["hr.csv: line 3, field 3: not valid UTF-8"],
        ),
        (
            "ragged row",
            |f| {
                f.file(
                    "hr.csv",
                    &HR.replace("2024-01-01,200,p2,M,80,4", "2024-01-01,200,p2,M,80,4,extra"),
                );
            },
            1,
            vec!["hr.csv: line 3: 7 fields where the header has 6"],
        ),
        (
            "truncated Parquet",
            |f| {
                write_parquet_source(f);
                let bytes = std::fs::read(f.path("hr.parquet")).unwrap();
                std::fs::write(f.path("hr.parquet"), &bytes[..bytes.len() / 2]).unwrap();
            },
            1,
            vec!["hr.parquet: not a readable Parquet file"],
        ),
        (
            "corrupt Parquet",
            |f| {
                write_parquet_source(f);
                std::fs::write(
                    f.path("hr.parquet"),
                    b"PAR1 this is not parquet at all PAR1",
                )
                .unwrap();
            },
            1,
            vec!["hr.parquet: not a readable Parquet file"],
        ),
        (
            "unknown code, on_bad_rows = fail",
            |f| {
                f.file("hr.csv", &HR.replace("2024-03-01,200", "2024-03-01,999"));
            },
            1,
            vec![
                "1 bad row(s)",
                "hr.csv line/row 7: column 'cc': unknown org code '999' on 2024-03-01",
            ],
        ),
        (
            "duplicate org ids",
            |f| {
                f.file("org.csv", &(ORG.to_string() + "A1,Again,A,enhet\n"));
            },
            2,
            vec!["org.csv:8:1: unit 'A1': duplicate unit id"],
        ),
        (
            "org cycle",
            |f| {
                f.file("org.csv", &(ORG.to_string() + "X,X,Y,enhet\nY,Y,X,enhet\n"));
            },
            2,
            vec!["org.csv:8:1: unit 'X': unit is its own ancestor"],
        ),
        (
            "orphan unit",
            |f| {
                f.file("org.csv", &(ORG.to_string() + "C1,C1,C,enhet\n"));
            },
            2,
            vec!["org.csv:8:1: unit 'C1': parent 'C' is not a unit in the file (orphan)"],
        ),
        (
            "missing org file",
            |f| std::fs::remove_file(f.path("org.csv")).unwrap(),
            2,
            vec!["org.csv: cannot read org units"],
        ),
        (
            "overlapping mapping validity",
            |f| {
                f.file(
                    "mapping.csv",
                    &(MAPPING.to_string() + "hr,100,B1,2024-03-01,\n"),
                );
            },
            2,
            vec![
                "mapping.csv:5:1: code '100' of source 'hr': validity overlaps the entry on line 2",
            ],
        ),
        (
            "mapping to an unknown unit",
            |f| {
                f.file("mapping.csv", &(MAPPING.to_string() + "hr,300,ZZ,,\n"));
            },
            2,
            vec!["mapping.csv:5:1: code '300': column 'unit_id': unknown org unit 'ZZ'"],
        ),
        (
            "target for an unknown indicator",
            |f| {
                f.file(
                    "targets.csv",
                    &(TARGETS.to_string() + "nope,,,floor,1,,,,\n"),
                );
            },
            2,
            vec!["targets.csv:3:1", "unknown indicator 'nope'"],
        ),
        (
            "duplicate target",
            |f| {
                f.file(
                    "targets.csv",
                    &(TARGETS.to_string() + "sick_pct,,,floor,1,,,,\n"),
                );
            },
            2,
            vec!["targets.csv:3:1", "duplicate target", "lines 2 and 3"],
        ),
        (
            "expression with an unknown column",
            |f| {
                write_pipeline(
                    f,
                    "fail",
                    SOURCE,
                    &INDICATOR.replace("sum(sick)", "sum(sick_hours)"),
                )
            },
            2,
            vec!["pipeline.toml:", "numerator uses column 'sick_hours'"],
        ),
        (
            "expression with a syntax error",
            |f| {
                write_pipeline(
                    f,
                    "fail",
                    SOURCE,
                    &INDICATOR.replace("sum(hours)", "sum(hours"),
                )
            },
            2,
            vec!["pipeline.toml:", "denominator 'sum(hours' does not compile"],
        ),
        (
            "indicator with no goal",
            |f| {
                write_pipeline(
                    f,
                    "fail",
                    SOURCE,
                    &INDICATOR.replace("indicators = [\"sick_pct\"]", "indicators = []"),
                )
            },
            2,
            vec![
                "pipeline.toml:",
                "indicator 'sick_pct': indicator measures no goal",
            ],
        ),
        (
            "date format changed (2024-01), on_bad_rows = reject",
            |f| {
                f.file(
                    "hr.csv",
                    &HR.replace("-01-01,", "-01,")
                        .replace("-02-01,", "-02,")
                        .replace("-03-01,", "-03,"),
                );
                write_pipeline(f, "reject", SOURCE, INDICATOR);
            },
            1,
            vec![
                "source 'hr': 6 of 6 rows rejected (100.0 %, max_rejected_share = 0.05)",
                "6 × e.g. hr.csv line/row 2: column 'month'",
                "'2024-01'",
                "raise max_rejected_share",
                "nothing was published",
            ],
        ),
        (
            "NUL bytes where a CSV belongs, allow_empty = true",
            |f| {
                std::fs::write(f.path("hr.csv"), vec![0u8; 1 << 20]).unwrap();
                let source = SOURCE.replace(
                    "org_codes = \"mapping\"",
                    "org_codes = \"mapping\"\nallow_empty = true",
                );
                write_pipeline(f, "fail", &source, INDICATOR);
            },
            1,
            vec!["hr.csv: byte 1: a NUL byte", "not a text CSV"],
        ),
        (
            "max_rejected_share outside 0..1",
            |f| {
                let source = SOURCE.replace(
                    "org_codes = \"mapping\"",
                    "org_codes = \"mapping\"\nmax_rejected_share = 5",
                );
                write_pipeline(f, "fail", &source, INDICATOR);
            },
            2,
            vec![
                "pipeline.toml:",
                "max_rejected_share = 5 is not a share between 0 and 1",
            ],
        ),
        (
            "a misspelt column type",
            |f| {
                let source =
                    SOURCE.replace("hours = { type = \"float\"", "hours = { type = \"flaot\"");
                write_pipeline(f, "fail", &source, INDICATOR);
            },
            2,
            vec![
                "pipeline.toml:",
                "unknown variant `flaot`, expected one of `string`, `int`, `float`",
            ],
        ),
        (
            "an unknown column check",
            |f| {
                let source = SOURCE.replace(
                    "hours = { type = \"float\", min = 0 }",
                    "hours = { type = \"float\", minimum = 0 }",
                );
                write_pipeline(f, "fail", &source, INDICATOR);
            },
            2,
            vec![
                "pipeline.toml:",
                "unknown field `minimum`, expected one of `type`, `min`, `max`",
            ],
        ),
        (
            "alpha out of range",
            |f| {
                f.pipeline_with(
                    "on_bad_rows = \"fail\"\ntargets = \"targets.csv\"\nalpha = 2",
                    &format!("{SOURCE}\n{INDICATOR}"),
                );
            },
            2,
            vec!["pipeline.toml:4:9: alpha: alpha = 2 must be between 0 and 0.5"],
        ),
        (
            "a FIFO where the source file belongs",
            |f| {
                std::fs::remove_file(f.path("hr.csv")).unwrap();
                let made = Command::new("mkfifo")
                    .arg(f.path("hr.csv"))
                    .status()
                    .unwrap();
                assert!(made.success());
            },
            1,
            vec!["hr.csv: cannot read: not a regular file (a pipe or device)"],
        ),
        (
            "TOML syntax error",
            |f| {
                write_pipeline(
                    f,
                    "fail",
                    SOURCE,
                    &INDICATOR.replace("scale = 100", "scale = = 100"),
                )
            },
            2,
            vec!["pipeline.toml:"],
        ),
    ]
}

/// Switches the source to a Parquet file with the good data.
fn write_parquet_source(f: &Fixture) {
    use polars::prelude::*;
    let mut df = CsvReadOptions::default()
        .with_has_header(true)
        .try_into_reader_with_file_path(Some(f.path("hr.csv")))
        .unwrap()
        .finish()
        .unwrap();
    let month = df
        .column("month")
        .unwrap()
        .cast(&DataType::String)
        .unwrap()
        .cast(&DataType::Date)
        .unwrap();
    df.with_column(month).unwrap();
    let cc = df.column("cc").unwrap().cast(&DataType::String).unwrap();
    df.with_column(cc).unwrap();
    ParquetWriter::new(std::fs::File::create(f.path("hr.parquet")).unwrap())
        .finish(&mut df)
        .unwrap();
    let source = SOURCE
        .replace("path = \"hr.csv\"", "path = \"hr.parquet\"")
        .replace("format = \"csv\"", "format = \"parquet\"");
    write_pipeline(f, "fail", &source, INDICATOR);
}

#[test]
fn bad_inputs_fail_clearly_and_leave_the_published_run_untouched() {
    let mut failures = Vec::new();
    let cases = failing_cases();
    assert!(cases.len() >= 25);
    for (name, mutate, code, needles) in cases {
        let f = good();
        let first = run(&f);
        assert_eq!(
            first.status.code(),
            Some(0),
            "{name}: the good run failed: {}",
            text(&first)
        );
        let before = fingerprint(&f);
        mutate(&f);
        let o = run(&f);
        let out = text(&o);
        if o.status.code() != Some(code) {
            failures.push(format!(
                "{name}: exit {:?}, expected {code}: {out}",
                o.status.code()
            ));
        }
        for needle in &needles {
            if !out.contains(needle) {
                failures.push(format!("{name}: message lacks '{needle}': {out}"));
            }
        }
        if fingerprint(&f) != before {
            failures.push(format!("{name}: the published run changed"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn an_as_of_before_the_first_period_and_an_unwritable_output_fail_cleanly() {
    let f = good();
    assert_eq!(run(&f).status.code(), Some(0));
    let before = fingerprint(&f);
    let o = styrkort(
        &f,
        &[
            "run",
            "pipeline.toml",
            "--as-of",
            "2023-06-01",
            "--out",
            "out",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("as-of date 2023-06-01 leaves no complete month"));
    // An output "directory" that is a file: nothing can be created under it (root ignores
    // permission bits, so a read-only directory would not do).
    f.file("blocker", "not a directory");
    let o = styrkort(
        &f,
        &[
            "run",
            "pipeline.toml",
            "--as-of",
            AS_OF,
            "--out",
            "blocker/out",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("blocker/out/t"), "{}", text(&o));
    assert_eq!(fingerprint(&f), before);
}

#[test]
fn allowed_oddities_run_and_give_the_same_values() {
    // Extra columns are ignored; rows dated outside the run's months are counted, not used; with
    // on_bad_rows = "reject" an unknown code is set aside in rejected_rows.parquet.
    let cases: Vec<(&str, Mutation)> = vec![
        ("extra columns", |f| {
            let with_extra: String = HR
                .lines()
                .enumerate()
                .map(|(i, l)| format!("{l},{}\n", if i == 0 { "note" } else { "x" }))
                .collect();
            f.file("hr.csv", &with_extra);
        }),
        ("dates outside the run", |f| {
            f.file(
                "hr.csv",
                &(HR.to_string() + "2030-01-01,100,p1,K,100,99\n2023-12-01,100,p1,K,100,99\n"),
            );
        }),
        ("unknown code, on_bad_rows = reject", |f| {
            f.file("hr.csv", &(HR.to_string() + "2024-03-01,999,p9,K,100,99\n"));
            // 1 row of 7 (14 %) is over the default max_rejected_share, so allow it here.
            let source = SOURCE.replace(
                "org_codes = \"mapping\"",
                "org_codes = \"mapping\"\nmax_rejected_share = 0.2",
            );
            write_pipeline(f, "reject", &source, INDICATOR);
        }),
    ];
    for (name, mutate) in cases {
        let f = good();
        assert_eq!(run(&f).status.code(), Some(0));
        let values = table(&f, "indicator_values.parquet");
        mutate(&f);
        let o = run(&f);
        assert_eq!(o.status.code(), Some(0), "{name}: {}", text(&o));
        assert!(
            table(&f, "indicator_values.parquet") == values,
            "{name}: values changed"
        );
        let manifest: serde_json::Value =
            serde_json::from_str(&String::from_utf8(table(&f, "manifest.json")).unwrap()).unwrap();
        match name {
            "dates outside the run" => {
                assert_eq!(manifest["sources"][0]["rows_outside_periods"], 2)
            }
            "unknown code, on_bad_rows = reject" => {
                assert_eq!(manifest["sources"][0]["rows_rejected"], 1)
            }
            _ => {}
        }
    }
}

/// Starts a run that pauses at `point`; returns the child once it is there.
fn paused_run(f: &Fixture, point: &str) -> std::process::Child {
    let marker = f.path(&format!("paused-{point}"));
    let child = Command::new(env!("CARGO_BIN_EXE_styrkort"))
        .args(["run", "pipeline.toml", "--as-of", AS_OF, "--out", "out"])
        .current_dir(f.dir.path())
        .env("STYRKORT_TEST_PAUSE", point)
        .env("STYRKORT_TEST_PAUSE_MARKER", &marker)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !marker.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "run never reached {point}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

fn leftovers(f: &Fixture) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(f.path("out/t/.runs"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| format!(".runs/{}", e.file_name().to_string_lossy()))
        .collect();
    out.extend(
        std::fs::read_dir(f.path("out/t"))
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n.starts_with(".tmp-link")),
    );
    out.sort();
    out
}

#[test]
fn a_killed_run_leaves_the_published_run_intact_and_the_next_run_cleans_up() {
    for point in [
        "after_lock",
        "after_indicator_values.parquet",
        "after_deviations.parquet",
        "after_actions.parquet",
        "before_link_swap",
        "after_link_swap",
    ] {
        let f = good();
        assert_eq!(run(&f).status.code(), Some(0));
        let before = fingerprint(&f);
        let tables = table(&f, "indicator_values.parquet");
        let mut child = paused_run(&f, point);
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        if point == "after_link_swap" {
            // The new run was already published: complete, and the same values.
            assert!(table(&f, "indicator_values.parquet") == tables, "{point}");
            assert!(published(&f).join("manifest.json").is_file(), "{point}");
        } else {
            assert_eq!(
                fingerprint(&f),
                before,
                "{point}: the published run changed"
            );
        }
        let o = run(&f);
        assert_eq!(o.status.code(), Some(0), "{point}: next run: {}", text(&o));
        assert!(table(&f, "indicator_values.parquet") == tables, "{point}");
        // Only the published run remains: no staging folders, no temporary links.
        let left = leftovers(&f);
        assert_eq!(left.len(), 1, "{point}: {left:?}");
        let target = std::fs::read_link(published(&f)).unwrap();
        assert_eq!(
            format!(".runs/{}", target.file_name().unwrap().to_string_lossy()),
            left[0]
        );
    }
}

#[test]
fn a_second_run_fails_at_once_naming_the_holder_and_a_stale_lock_is_taken_over() {
    let f = good();
    assert_eq!(run(&f).status.code(), Some(0));
    let mut first = paused_run(&f, "after_lock");
    let started = Instant::now();
    let o = run(&f);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the second run waited"
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let msg = text(&o);
    assert!(msg.contains("another styrkort run is writing to"), "{msg}");
    assert!(msg.contains(&format!("pid {}", first.id())), "{msg}");
    assert!(msg.contains("started "), "{msg}");
    first.kill().unwrap();
    first.wait().unwrap();
    // The killed holder's text is still in the lock file: the next run takes over and says so.
    let o = run(&f);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let manifest = String::from_utf8(table(&f, "manifest.json")).unwrap();
    assert!(manifest.contains("took over a stale lock"), "{manifest}");
    assert!(text(&o).contains("took over a stale lock"), "{}", text(&o));
}

#[test]
fn a_full_disk_fails_cleanly() {
    for file in [
        "indicator_values.parquet",
        "deviations.parquet",
        "manifest.json",
    ] {
        let f = good();
        assert_eq!(run(&f).status.code(), Some(0));
        let before = fingerprint(&f);
        let o = styrkort(
            &f,
            &["run", "pipeline.toml", "--as-of", AS_OF, "--out", "out"],
            &[("STYRKORT_TEST_FAIL_WRITE", file)],
        );
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        assert!(text(&o).contains("No space left on device"), "{}", text(&o));
        assert!(text(&o).contains(file), "{}", text(&o));
        assert_eq!(fingerprint(&f), before, "{file}");
        assert_eq!(
            leftovers(&f).len(),
            1,
            "{file}: staging was not removed: {:?}",
            leftovers(&f)
        );
    }
}

#[test]
fn a_link_that_cannot_be_made_switches_neither() {
    // As when inodes run out between the two link swaps: both links are prepared first, so a
    // failure on either leaves both as they were.
    for link in ["link:latest".to_string(), format!("link:as_of={AS_OF}")] {
        let f = good();
        assert_eq!(run(&f).status.code(), Some(0));
        let before = fingerprint(&f);
        f.file("hr.csv", &HR.replace("100,7", "100,8"));
        let o = styrkort(
            &f,
            &["run", "pipeline.toml", "--as-of", AS_OF, "--out", "out"],
            &[("STYRKORT_TEST_FAIL_WRITE", &link)],
        );
        assert_eq!(o.status.code(), Some(1), "{link}: {}", text(&o));
        assert!(text(&o).contains("No space left on device"), "{}", text(&o));
        assert_eq!(fingerprint(&f), before, "{link}");
        // Only the published run's folder: no new run folder, no temporary link.
        assert_eq!(leftovers(&f).len(), 1, "{link}: {:?}", leftovers(&f));
    }
}

#[test]
fn reruns_are_byte_identical_and_skip_unchanged_skips() {
    let f = good();
    assert_eq!(run(&f).status.code(), Some(0));
    let link = std::fs::read_link(published(&f)).unwrap();
    let tables: Vec<Vec<u8>> = [
        "indicator_values.parquet",
        "deviations.parquet",
        "goal_status.parquet",
        "actions.parquet",
        "rejected_rows.parquet",
    ]
    .iter()
    .map(|t| table(&f, t))
    .collect();
    std::thread::sleep(Duration::from_millis(1100)); // a new run id
    let o = run(&f);
    assert_eq!(o.status.code(), Some(0));
    assert_ne!(
        std::fs::read_link(published(&f)).unwrap(),
        link,
        "a rerun publishes a new run"
    );
    for (i, t) in [
        "indicator_values.parquet",
        "deviations.parquet",
        "goal_status.parquet",
        "actions.parquet",
        "rejected_rows.parquet",
    ]
    .iter()
    .enumerate()
    {
        assert!(
            table(&f, t) == tables[i],
            "{t} differs between identical runs"
        );
    }
    let link = std::fs::read_link(published(&f)).unwrap();
    let skip = |f: &Fixture| {
        styrkort(
            f,
            &[
                "run",
                "pipeline.toml",
                "--as-of",
                AS_OF,
                "--out",
                "out",
                "--skip-unchanged",
            ],
            &[],
        )
    };
    let o = skip(&f);
    assert_eq!(o.status.code(), Some(0));
    assert!(text(&o).contains("unchanged"), "{}", text(&o));
    assert_eq!(
        std::fs::read_link(published(&f)).unwrap(),
        link,
        "nothing was republished"
    );
    // A changed input runs again.
    f.file("hr.csv", &HR.replace("100,7", "100,8"));
    let o = skip(&f);
    assert_eq!(o.status.code(), Some(0));
    assert!(!text(&o).contains("unchanged"));
    assert_ne!(std::fs::read_link(published(&f)).unwrap(), link);
    // So does a changed definition.
    let link = std::fs::read_link(published(&f)).unwrap();
    f.file("targets.csv", &TARGETS.replace("ceiling,5", "ceiling,6"));
    assert!(!text(&skip(&f)).contains("unchanged"));
    assert_ne!(std::fs::read_link(published(&f)).unwrap(), link);
}

#[test]
fn latest_points_at_the_newest_as_of() {
    let f = good();
    assert_eq!(run(&f).status.code(), Some(0));
    let o = styrkort(
        &f,
        &[
            "run",
            "pipeline.toml",
            "--as-of",
            "2024-03-01",
            "--out",
            "out",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        std::fs::read_link(f.path("out/t/latest")).unwrap(),
        Path::new(&format!("as_of={AS_OF}"))
    );
    assert!(
        f.path("out/t/as_of=2024-03-01/indicator_values.parquet")
            .is_file()
    );
    assert!(f.path("out/t/latest/indicator_values.parquet").is_file());
}

#[test]
fn json_logs_are_one_object_per_line_with_the_run_id() {
    let f = good();
    let o = styrkort(
        &f,
        &[
            "--log-format",
            "json",
            "run",
            "pipeline.toml",
            "--as-of",
            AS_OF,
            "--out",
            "out",
        ],
        &[("STYRKORT_LOG", "info")],
    );
    assert_eq!(o.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&o.stderr);
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines.len() >= 5, "{stderr}");
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["stage"] == "compute_sources"),
        "{stderr}"
    );
    // Every line, including those from the worker threads computing sources, has the run id.
    assert!(
        lines.iter().all(|l| l["spans"]
            .as_array()
            .is_some_and(|spans| spans.iter().any(|s| s["run_id"].is_string()))),
        "{stderr}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["message"] == "source computed"
                && l["fields"]["value_rows"].is_number()),
        "{stderr}"
    );
}

#[test]
fn an_as_of_far_in_the_future_is_refused_and_leaves_latest_alone() {
    let f = good();
    assert_eq!(run(&f).status.code(), Some(0));
    let before = fingerprint(&f);
    // A typo for 2025: refused before anything is computed or published.
    let o = styrkort(
        &f,
        &[
            "run",
            "pipeline.toml",
            "--as-of",
            "2205-01-01",
            "--out",
            "out",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("as-of date 2205-01-01 is more than a month after today")
            && text(&o).contains("--allow-future"),
        "{}",
        text(&o)
    );
    // Allowed, but 977 years of months is a mistake in the dates, not an allocation panic.
    let o = run_with(&f, "2999-12-31", &["--allow-future"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("the run would cover 11711 months (2024-01 to 2999-11), more than 1200"),
        "{}",
        text(&o)
    );
    assert_eq!(fingerprint(&f), before);
    assert!(!f.path("out/t/as_of=2205-01-01").exists());
}

#[test]
fn aggregates_that_are_not_finite_become_null_with_a_warning() {
    let f = good();
    // Division by zero inside a row expression, and sums that overflow a float.
    let hr = "month,cc,person,gender,hours,sick
2024-01-01,100,p1,K,1e308,5
2024-01-01,100,p2,K,1e308,5
2024-01-01,200,p3,M,80,4
";
    f.file("hr.csv", hr);
    let indicators = INDICATOR.replace("[[goals]]", "").replace(
        "id = \"G\"\nname = \"g\"\nlevel = \"kf\"\nowner = \"K\"\nbasis = \"law\"\nreference = \"r\"\nindicators = [\"sick_pct\"]",
        "",
    ) + r#"
[[indicators]]
id = "ratio_in_row"
name = "r"
source = "hr"
numerator = "sum(sick / (hours - hours))"
grains = ["month"]
polarity = "neutral"

[[indicators]]
id = "hours"
name = "h"
source = "hr"
numerator = "sum(hours)"
grains = ["month"]
polarity = "neutral"

[[goals]]
id = "G"
name = "g"
level = "kf"
owner = "K"
basis = "law"
reference = "r"
indicators = ["sick_pct", "ratio_in_row", "hours"]
"#;
    write_pipeline(&f, "fail", SOURCE, &indicators);
    let o = run(&f);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("not finite") && text(&o).contains("ratio_in_row"),
        "a warning names the cells:\n{}",
        text(&o)
    );
    let values = common::read_parquet(&published(&f).join("indicator_values.parquet"));
    let cell =
        |ind: &str, unit: &str| common::cell(&values, ind, unit, "month", "2024-01", "total");
    // Unit A1 has 2 rows: 1e308 + 1e308 overflows; the row count stays.
    let hours = cell("hours", "A1");
    assert_eq!(
        (hours.numerator, hours.value, hours.n_rows),
        (None, None, 2)
    );
    let a2 = cell("hours", "A2");
    assert_eq!(a2.value, Some(80.0));
    let ratio = cell("ratio_in_row", "A2");
    assert_eq!(
        (ratio.numerator, ratio.value, ratio.n_rows),
        (None, None, 1)
    );
    // No NaN or infinity anywhere in the table.
    for name in ["numerator", "denominator", "value"] {
        let c = values.column(name).unwrap().f64().unwrap();
        assert!(c.iter().flatten().all(f64::is_finite), "{name}");
    }
}

#[test]
fn every_file_is_read_once_and_a_symlink_loop_is_refused() {
    let f = good();
    assert_eq!(run(&f).status.code(), Some(0));
    let values = table(&f, "indicator_values.parquet");
    assert!(!values.is_empty());
    // A second link to the same file, matched by the pattern: read once, same numbers.
    std::os::unix::fs::symlink(f.path("hr.csv"), f.path("hr_copy.csv")).unwrap();
    write_pipeline(
        &f,
        "fail",
        &SOURCE.replace("\"hr.csv\"", "\"hr*.csv\""),
        INDICATOR,
    );
    let o = run(&f);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("read once"), "{}", text(&o));
    assert_eq!(table(&f, "indicator_values.parquet"), values);
    std::fs::remove_file(f.path("hr_copy.csv")).unwrap();
    // A recursive pattern through a link back up: refused, nothing published.
    write_pipeline(&f, "fail", SOURCE, INDICATOR);
    assert_eq!(run(&f).status.code(), Some(0));
    let before_loop = fingerprint(&f);
    std::fs::create_dir(f.path("sub")).unwrap();
    std::os::unix::fs::symlink("..", f.path("sub/up")).unwrap();
    write_pipeline(
        &f,
        "fail",
        &SOURCE.replace("\"hr.csv\"", "\"**/hr.csv\""),
        INDICATOR,
    );
    let o = run(&f);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("symlink") && text(&o).contains("sub/up") && text(&o).contains("loop"),
        "{}",
        text(&o)
    );
    assert_eq!(fingerprint(&f), before_loop);
}

#[test]
fn definitions_tables_must_be_regular_files_with_distinct_columns() {
    let f = good();
    assert_eq!(run(&f).status.code(), Some(0));
    let before = fingerprint(&f);
    // Runs the binary, killed after 30 s so that a hang fails the test instead of CI.
    let bounded_run = |f: &Fixture| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_styrkort"))
            .args(["run", "pipeline.toml", "--as-of", AS_OF, "--out", "out"])
            .current_dir(f.dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while child.try_wait().unwrap().is_none() {
            if started.elapsed() > Duration::from_secs(30) {
                child.kill().unwrap();
                panic!("the run hangs");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        child.wait_with_output().unwrap()
    };
    // targets.csv as a FIFO nobody writes to: refused at once, not a hang.
    std::fs::remove_file(f.path("targets.csv")).unwrap();
    let made = Command::new("mkfifo")
        .arg(f.path("targets.csv"))
        .status()
        .unwrap();
    assert!(made.success());
    let o = bounded_run(&f);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("targets.csv") && text(&o).contains("not a regular file"),
        "{}",
        text(&o)
    );
    std::fs::remove_file(f.path("targets.csv")).unwrap();
    // org units pointing at /dev/zero: refused, not an allocation panic.
    f.file("targets.csv", TARGETS);
    std::fs::remove_file(f.path("org.csv")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", f.path("org.csv")).unwrap();
    let o = bounded_run(&f);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("not a regular file"), "{}", text(&o));
    std::fs::remove_file(f.path("org.csv")).unwrap();
    f.file("org.csv", ORG);
    // A column named twice in a header.
    f.file(
        "targets.csv",
        "indicator_id,org_unit_id,period,kind,value,value,value_high,tolerance,compare_to,note\n",
    );
    let o = bounded_run(&f);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("targets.csv:1") && text(&o).contains("column 'value' appears twice"),
        "{}",
        text(&o)
    );
    assert_eq!(fingerprint(&f), before);
}

#[test]
fn a_column_outside_an_aggregate_is_a_definition_error_naming_the_indicator() {
    let f = good();
    assert_eq!(run(&f).status.code(), Some(0));
    let before = fingerprint(&f);
    write_pipeline(
        &f,
        "fail",
        SOURCE,
        &INDICATOR.replace("numerator = \"sum(sick)\"", "numerator = \"sick\""),
    );
    for command in ["validate", "run"] {
        let o = match command {
            "validate" => styrkort(&f, &["validate", "pipeline.toml"], &[]),
            _ => run(&f),
        };
        assert_eq!(o.status.code(), Some(2), "{command}: {}", text(&o));
        assert!(
            text(&o).contains("indicator 'sick_pct'")
                && text(&o).contains("column 'sick' is used outside an aggregate"),
            "{command}: {}",
            text(&o)
        );
        assert!(text(&o).len() < 1000, "a short message: {}", text(&o));
    }
    assert_eq!(fingerprint(&f), before);
}

#[test]
fn json_logs_default_to_info_include_errors_and_plain_logs_have_no_colour_codes() {
    let f = good();
    // No STYRKORT_LOG: JSON logs still carry the run's events.
    let args = |as_of: &'static str| {
        [
            "--log-format",
            "json",
            "run",
            "pipeline.toml",
            "--as-of",
            as_of,
            "--out",
            "out",
        ]
    };
    let o = styrkort(&f, &args(AS_OF), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let stderr = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(stderr.contains("\"run started\""), "{stderr}");
    // A failure is a JSON line too, with the exit code.
    let o = styrkort(&f, &args("2023-06-01"), &[]);
    assert_eq!(o.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&o.stderr).to_string();
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines.iter().any(|l| l["level"] == "ERROR"
            && l["fields"]["exit_code"] == 2
            && l["fields"]["error"]
                .as_str()
                .is_some_and(|e| e.contains("leaves no complete month"))),
        "{stderr}"
    );
    // Human logs written to a pipe or file: no ANSI escape codes.
    let o = styrkort(
        &f,
        &["run", "pipeline.toml", "--as-of", AS_OF, "--out", "out"],
        &[("STYRKORT_LOG", "info")],
    );
    assert_eq!(o.status.code(), Some(0));
    assert!(!String::from_utf8_lossy(&o.stderr).contains('\u{1b}'));
    assert!(String::from_utf8_lossy(&o.stderr).contains("run started"));
}

#[test]
fn blank_lines_in_a_source_are_not_rows() {
    let f = good();
    assert_eq!(run(&f).status.code(), Some(0));
    let values = table(&f, "indicator_values.parquet");
    // on_bad_rows = "fail": a phantom rejected row would fail the run.
    let mut lines: Vec<&str> = HR.lines().collect();
    lines.insert(3, "");
    f.file("hr.csv", &(lines.join("\n") + "\n\n"));
    let o = run(&f);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(table(&f, "indicator_values.parquet"), values);
    // A bad value after the blank line is reported on its physical line.
    let mut lines: Vec<String> = HR.lines().map(String::from).collect();
    lines.insert(3, String::new());
    // lines[4] is physical line 5 (the header is line 1, the blank line 4).
    lines[4] = lines[4].replacen(",100,", ",abc,", 1);
    f.file("hr.csv", &(lines.join("\n") + "\n"));
    let o = run(&f);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("hr.csv line/row 5: column 'cc': unknown org code 'abc'"),
        "{}",
        text(&o)
    );
}

/// Today's date, as the binary sees it (local time).
fn today() -> chrono::NaiveDate {
    chrono::Local::now().date_naive()
}

#[test]
fn a_stale_feed_fails_a_live_run_and_warns_when_asked_to() {
    // The data ends in March 2024. A run as of today (live data) expects last month's rows.
    let f = good();
    let today = today().to_string();
    let o = run_with(&f, &today, &[]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("source 'hr' is stale: latest month with rows 2024-03"),
        "{out}"
    );
    assert!(
        out.contains("max_lag_months = 1, the default of a run as of today"),
        "{out}"
    );
    assert!(!f.path("out/t/latest").exists(), "nothing is published");

    // Historical as-of dates have no default limit: the fixture's run passes.
    assert_eq!(run(&f).status.code(), Some(0));

    // A declared limit applies to any as-of: as of 2024-06-01 the run ends in May, two months
    // after the data.
    let source = SOURCE.replace(
        "org_codes = \"mapping\"",
        "org_codes = \"mapping\"\nmax_lag_months = 1",
    );
    write_pipeline(&f, "fail", &source, INDICATOR);
    let o = run_with(&f, "2024-06-01", &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("2 month(s) before the run's last month 2024-05"),
        "{}",
        text(&o)
    );
    assert_eq!(run_with(&f, "2024-05-01", &[]).status.code(), Some(0));

    // freshness = "warn": published, with the warning in the manifest.
    let source = SOURCE.replace(
        "org_codes = \"mapping\"",
        "org_codes = \"mapping\"\nfreshness = \"warn\"",
    );
    write_pipeline(&f, "fail", &source, INDICATOR);
    let o = run_with(&f, &today, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(f.path("out/t/latest/manifest.json")).unwrap(),
    )
    .unwrap();
    let warnings = manifest["warnings"].to_string();
    assert!(warnings.contains("source 'hr' is stale"), "{warnings}");
    assert_eq!(manifest["sources"][0]["latest_month"], "2024-03");
    let freshness = &manifest["sources"][0]["gates"][1];
    assert_eq!(freshness["gate"], "freshness");
    assert_eq!(freshness["outcome"], "warn");
}

#[test]
fn a_real_folder_where_a_link_belongs_is_refused_and_left_untouched() {
    for link in [format!("as_of={AS_OF}"), "latest".to_string()] {
        let f = good();
        assert_eq!(run(&f).status.code(), Some(0));
        // An analyst replaced the link with a real copy and keeps notes in it.
        let path = f.path("out/t").join(&link);
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("notes.txt"), "mina anteckningar").unwrap();
        let o = run(&f);
        let out = text(&o);
        assert_eq!(o.status.code(), Some(1), "{link}: {out}");
        assert!(
            out.contains(&format!(
                "{link} is a real folder, not a link styrkort made"
            )),
            "{out}"
        );
        assert_eq!(
            std::fs::read_to_string(path.join("notes.txt")).unwrap(),
            "mina anteckningar",
            "{link}: the notes survive"
        );
        // A second run (which cleans up leftovers) still leaves them alone.
        assert_eq!(run(&f).status.code(), Some(1));
        assert!(path.join("notes.txt").exists(), "{link}");
        if link == "latest" {
            // The as-of link was not switched: no half publish.
            assert!(std::fs::read_link(published(&f)).is_ok());
        }
    }
}

#[test]
fn skip_unchanged_reruns_a_damaged_or_incomplete_run() {
    let f = good();
    assert_eq!(run(&f).status.code(), Some(0));
    let values = table(&f, "indicator_values.parquet");
    let deviations = table(&f, "deviations.parquet");
    // Damage one table: truncate it.
    std::fs::write(published(&f).join("deviations.parquet"), &deviations[..100]).unwrap();
    let o = run_with(&f, AS_OF, &["--skip-unchanged"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("do not match its manifest"),
        "{}",
        text(&o)
    );
    assert_eq!(table(&f, "deviations.parquet"), deviations, "recomputed");
    assert_eq!(table(&f, "indicator_values.parquet"), values);
    // Remove one: also recomputed.
    std::fs::remove_file(published(&f).join("signals.parquet")).unwrap();
    assert_eq!(
        run_with(&f, AS_OF, &["--skip-unchanged"]).status.code(),
        Some(0)
    );
    assert!(published(&f).join("signals.parquet").exists());
    // Intact: skipped (the run folder stays the same).
    let target = std::fs::read_link(published(&f)).unwrap();
    let o = run_with(&f, AS_OF, &["--skip-unchanged"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(std::fs::read_link(published(&f)).unwrap(), target);
}

#[test]
fn a_file_written_to_after_it_was_hashed_is_refused() {
    let f = good();
    let loaded = styrkort::load(&f.path("pipeline.toml")).unwrap();
    let inputs = styrkort::expand_inputs(&loaded.pipeline).unwrap();
    let hr = &inputs["hr"][0];
    hr.check_unchanged().unwrap();
    // The export appends rows after the run hashed the file.
    let mut more = std::fs::read_to_string(f.path("hr.csv")).unwrap();
    more.push_str("2024-03-01,100,p1,K,100,1\n");
    std::fs::write(f.path("hr.csv"), more).unwrap();
    let err = hr.check_unchanged().unwrap_err().to_string();
    assert!(
        err.contains("hr.csv: the file changed while the run read it"),
        "{err}"
    );
}

#[test]
fn fail_on_new_alerts_only_on_statuses_that_are_new_since_the_last_run() {
    let f = good();
    let fail_on_new = |f: &Fixture| run_with(f, AS_OF, &["--fail-on", "new:not_met"]);
    // No earlier run: every not-met row is new (A1 at 7 % in March, above 5 + 1 tolerance).
    let o = fail_on_new(&f);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    // The same data again: nothing new, no alarm — though `not_met` still rings.
    let o = fail_on_new(&f);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        run_with(&f, AS_OF, &["--fail-on", "not_met"]).status.code(),
        Some(3)
    );
    // B1's March sick hours go from 0 to 20: B1 25 % in March and 22/160 = 13.75 % in Q1, B
    // the same, the kommun 27/180 = 15 % and 44/540 = 8.1 % — six series newly not met
    // (month and quarter of B1, B and K); A1 and A were not met already.
    f.file(
        "hr.csv",
        &HR.replace("2024-03-01,200,p2,M,80,0", "2024-03-01,200,p2,M,80,20"),
    );
    let o = fail_on_new(&f);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        text(&o).contains("--fail-on: 6 row(s) new:not_met"),
        "{}",
        text(&o)
    );
    assert_eq!(fail_on_new(&f).status.code(), Some(0));
}

#[test]
fn a_failed_run_logs_its_run_id_stage_and_exit_code_as_json() {
    let f = good();
    f.file("hr.csv", &HR.replace("-01-01,", "-01,"));
    write_pipeline(&f, "reject", SOURCE, INDICATOR);
    let o = styrkort(
        &f,
        &[
            "--log-format",
            "json",
            "run",
            "pipeline.toml",
            "--as-of",
            AS_OF,
            "--out",
            "out",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&o.stderr).to_string();
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let started = lines
        .iter()
        .find(|l| l["fields"]["message"] == "run started")
        .expect("a run started event");
    let run_id = started["span"]["run_id"].as_str().unwrap();
    let failed = lines
        .iter()
        .find(|l| l["level"] == "ERROR" && l["fields"]["message"] == "run failed")
        .unwrap_or_else(|| panic!("{stderr}"));
    assert_eq!(failed["fields"]["run_id"], run_id);
    assert_eq!(failed["fields"]["stage"], "quality_gates");
    assert_eq!(failed["fields"]["exit_code"], 1);
    assert!(
        failed["fields"]["error"]
            .as_str()
            .unwrap()
            .contains("source 'hr': 2 of 6 rows rejected")
    );
    // The gate's own event names source, gate and outcome.
    assert!(lines.iter().any(|l| l["fields"]["message"] == "gate"
        && l["fields"]["source"] == "hr"
        && l["fields"]["gate"] == "rejected_share"
        && l["fields"]["outcome"] == "fail"));
}

#[test]
fn line_numbers_are_physical_with_crlf_and_quoted_newlines() {
    // hr.csv with Windows line ends and a person cell spanning two lines (line 3–4); the unknown
    // code is on physical line 6.
    let hr = "month,cc,person,gender,hours,sick\r\n\
              2024-01-01,100,p1,K,100,5\r\n\
              2024-01-01,200,\"p2\r\n(vikarie)\",M,80,4\r\n\
              2024-02-01,100,p1,K,100,6\r\n\
              2024-02-01,999,p9,M,80,2\r\n\
              2024-03-01,100,p1,K,100,7\r\n";
    let f = good();
    f.file("hr.csv", hr);
    let source = SOURCE.replace(
        "org_codes = \"mapping\"",
        "org_codes = \"mapping\"\nmax_rejected_share = 1",
    );
    write_pipeline(&f, "reject", &source, INDICATOR);
    // The target on physical line 3 of a CRLF targets file whose line-2 note spans two lines.
    f.file(
        "targets.csv",
        "indicator_id,org_unit_id,period,kind,value,value_high,tolerance,compare_to,note\r\n\
         sick_pct,A1,,ceiling,5,,1,,\"två\r\nrader\"\r\n\
         sick_pct,,,ceiling,5,,1,,\r\n",
    );
    let o = run(&f);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let rejected = common::read_parquet(&published(&f).join("rejected_rows.parquet"));
    assert_eq!(
        rejected.column("row").unwrap().i64().unwrap().get(0),
        Some(6),
        "{rejected}"
    );
    let deviations = common::read_parquet(&published(&f).join("deviations.parquet"));
    let origins = common::strings(&deviations, "target_origin");
    assert!(
        origins.iter().any(|o| o.ends_with("targets.csv:2")),
        "{origins:?}"
    );
    assert!(
        origins.iter().any(|o| o.ends_with("targets.csv:4")),
        "{origins:?}"
    );
    assert!(
        !origins.iter().any(|o| o.ends_with("targets.csv:1")),
        "{origins:?}"
    );

    // A ragged row after the quoted newline: named by its physical line, 6.
    f.file(
        "hr.csv",
        &hr.replace("2024-02-01,999,p9,M,80,2", "2024-02-01,999,p9,M,80"),
    );
    let o = run(&f);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("hr.csv: line 6: 5 fields where the header has 6"),
        "{}",
        text(&o)
    );
    // A bad target after a note spanning lines: named by its physical line, 4.
    f.file("hr.csv", hr);
    f.file(
        "targets.csv",
        "indicator_id,org_unit_id,period,kind,value,value_high,tolerance,compare_to,note\r\n\
         sick_pct,A1,,ceiling,5,,1,,\"två\r\nrader\"\r\n\
         sick_pct,NOPE,,ceiling,5,,1,,\r\n",
    );
    let o = run(&f);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("targets.csv:4:"), "{}", text(&o));
}

#[test]
fn a_unit_whose_parent_disappeared_is_a_warning_from_validate_and_run() {
    let f = good();
    assert_eq!(run(&f).status.code(), Some(0));
    // The star schema's org table is published with the run.
    let org = common::read_parquet(&published(&f).join("org_units.parquet"));
    assert_eq!(common::strings(&org, "org_path")[4], "K/B/B1");
    // Nämnd B is deleted and B1 moved up under the kommun.
    f.file(
        "org.csv",
        &common::ORG
            .replace("B,Nämnd B,K,namnd\n", "")
            .replace("B1,Enhet B1,B,enhet", "B1,Enhet B1,K,enhet"),
    );
    let expected = "unit 'B1': its parent 'B' in the last published run is no longer in the org tree; it now sits under 'K'";
    let o = styrkort(&f, &["validate", "pipeline.toml", "--out", "out"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains(expected), "{}", text(&o));
    let o = run(&f);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let manifest = String::from_utf8(table(&f, "manifest.json")).unwrap();
    assert!(manifest.contains(expected), "{manifest}");
}

/// A source of several files (monthly exports) gives the values of the same rows in one file,
/// with each file in the manifest in path order. The files are checked side by side, and a
/// fault is reported the same way every time: the source's first file in path order that
/// fails, and across sources the first source in the pipeline's order.
#[test]
fn files_read_side_by_side_report_the_first_fault_in_order() {
    let f = good();
    assert_eq!(run(&f).status.code(), Some(0));
    let one_file = table(&f, "indicator_values.parquet");
    assert!(!one_file.is_empty());

    // The same rows as three files, one month each (names sort in month order).
    let lines: Vec<&str> = HR.lines().collect();
    let (header, rows) = (lines[0], &lines[1..]);
    for (k, month) in ["2024-01", "2024-02", "2024-03"].iter().enumerate() {
        let part: Vec<&str> = rows
            .iter()
            .copied()
            .filter(|r| r.starts_with(month))
            .collect();
        assert_eq!(part.len(), 2);
        f.file(
            &format!("hr_{}.csv", k + 1),
            &format!("{header}\n{}\n", part.join("\n")),
        );
    }
    std::fs::remove_file(f.path("hr.csv")).unwrap();
    let split = SOURCE.replace("\"hr.csv\"", "\"hr_*.csv\"");
    write_pipeline(&f, "fail", &split, INDICATOR);
    let o = run(&f);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(table(&f, "indicator_values.parquet"), one_file);
    let manifest: serde_json::Value =
        serde_json::from_str(&String::from_utf8(table(&f, "manifest.json")).unwrap()).unwrap();
    let files = manifest["sources"][0]["files"].as_array().unwrap();
    let names: Vec<&str> = files
        .iter()
        .map(|file| file["path"].as_str().unwrap().rsplit('/').next().unwrap())
        .collect();
    assert_eq!(names, ["hr_1.csv", "hr_2.csv", "hr_3.csv"]);
    assert!(files.iter().all(|file| file["rows"] == 2), "{files:?}");
    assert_eq!(manifest["sources"][0]["rows_read"], 6);

    // Two faulty files: the first in path order is named, every time.
    let before = fingerprint(&f);
    std::fs::write(f.path("hr_2.csv"), "").unwrap();
    f.file("hr_3.csv", &format!("{header}\n2024-03-01,100,p1,K,100\n"));
    for _ in 0..5 {
        let o = run(&f);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        assert!(
            text(&o).contains("hr_2.csv: the file is empty") && !text(&o).contains("hr_3.csv"),
            "{}",
            text(&o)
        );
    }
    assert_eq!(fingerprint(&f), before);

    // A second source whose file is missing: the first faulty source in the pipeline's order
    // is named, whichever comes first.
    // (Its org column holds unit ids: the code mapping has no entries for it.)
    let missing = SOURCE
        .replace("name = \"hr\"", "name = \"absent\"")
        .replace("\"hr.csv\"", "\"absent.csv\"")
        .replace("org_codes = \"mapping\"\n", "");
    for (sources, named, other) in [
        (format!("{split}\n{missing}"), "hr_2.csv", "absent.csv"),
        (format!("{missing}\n{split}"), "absent.csv", "hr_2.csv"),
    ] {
        write_pipeline(&f, "fail", &sources, INDICATOR);
        for _ in 0..3 {
            let o = run(&f);
            assert_eq!(o.status.code(), Some(1), "{}", text(&o));
            assert!(
                text(&o).contains(named) && !text(&o).contains(other),
                "{}",
                text(&o)
            );
        }
    }
    assert_eq!(fingerprint(&f), before);
}
