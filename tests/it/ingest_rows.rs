//! Ingest: code mapping with validity dates, rejected rows with file/line/column, rows outside the
//! run's months, `on_bad_rows = "fail"`, and Parquet sources.

use crate::common;

use common::*;
use polars::prelude::*;

const MAPPING: &str = "source,code,unit_id,valid_from,valid_to
hr,100,A1,,
hr,200,A2,,2024-01-31
hr,200,B1,2024-02-01,
";

const HR_CODES: &str = "month,cc,person,gender,hours,sick
2024-01-15,100,p1,K,10,1
2024-01-20,200,p2,K,20,2
2024-02-03,200,p2,K,30,3
2024-02-03,999,p9,K,40,4
,100,p1,K,50,5
2024-02-10,100,p1,K,abc,5
2024-03-01,100,p1,K,NaN,0
2023-12-01,100,p1,K,10,0
";

fn fixture(on_bad_rows: &str) -> Fixture {
    let f = Fixture::new();
    f.file("mapping.csv", MAPPING);
    f.file("hr.csv", HR_CODES);
    let source = HR_SOURCE
        .replace(
            "org_column = \"unit\"",
            // Half the rows are bad on purpose: the rejected-share gate is not under test here.
            "org_column = \"cc\"\norg_codes = \"mapping\"\nmax_rejected_share = 1",
        )
        .replace("unit = \"string\"", "cc = \"string\"");
    f.pipeline_with(
        &format!("on_bad_rows = \"{on_bad_rows}\""),
        &(source + &indicator("hours", "numerator = \"sum(hours)\"\ngrains = [\"month\"]")),
    );
    f
}

#[test]
fn codes_map_to_units_by_the_rows_date() {
    let f = fixture("reject");
    let df = f.values("2024-04-01");
    assert_close(value(&df, "hours", "A1", "month", "2024-01"), 10.0);
    // Code 200 belonged to A2 until 2024-01-31 and to B1 from 2024-02-01.
    assert_close(value(&df, "hours", "A2", "month", "2024-01"), 20.0);
    assert_close(value(&df, "hours", "B1", "month", "2024-02"), 30.0);
    assert_eq!(
        cell(&df, "hours", "A2", "month", "2024-02", "total").n_rows,
        0
    );
    assert_eq!(
        cell(&df, "hours", "B1", "month", "2024-01", "total").n_rows,
        0
    );
    // The kommun in February: only the B1 row is usable (the others are rejected).
    assert_close(value(&df, "hours", "K", "month", "2024-02"), 30.0);
}

#[test]
fn sources_sharing_a_code_system_share_its_mapping_rows() {
    // HR and the ledger both use cost centres: one set of mapping rows, keyed by the code
    // system, serves both (the per-source `hr` key keeps working beside it).
    let f = Fixture::new();
    f.file(
        "mapping.csv",
        "source,code,unit_id,valid_from,valid_to
kostnadsstalle,100,A1,,
kostnadsstalle,200,A2,,2024-01-31
kostnadsstalle,200,B1,2024-02-01,
",
    );
    f.file(
        "hr.csv",
        "month,cc,person,gender,hours,sick\n2024-01-15,100,p1,K,10,1\n2024-02-03,200,p2,K,30,3\n",
    );
    f.file(
        "ledger.csv",
        "month,cc,amount\n2024-01-31,200,500\n2024-02-29,200,700\n2024-02-29,100,50\n",
    );
    let hr = HR_SOURCE
        .replace(
            "org_column = \"unit\"",
            "org_column = \"cc\"\ncodes = \"kostnadsstalle\"",
        )
        .replace("unit = \"string\"", "cc = \"string\"");
    let ledger = r#"
[[sources]]
name = "ledger"
path = "ledger.csv"
format = "csv"
date_column = "month"
org_column = "cc"
codes = "kostnadsstalle"
[sources.columns]
month = "date"
cc = "string"
amount = "float"
"#;
    let body = hr
        + ledger
        + &indicator("hours", "numerator = \"sum(hours)\"\ngrains = [\"month\"]")
        + &indicator("cost", "numerator = \"sum(amount)\"\ngrains = [\"month\"]")
            .replace("source = \"hr\"", "source = \"ledger\"");
    f.pipeline(&body);
    let df = f.values("2024-03-01");
    assert_close(value(&df, "hours", "A1", "month", "2024-01"), 10.0);
    assert_close(value(&df, "hours", "B1", "month", "2024-02"), 30.0);
    // Code 200 is A2 in January and B1 from February, for the ledger too.
    assert_close(value(&df, "cost", "A2", "month", "2024-01"), 500.0);
    assert_close(value(&df, "cost", "B1", "month", "2024-02"), 700.0);
    assert_close(value(&df, "cost", "A1", "month", "2024-02"), 50.0);
    assert_close(value(&df, "cost", "K", "month", "2024-02"), 750.0);

    // A code system nobody declares is named with what the pipeline has.
    let mapping = std::fs::read_to_string(f.path("mapping.csv")).unwrap();
    f.file("mapping.csv", &(mapping + "kostnadstalle,300,A1,,\n"));
    let err = f.run("2024-03-01").err().expect("must fail").to_string();
    assert!(
        err.contains(
            "no source or code system 'kostnadstalle' (did you mean 'kostnadsstalle'?) (it has: hr, kostnadsstalle, ledger)"
        ),
        "{err}"
    );
}

#[test]
fn bad_rows_are_rejected_with_file_line_column_and_reason() {
    let f = fixture("reject");
    let summary = f.run("2024-04-01").unwrap();
    let rejected = read_parquet(&summary.run_dir.join("rejected_rows.parquet"));
    assert_eq!(rejected.height(), 4);
    let rows = ints(&rejected, "row");
    assert_eq!(rows, [5, 6, 7, 8]); // CSV line numbers, header = line 1
    let reasons: Vec<String> = strings(&rejected, "reason");
    assert_eq!(
        reasons[0],
        "column 'cc': unknown org code '999' on 2024-02-03"
    );
    assert_eq!(reasons[1], "column 'month': missing date");
    assert_eq!(reasons[2], "column 'hours': expected float, found 'abc'");
    assert_eq!(reasons[3], "column 'hours': expected float, found 'NaN'");
    let files: Vec<String> = strings(&rejected, "file");
    assert!(files.iter().all(|p| p.ends_with("hr.csv")), "{files:?}");
    let sources: Vec<String> = strings(&rejected, "source");
    assert!(sources.iter().all(|s| *s == "hr"));

    // The manifest counts what was read, rejected and left outside the run's months.
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(summary.run_dir.join("manifest.json")).unwrap(),
    )
    .unwrap();
    let source = &manifest["sources"][0];
    assert_eq!(source["rows_read"], 8);
    assert_eq!(source["rows_rejected"], 4);
    assert_eq!(source["rows_outside_periods"], 1);
    assert_eq!(source["files"][0]["rows"], 8);
    assert_eq!(source["files"][0]["size"], HR_CODES.len() as u64);
}

#[test]
fn on_bad_rows_fail_stops_the_run_and_names_the_first_bad_row() {
    let f = fixture("fail");
    let err = f.run("2024-04-01").err().expect("the run must fail");
    assert_eq!(err.exit_code(), 1);
    let text = err.to_string();
    assert!(text.contains("4 bad row(s)"), "{text}");
    assert!(
        text.contains("hr.csv line/row 5: column 'cc': unknown org code '999'"),
        "{text}"
    );
    assert!(
        !f.path("out/t").join("as_of=2024-04-01").exists(),
        "nothing is published"
    );
}

#[test]
fn parquet_sources_are_read_with_their_own_types() {
    let f = Fixture::new();
    let rows = df!(
        "month" => ["2024-01-01", "2024-01-01", "2024-02-01"],
        "unit" => ["A1", "A2", "A1"],
        "person" => ["p1", "p2", "p1"],
        "gender" => ["K", "M", "K"],
        "hours" => [100.0, 300.0, 50.0],
        "sick" => [5i64, 6, 1],
    )
    .unwrap();
    write_hr_parquet(&f.path("hr.parquet"), rows);
    let source = HR_SOURCE
        .replace("path = \"hr.csv\"", "path = \"hr*.parquet\"")
        .replace("format = \"csv\"", "format = \"parquet\"");
    f.pipeline(
        &(source
            + &indicator(
                "sick_pct",
                "numerator = \"sum(sick)\"\ndenominator = \"sum(hours)\"\nscale = 100\ngrains = [\"month\", \"ytd\"]",
            )),
    );
    let out = f.values("2024-03-01");
    assert_close(
        value(&out, "sick_pct", "A", "month", "2024-01"),
        100.0 * 11.0 / 400.0,
    );
    assert_close(
        value(&out, "sick_pct", "K", "ytd", "2024-YTD02"),
        100.0 * 12.0 / 450.0,
    );
}

#[test]
fn parquet_rows_are_named_by_their_row_in_each_file_and_an_empty_row_is_not_a_row() {
    let f = Fixture::new();
    let write = |name: &str, rows: DataFrame| write_hr_parquet(&f.path(name), rows);
    // No empty cell: its footer shows no row can be blank, so columns no indicator needs
    // (person, gender) are not read. Row 3 has an unknown unit.
    write(
        "hr_a.parquet",
        df!(
            "month" => ["2024-01-01", "2024-01-01", "2024-02-01", "2024-02-01"],
            "unit" => ["A1", "A2", "ZZ", "A1"],
            "person" => ["p1", "p2", "p3", "p1"],
            "gender" => ["K", "M", "K", "K"],
            "hours" => [100.0, 300.0, 10.0, 50.0],
            "sick" => [5i64, 6, 1, 1],
        )
        .unwrap(),
    );
    // Row 2 is empty in every column (not a row, not rejected); row 4 has no date (rejected).
    write(
        "hr_b.parquet",
        df!(
            "month" => [Some("2024-01-01"), None, Some("2024-02-01"), None],
            "unit" => [Some("A1"), None, Some("A2"), Some("A1")],
            "person" => [Some("p4"), None, None, Some("p5")],
            "gender" => [Some("K"), None, Some("M"), Some("K")],
            "hours" => [Some(20.0), None, Some(40.0), Some(70.0)],
            "sick" => [Some(2i64), None, Some(3), Some(1)],
        )
        .unwrap(),
    );
    let source = HR_SOURCE
        .replace("path = \"hr.csv\"", "path = \"hr_*.parquet\"")
        .replace("format = \"csv\"", "format = \"parquet\"")
        .replace(
            "org_column = \"unit\"",
            "org_column = \"unit\"\nmax_rejected_share = 1",
        );
    let pipeline = f.pipeline(
        &(source + &indicator("hours", "numerator = \"sum(hours)\"\ngrains = [\"month\"]")),
    );
    let summary = f.run("2024-03-01").unwrap();
    let rejected = read_parquet(&summary.run_dir.join("rejected_rows.parquet"))
        .sort(["file", "row"], Default::default())
        .unwrap();
    let files: Vec<String> = strings(&rejected, "file");
    let rows = ints(&rejected, "row");
    let reasons = strings(&rejected, "reason");
    assert_eq!(rows, [3, 4], "{rejected}"); // 1-based rows of each file
    assert!(files[0].ends_with("hr_a.parquet") && files[1].ends_with("hr_b.parquet"));
    assert!(
        reasons[0].starts_with("column 'unit': unknown org code 'ZZ'"),
        "{reasons:?}"
    );
    assert_eq!(reasons[1], "column 'month': missing date");

    let out = read_parquet(&summary.run_dir.join("indicator_values.parquet"));
    assert_close(value(&out, "hours", "A1", "month", "2024-01"), 100.0 + 20.0);
    assert_close(value(&out, "hours", "A2", "month", "2024-01"), 300.0);
    assert_close(value(&out, "hours", "A1", "month", "2024-02"), 50.0);
    assert_close(value(&out, "hours", "A2", "month", "2024-02"), 40.0);
    assert_close(value(&out, "hours", "K", "month", "2024-01"), 420.0);

    // hr_a is read for the date, the unit and the two numbers (their conversion is checked);
    // hr_b for every column, to tell its empty row from a row with values.
    let explained = styrkort::explain(&pipeline, None, None, true).unwrap();
    let plan = &explained[0].polars_plan;
    assert!(plan.contains("PROJECT 4/6 COLUMNS"), "{plan}");
    assert!(plan.contains("PROJECT 6/6 COLUMNS"), "{plan}");
}

/// A Parquet file whose footer shows a column without nulls skips that column's checks for a
/// missing value (they cannot fail there); a file of the same source with nulls keeps them.
#[test]
fn parquet_missing_value_checks_are_left_out_only_where_the_footer_shows_no_nulls() {
    let f = Fixture::new();
    let write = |name: &str, rows: DataFrame| write_hr_parquet(&f.path(name), rows);
    write(
        "hr_a.parquet",
        df!(
            "month" => ["2024-01-01", "2024-01-01"],
            "unit" => ["A1", "A2"],
            "person" => ["p1", "p2"],
            "gender" => ["K", "M"],
            "hours" => [100.0, 300.0],
            "sick" => [5.0, 6.0],
        )
        .unwrap(),
    );
    // Row 2 has no person (required), row 3 no unit: both rejected.
    write(
        "hr_b.parquet",
        df!(
            "month" => ["2024-01-01", "2024-01-01", "2024-01-01"],
            "unit" => [Some("A1"), Some("A1"), None],
            "person" => [Some("p3"), None, Some("p4")],
            "gender" => ["K", "K", "M"],
            "hours" => [20.0, 40.0, 70.0],
            "sick" => [1.0, 2.0, 3.0],
        )
        .unwrap(),
    );
    let source = HR_SOURCE
        .replace("path = \"hr.csv\"", "path = \"hr_*.parquet\"")
        .replace("format = \"csv\"", "format = \"parquet\"")
        .replace(
            "person = \"string\"",
            "person = { type = \"string\", required = true }",
        )
        .replace(
            "org_column = \"unit\"",
            "org_column = \"unit\"\nmax_rejected_share = 1",
        );
    f.pipeline(&(source + &indicator("hours", "numerator = \"sum(hours)\"\ngrains = [\"month\"]")));
    let summary = f.run("2024-02-01").unwrap();
    let rejected = read_parquet(&summary.run_dir.join("rejected_rows.parquet"))
        .sort(["file", "row"], Default::default())
        .unwrap();
    let files = strings(&rejected, "file");
    assert_eq!(ints(&rejected, "row"), [2, 3], "{rejected}");
    assert!(
        files.iter().all(|f| f.ends_with("hr_b.parquet")),
        "{files:?}"
    );
    assert_eq!(
        strings(&rejected, "reason"),
        [
            "column 'person': missing value (required)",
            "column 'unit': missing org code"
        ]
    );
    let out = read_parquet(&summary.run_dir.join("indicator_values.parquet"));
    assert_close(value(&out, "hours", "A1", "month", "2024-01"), 100.0 + 20.0);
    assert_close(value(&out, "hours", "A2", "month", "2024-01"), 300.0);
}

#[test]
fn rows_per_month_count_every_usable_row_whatever_the_indicators_filter() {
    // Usable rows: 4 in January and February, 6 in March, 1 in April; the indicator counts only
    // gender K (2, 2, 3, 1), but the volume gate must see every usable row: April is below half
    // the median of the months before it (4). December 2023 is outside the run; the unknown
    // unit's row is rejected; neither counts.
    let mut csv = String::from("month,unit,person,gender,hours,sick\n");
    for (month, k, m) in [("01", 2, 2), ("02", 2, 2), ("03", 3, 3), ("04", 1, 0)] {
        for (gender, n) in [("K", k), ("M", m)] {
            for i in 0..n {
                csv += &format!("2024-{month}-0{},A1,p{i},{gender},10,1\n", i + 1);
            }
        }
    }
    csv += "2023-12-01,A1,p1,K,10,1\n2024-04-02,ZZ,p1,M,10,1\n2024-04-03,ZZ,p2,M,10,1\n";
    let f = Fixture::new();
    f.file("hr.csv", &csv);
    let source = HR_SOURCE.replace(
        "org_column = \"unit\"",
        "org_column = \"unit\"\nmax_rejected_share = 1",
    );
    f.pipeline(
        &(source
            + &indicator(
                "hours_k",
                "numerator = \"sum(hours)\"\nfilter = \"gender = 'K'\"\ngrains = [\"month\"]",
            )),
    );
    let summary = f.run("2024-05-01").unwrap();
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(summary.run_dir.join("manifest.json")).unwrap(),
    )
    .unwrap();
    let source = &manifest["sources"][0];
    assert_eq!(source["rows_rejected"], 2);
    assert_eq!(source["rows_outside_periods"], 1);
    assert_eq!(source["latest_month"], "2024-04");
    let volume = &source["gates"][1];
    assert_eq!(volume["gate"], "volume");
    assert!(
        volume["message"]
            .as_str()
            .unwrap()
            .contains("2024-04 has 1 rows (median of the months before: 4)"),
        "{volume}"
    );
    let out = read_parquet(&summary.run_dir.join("indicator_values.parquet"));
    assert_close(value(&out, "hours_k", "A1", "month", "2024-03"), 30.0);
}

/// The source settings a Swedish Excel export needs, on the HR source.
fn dialect_fixture(file: &str, settings: &str) -> Fixture {
    let f = Fixture::new();
    let repo = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/dialects");
    std::fs::copy(repo.join(file), f.path("hr.csv")).unwrap();
    let source = HR_SOURCE.replace(
        "org_column = \"unit\"",
        &format!("org_column = \"unit\"\n{settings}"),
    );
    f.pipeline(
        &(source
            + &indicator(
                "sick_pct",
                "numerator = \"sum(sick)\"\ndenominator = \"sum(hours)\"\nscale = 100\ngrains = [\"month\"]",
            )),
    );
    f
}

/// Asserts `df` has the clean file's sick leave at every unit of the tree above the rows and in
/// both months: exactly, or within `relative` where a conversion may round (DECIMAL → float).
fn assert_like_clean(df: &DataFrame, clean: &DataFrame, what: &str, relative: f64) {
    for unit in ["A1", "A2", "A", "K"] {
        for period in ["2024-01", "2024-02"] {
            let (a, b) = (
                value(df, "sick_pct", unit, "month", period),
                value(clean, "sick_pct", unit, "month", period),
            );
            assert_eq!(a.is_some(), b.is_some(), "{what} {unit} {period}");
            if let (Some(a), Some(b)) = (a, b) {
                assert!(
                    (a - b).abs() <= relative * b.abs(),
                    "{what} {unit} {period}: {a} vs {b}"
                );
            }
        }
    }
}

#[test]
fn a_swedish_excel_export_reads_to_the_same_numbers_as_its_clean_twin() {
    let clean = dialect_fixture("hr_clean.csv", "").values("2024-03-01");
    let swedish = dialect_fixture(
        "hr_excel_sv.csv",
        "delimiter = \";\"\ndecimal = \",\"\nthousands = \" \"",
    )
    .values("2024-03-01");
    // By hand: January, A1 12.5 / 1234.5, the kommun (12.5 + 100) / (1234.5 + 2000).
    assert_close(
        value(&swedish, "sick_pct", "A1", "month", "2024-01"),
        100.0 * 12.5 / 1234.5,
    );
    assert_close(
        value(&swedish, "sick_pct", "K", "month", "2024-01"),
        100.0 * 112.5 / 3234.5,
    );
    assert_close(
        value(&swedish, "sick_pct", "A1", "month", "2024-02"),
        100.0 * 0.75 / 980.25,
    );
    assert_like_clean(&swedish, &clean, "excel sv", 0.0);
}

#[test]
fn a_semicolon_file_without_the_setting_says_which_delimiter_to_set() {
    let f = dialect_fixture("hr_excel_sv.csv", "");
    let err = f.run("2024-03-01").err().expect("the run must fail");
    let text = err.to_string();
    assert!(
        text.contains("hr.csv: line 1: the header is one field that contains ';'")
            && text.contains("set delimiter = \";\""),
        "{text}"
    );
}

#[test]
fn a_windows_1252_export_reads_with_its_encoding_and_says_so_without_it() {
    let sv = "delimiter = \";\"\ndecimal = \",\"\nthousands = \" \"";
    let clean = dialect_fixture("hr_clean.csv", "").values("2024-03-01");
    let f = dialect_fixture(
        "hr_windows1252.csv",
        &format!("{sv}\nencoding = \"windows-1252\""),
    );
    let latin = f.values("2024-03-01");
    assert_like_clean(&latin, &clean, "windows-1252", 0.0);
    // The manifest hashes the file as it is on disk, not its UTF-8 copy.
    let original = std::fs::read(f.path("hr.csv")).unwrap();
    let summary = f.run("2024-03-01").unwrap();
    let manifest = std::fs::read_to_string(summary.run_dir.join("manifest.json")).unwrap();
    assert!(manifest.contains(&blake3::hash(&original).to_hex().to_string()));
    // Without the setting: the line, and what to do.
    let err = dialect_fixture("hr_windows1252.csv", sv)
        .run("2024-03-01")
        .err()
        .expect("the run must fail")
        .to_string();
    assert!(
        err.contains("hr.csv: line 2, field 3: not valid UTF-8")
            && err.contains("encoding = \"windows-1252\""),
        "{err}"
    );
}

/// `dialect_fixture` with the month column declared as `decl` (a CSV).
fn month_fixture(file: &str, decl: &str) -> Fixture {
    let f = dialect_fixture(file, "max_rejected_share = 1");
    let text = std::fs::read_to_string(f.path("pipeline.toml"))
        .unwrap()
        .replace("month = \"date\"", &format!("month = {decl}"));
    f.file("pipeline.toml", &text);
    f
}

#[test]
fn months_as_yyyy_mm_and_dates_in_a_declared_format_read_like_the_clean_file() {
    let clean = dialect_fixture("hr_clean.csv", "").values("2024-03-01");
    let month = month_fixture("hr_month.csv", "\"month\"").values("2024-03-01");
    let dmy = month_fixture("hr_dmy.csv", "{ type = \"date\", format = \"%d/%m/%Y\" }")
        .values("2024-03-01");
    // By hand: January at K is (12.5 + 100) / (1234.5 + 2000); February at A1 0.75 / 980.25.
    for df in [&month, &dmy] {
        assert_close(
            value(df, "sick_pct", "K", "month", "2024-01"),
            100.0 * 112.5 / 3234.5,
        );
        assert_close(
            value(df, "sick_pct", "A1", "month", "2024-02"),
            100.0 * 0.75 / 980.25,
        );
        assert_like_clean(df, &clean, "month / date format", 0.0);
    }
    // The clean file's ISO dates are not `%d/%m/%Y`: every row is rejected, saying what was
    // expected.
    let f = month_fixture("hr_clean.csv", "{ type = \"date\", format = \"%d/%m/%Y\" }");
    let summary = f.run("2024-03-01").unwrap();
    let rejected = read_parquet(&summary.run_dir.join("rejected_rows.parquet"));
    let reasons = strings(&rejected, "reason");
    assert_eq!(reasons.len(), 3);
    assert_eq!(
        reasons[0],
        "column 'month': expected date written %d/%m/%Y, found '2024-01-01'"
    );
}

#[test]
fn a_date_format_without_a_day_is_a_definition_error() {
    let f = month_fixture("hr_month.csv", "{ type = \"date\", format = \"%Y-%m\" }");
    let err = f.run("2024-03-01").err().expect("must fail").to_string();
    assert!(
        err.contains("column 'month': format '%Y-%m' does not name a day, a month and a year"),
        "{err}"
    );
}

#[test]
fn a_sql_server_parquet_export_reads_decimal_timestamp_and_integer_codes() {
    // hr_sqlserver.parquet holds the clean file's rows as SQL Server writes them: DECIMAL(10,2)
    // hours, a TIMESTAMP month (one at 13:45 on 31 January) and INTEGER cost centres.
    let clean = dialect_fixture("hr_clean.csv", "").values("2024-03-01");
    let f = Fixture::new();
    let source = common::sql_server_hr_source(&f);
    f.pipeline(
        &(source
            + &indicator(
                "sick_pct",
                "numerator = \"sum(sick)\"\ndenominator = \"sum(hours)\"\nscale = 100\ngrains = [\"month\"]",
            )),
    );
    let df = f.values("2024-03-01");
    assert_close(
        value(&df, "sick_pct", "K", "month", "2024-01"),
        100.0 * 112.5 / 3234.5,
    );
    assert_like_clean(&df, &clean, "sql server parquet", 1e-12);
}

/// The HR source read from `fixtures/dialects/hr_excel.xlsx`, sheet `sheet`.
fn excel_fixture(sheet: &str) -> Fixture {
    let f = Fixture::new();
    let repo = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/dialects");
    std::fs::copy(repo.join("hr_excel.xlsx"), f.path("hr.xlsx")).unwrap();
    let source = HR_SOURCE.replace("hr.csv", "hr.xlsx").replace(
        "format = \"csv\"",
        &format!("format = \"xlsx\"\nsheet = \"{sheet}\"\nmax_rejected_share = 1"),
    );
    f.pipeline(
        &(source
            + &indicator(
                "sick_pct",
                "numerator = \"sum(sick)\"\ndenominator = \"sum(hours)\"\nscale = 100\ngrains = [\"month\"]",
            )),
    );
    f
}

#[test]
fn an_excel_sheet_reads_like_the_clean_csv_with_dates_serials_and_sheet_rows() {
    // hr_excel.xlsx, sheet Tidrapport: the clean file's rows with months as Excel dates and one
    // as a bare serial number (45292 = 2024-01-01); its first sheet is a title page.
    let clean = dialect_fixture("hr_clean.csv", "").values("2024-03-01");
    let excel = excel_fixture("Tidrapport").values("2024-03-01");
    assert_close(
        value(&excel, "sick_pct", "K", "month", "2024-01"),
        100.0 * 112.5 / 3234.5,
    );
    assert_like_clean(&excel, &clean, "xlsx", 0.0);
    // Sheet Fel has one more row, Excel row 5, whose hours are the error #DIV/0!: rejected,
    // naming the file and sheet, the row and the column.
    let fel = excel_fixture("Fel");
    let summary = fel.run("2024-03-01").unwrap();
    let rejected = read_parquet(&summary.run_dir.join("rejected_rows.parquet"));
    assert_eq!(rejected.height(), 1);
    assert!(strings(&rejected, "file")[0].ends_with("hr.xlsx [Fel]"));
    assert_eq!(
        rejected.column("row").unwrap().i64().unwrap().get(0),
        Some(5)
    );
    assert_eq!(
        strings(&rejected, "reason")[0],
        "column 'hours': expected float, found '#DIV/0!'"
    );
    // A sheet that is not there is named with the sheets there are.
    let err = excel_fixture("Blad1")
        .run("2024-03-01")
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("has no sheet 'Blad1' (its sheets: Info, Tidrapport, Fel)"),
        "{err}"
    );
}

#[test]
fn org_units_may_come_as_an_excel_workbook() {
    let f = dialect_fixture("hr_clean.csv", "");
    let repo = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/dialects");
    std::fs::copy(repo.join("org_units.xlsx"), f.path("org.xlsx")).unwrap();
    let text = std::fs::read_to_string(f.path("pipeline.toml"))
        .unwrap()
        .replace("units = \"org.csv\"", "units = \"org.xlsx\"");
    f.file("pipeline.toml", &text);
    let df = f.values("2024-03-01");
    // The same tree as org.csv: A above A1 and A2, the kommun above all.
    assert_close(
        value(&df, "sick_pct", "A", "month", "2024-01"),
        100.0 * 112.5 / 3234.5,
    );
    assert_close(
        value(&df, "sick_pct", "K", "month", "2024-02"),
        100.0 * 0.75 / 980.25,
    );
}

#[test]
fn one_line_opens_a_swedish_excel_export_in_either_encoding() {
    // `dialect = "excel-sv"`: `;`, decimal comma, space thousands, and Windows-1252 unless the
    // file is UTF-8 — the same numbers as the clean file from both exports.
    let clean = dialect_fixture("hr_clean.csv", "").values("2024-03-01");
    for file in ["hr_excel_sv.csv", "hr_windows1252.csv"] {
        let df = dialect_fixture(file, "dialect = \"excel-sv\"").values("2024-03-01");
        assert_like_clean(&df, &clean, file, 0.0);
    }
}
