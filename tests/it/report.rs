//! The controller's report as a person sees it: the HTML page rendered by headless Chromium (no
//! console errors, no network, every goal and indicator there, each SPC chart with as many points
//! as the series has values in the Parquet), and the Excel workbook read back with calamine.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::*;
use polars::prelude::*;

/// The fixtures' run, once for the file.
fn run_dir() -> &'static Path {
    static RUN: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, dir) = RUN.get_or_init(|| {
        let out = tempfile::tempdir().unwrap();
        let summary = styrkort::run(
            &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("pipelines/uddevalla.toml"),
            &styrkort::RunOptions::new(None, out.path().to_path_buf()),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let dir = summary.run_dir.clone();
        (out, dir)
    });
    dir
}

fn styrkort(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_styrkort"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn chromium() -> &'static str {
    for candidate in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if Path::new(candidate).exists() {
            return candidate;
        }
    }
    panic!("headless Chromium is needed (Debian package `chromium`; .ci/run installs it)");
}

/// What Chromium made of a page: the DOM after load, its log (console messages are logged as
/// `CONSOLE`), and every URL the page requested (from Chromium's net log, without the
/// browser's own calls home). Network goes to a dead proxy: nothing leaves the machine.
struct Rendered {
    dom: String,
    log: String,
    requests: Vec<String>,
}

fn render(page: &Path) -> Rendered {
    let profile = tempfile::tempdir().unwrap();
    let net_log = profile.path().join("net.json");
    let o = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--proxy-server=127.0.0.1:9",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--log-net-log={}", net_log.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let net = std::fs::read_to_string(&net_log).unwrap_or_default();
    let browser_own = [
        "google.com/",
        "googleapis.com/",
        "gvt1.com/",
        "gstatic.com/",
    ];
    let requests = net
        .split("\"url\":\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|url| !browser_own.iter().any(|h| url.contains(h)))
        .map(str::to_string)
        .collect();
    Rendered {
        dom: String::from_utf8(o.stdout).unwrap(),
        log: String::from_utf8_lossy(&o.stderr).to_string(),
        requests,
    }
}

#[test]
fn the_chromium_check_sees_a_request_and_a_console_error() {
    // The checks below can fail: a page that fetches an image and logs an error is caught.
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("bad.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><body><img src=\"http://example.com/x.png\"><script>console.error('boom')</script></body></html>",
    )
    .unwrap();
    let r = render(&page);
    assert!(
        r.requests.iter().any(|u| u.contains("example.com")),
        "{:?}",
        r.requests
    );
    assert!(r.log.contains("CONSOLE") && r.log.contains("boom"));
}

/// The text between `<tag ... id="id"` and its closing `</tag>`.
fn element<'a>(dom: &'a str, tag: &str, id: &str) -> &'a str {
    let start = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no element #{id}"));
    let open = dom[..start].rfind(&format!("<{tag}")).unwrap();
    let close = dom[start..].find(&format!("</{tag}>")).unwrap() + start;
    &dom[open..close]
}

#[test]
fn the_report_renders_offline_with_every_goal_indicator_and_chart() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("rapport.html");
    let o = styrkort(&[
        "report",
        run_dir().to_str().unwrap(),
        "-o",
        page.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let size = std::fs::metadata(&page).unwrap().len();
    assert!(size < 5_000_000, "the report is {size} bytes");
    let html = std::fs::read_to_string(&page).unwrap();
    // Self-contained: nothing to fetch.
    for needle in ["src=\"http", "href=\"http", "url(http", "<script", "<link"] {
        assert!(!html.contains(needle), "the page refers to '{needle}'");
    }

    let rendered = render(&page);
    let dom = rendered.dom.as_str();
    let console: Vec<&str> = rendered
        .log
        .lines()
        .filter(|l| l.contains("CONSOLE"))
        .collect();
    assert!(console.is_empty(), "console messages: {console:#?}");
    assert!(
        rendered.requests.is_empty(),
        "requests: {:?}",
        rendered.requests
    );
    // Swedish, with its letters intact.
    assert!(dom.contains("<html lang=\"sv\""));
    assert!(
        dom.contains("Måluppföljning") && dom.contains("Åtgärder"),
        "Swedish headings"
    );

    // Every goal, and in it every indicator it lists (names from the Parquet).
    let goals = read_parquet(&run_dir().join("goals.parquet"));
    let indicators = read_parquet(&run_dir().join("indicators.parquet"));
    let ind_ids = strings(&indicators, "indicator_id");
    let ind_names = strings(&indicators, "indicator_name");
    for (goal, listed) in strings(&goals, "goal_id")
        .iter()
        .zip(strings(&goals, "indicator_ids"))
    {
        let section = element(dom, "article", &format!("goal-{goal}"));
        for ind in listed.split(',') {
            let name = &ind_names[ind_ids.iter().position(|i| i == ind).unwrap()];
            assert!(section.contains(name.as_str()), "goal {goal} lacks {name}");
        }
    }

    // Hemtjänst Norr's sick-leave SPC chart: one point per value the series has in the Parquet.
    let deviations = read_parquet(&run_dir().join("deviations.parquet"));
    let series = deviations
        .lazy()
        .filter(
            col("indicator_id")
                .eq(lit("sick_leave_pct"))
                .and(col("org_unit_id").eq(lit("SOC-ALD-HTN")))
                .and(col("segment").eq(lit("total")))
                .and(col("spc_mean").is_not_null())
                .and(col("value").is_not_null()),
        )
        .collect()
        .unwrap();
    assert_eq!(series.height(), 36, "monthly series 2022–2024");
    let figure = element(dom, "figure", "ind-sick_leave_pct-SOC-ALD-HTN");
    let chart = &figure[figure.find("<svg class=\"spc\"").expect("an SPC chart")..];
    let chart = &chart[..chart.find("</svg>").unwrap()];
    assert!(chart.contains(&format!("data-points=\"{}\"", series.height())));
    assert_eq!(chart.matches("<circle").count(), series.height());

    // Where the flag found a season, the chart draws the seasonal expectation beside the
    // values: one point per month, at the Parquet's `seasonal_expected`.
    let seasonal = read_parquet(&run_dir().join("deviations.parquet"))
        .lazy()
        .filter(
            col("seasonal_expected")
                .is_not_null()
                .and(col("segment").eq(lit("total"))),
        )
        .group_by([col("indicator_id"), col("org_unit_id")])
        .agg([len().alias("n")])
        .sort(["indicator_id", "org_unit_id"], Default::default())
        .collect()
        .unwrap();
    let ids = seasonal.column("indicator_id").unwrap().str().unwrap();
    let units = seasonal.column("org_unit_id").unwrap().str().unwrap();
    let counts = seasonal.column("n").unwrap().u32().unwrap();
    let shown = (0..seasonal.height())
        .find(|&i| {
            dom.contains(&format!(
                "id=\"ind-{}-{}\"",
                ids.get(i).unwrap(),
                units.get(i).unwrap()
            ))
        })
        .expect("a seasonal series in the report");
    let figure = element(
        dom,
        "figure",
        &format!(
            "ind-{}-{}",
            ids.get(shown).unwrap(),
            units.get(shown).unwrap()
        ),
    );
    let marker = "<polyline class=\"exp\" points=\"";
    let expected = &figure[figure
        .find(marker)
        .expect("the seasonal expectation is drawn")
        + marker.len()..];
    let expected = &expected[..expected.find("\">").unwrap()];
    assert_eq!(
        expected.split(' ').count() as u32,
        counts.get(shown).unwrap(),
        "one point per month"
    );

    // The kommun's sick leave in the goal table: the Parquet value, written the Swedish way.
    let kommun = read_parquet(&run_dir().join("deviations.parquet"))
        .lazy()
        .filter(
            col("indicator_id")
                .eq(lit("sick_leave_pct"))
                .and(col("org_unit_id").eq(lit("UK")))
                .and(col("segment").eq(lit("total")))
                .and(col("grain").eq(lit("tertial")))
                .and(col("is_latest_period")),
        )
        .collect()
        .unwrap();
    let v = kommun
        .column("value")
        .unwrap()
        .f64()
        .unwrap()
        .get(0)
        .unwrap();
    let swedish = format!("{v:.2}").replace('.', ",");
    let kf1 = element(dom, "article", "goal-KF-1");
    assert!(kf1.contains(&swedish), "KF-1 lacks {swedish}");
}

#[test]
fn a_report_for_one_namnd_and_in_english() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("sn.html");
    let o = styrkort(&[
        "report",
        run_dir().to_str().unwrap(),
        "--unit",
        "SN",
        "--period",
        "2024",
        "--lang",
        "en",
        "-o",
        page.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("<html lang=\"en\""));
    assert!(html.contains("Goal follow-up Socialnämnden, 2024"));
    assert!(
        html.contains("id=\"u-SOC-ALD-HTN\""),
        "units beneath SN are there"
    );
    assert!(!html.contains("id=\"u-BUF\""), "other nämnder are not");
    // Unknown unit or period: a usage error naming what exists.
    let o = styrkort(&[
        "report",
        run_dir().to_str().unwrap(),
        "--unit",
        "SNX",
        "-o",
        "/dev/null",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("SN"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = styrkort(&[
        "report",
        run_dir().to_str().unwrap(),
        "--period",
        "2031-T1",
        "-o",
        "/dev/null",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("2024-T3"));
}

#[test]
fn the_workbook_reads_back_with_the_parquet_numbers_and_dates() {
    use calamine::{Data, Reader, Xlsx, open_workbook};
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("uppfoljning.xlsx");
    let o = styrkort(&[
        "export",
        run_dir().to_str().unwrap(),
        "--xlsx",
        file.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut book: Xlsx<_> = open_workbook(&file).unwrap();
    assert_eq!(
        book.sheet_names(),
        ["Mål", "Nyckeltal", "Avvikelser", "Åtgärder", "Signaler"]
    );

    // Avvikelser: one row per latest-period total deviation, numbers as numbers.
    let latest = read_parquet(&run_dir().join("deviations.parquet"))
        .lazy()
        .filter(col("is_latest_period").and(col("segment").eq(lit("total"))))
        .sort(
            ["indicator_id", "org_unit_id", "grain"],
            SortMultipleOptions::default(),
        )
        .collect()
        .unwrap();
    let sheet = book.worksheet_range("Avvikelser").unwrap();
    let rows: Vec<&[Data]> = sheet.rows().collect();
    assert_eq!(rows[0][1], Data::String("Nyckeltal".into()));
    assert_eq!(rows[0][8], Data::String("Värde".into()));
    assert_eq!(rows.len() - 1, latest.height());
    let values = latest.column("value").unwrap().f64().unwrap();
    let ids = strings(&latest, "indicator_id");
    let units = strings(&latest, "org_unit_id");
    for (r, row) in rows.iter().skip(1).enumerate() {
        assert_eq!(row[0], Data::String(ids[r].clone()));
        assert_eq!(row[2], Data::String(units[r].clone()));
        match values.get(r) {
            Some(v) => assert_eq!(row[8], Data::Float(v), "row {r}"),
            None => assert_eq!(row[8], Data::Empty, "row {r}"),
        }
    }

    // Åtgärder: due dates as Excel dates equal to the Parquet's.
    let actions = read_parquet(&run_dir().join("actions.parquet"));
    let due = actions
        .column("due")
        .unwrap()
        .cast(&DataType::Int32)
        .unwrap();
    let first_due = due
        .i32()
        .unwrap()
        .get(0)
        .expect("the first action has a due date");
    let sheet = book.worksheet_range("Åtgärder").unwrap();
    let row = sheet.rows().nth(1).unwrap();
    match &row[9] {
        // Excel counts days from 1899-12-30; Parquet from 1970-01-01.
        Data::DateTime(d) => assert_eq!(d.as_f64(), first_due as f64 + 25569.0),
        other => panic!("due is not a date: {other:?}"),
    }
}

#[test]
fn analysis_texts_reach_goal_status_and_the_report() {
    // The text for KF-1 at the kommun in 2024-T3, read from the fixture CSV directly.
    let mut reader = csv::Reader::from_path(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/uddevalla/analyses.csv"),
    )
    .unwrap();
    let text = reader
        .records()
        .map(|r| r.unwrap())
        .find(|r| &r[0] == "KF-1" && &r[2] == "UK" && &r[3] == "2024-T3")
        .map(|r| r[6].to_string())
        .unwrap();
    let status = read_parquet(&run_dir().join("goal_status.parquet"))
        .lazy()
        .filter(
            col("goal_id")
                .eq(lit("KF-1"))
                .and(col("org_unit_id").eq(lit("UK")))
                .and(col("period").eq(lit("2024-T3"))),
        )
        .collect()
        .unwrap();
    assert_eq!(strings(&status, "analysis"), std::slice::from_ref(&text));
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("r.html");
    let o = styrkort(&[
        "report",
        run_dir().to_str().unwrap(),
        "-o",
        page.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    let html = std::fs::read_to_string(&page).unwrap();
    let kf1 = element(&html, "article", "goal-KF-1");
    assert!(kf1.contains(&text), "the KF-1 section shows its analysis");
}

#[test]
fn inspect_refuses_unknown_ids_and_shows_names_and_open_actions() {
    let dir = run_dir().to_str().unwrap();
    let o = styrkort(&["inspect", dir, "--unit", "SOC-ALD-HTX"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--unit 'SOC-ALD-HTX' is not in this run; did you mean")
            && err.contains("SOC-ALD-HTN"),
        "{err}"
    );
    let o = styrkort(&["inspect", dir, "--indicator", "sick_leav_pct"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("sick_leave_pct"));
    let o = styrkort(&["inspect", dir, "--period", "2024-T4"]);
    assert_eq!(o.status.code(), Some(2));
    // Hemtjänst Norr misses the sick-leave target in 2024-T3 and action A-001 covers it.
    let o = styrkort(&[
        "inspect",
        dir,
        "--indicator",
        "sick_leave_pct",
        "--unit",
        "SOC-ALD-HTN",
        "--grain",
        "tertial",
        "--status",
        "not_met",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("Sjukfrånvaro (sick_leave_pct)"), "{out}");
    assert!(out.contains("A-001"), "{out}");
}

#[test]
fn inspect_has_a_goal_view_and_csv_and_json_for_programs() {
    let dir = run_dir().to_str().unwrap();
    let o = styrkort(&[
        "inspect", dir, "--goals", "--unit", "SN", "--goal", "SN-1", "--grain", "year",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("Äldre får den hemtjänst de beviljats") && out.contains("Socialnämnden (SN)"),
        "{out}"
    );
    // JSON: every not-met tertial sick-leave row, numbers equal to the Parquet's.
    let o = styrkort(&[
        "inspect",
        dir,
        "--indicator",
        "sick_leave_pct",
        "--grain",
        "tertial",
        "--status",
        "not_met",
        "--format",
        "json",
    ]);
    assert!(o.status.success());
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    let expected = read_parquet(&run_dir().join("deviations.parquet"))
        .lazy()
        .filter(
            col("indicator_id")
                .eq(lit("sick_leave_pct"))
                .and(col("grain").eq(lit("tertial")))
                .and(col("is_latest_period"))
                .and(col("segment").eq(lit("total")))
                .and(col("status").eq(lit("not_met"))),
        )
        .collect()
        .unwrap();
    assert_eq!(rows.len(), expected.height());
    let htn = rows
        .iter()
        .find(|r| r["org_unit_id"] == "SOC-ALD-HTN")
        .unwrap();
    let units = strings(&expected, "org_unit_id");
    let at = units.iter().position(|u| u == "SOC-ALD-HTN").unwrap();
    let value = expected
        .column("value")
        .unwrap()
        .f64()
        .unwrap()
        .get(at)
        .unwrap();
    assert_eq!(htn["value"].as_f64(), Some(value));
    assert_eq!(htn["open_actions"], "A-001");
    // CSV: a header and one line per row.
    let o = styrkort(&[
        "inspect",
        dir,
        "--indicator",
        "sick_leave_pct",
        "--grain",
        "tertial",
        "--status",
        "not_met",
        "--format",
        "csv",
    ]);
    let csv_text = String::from_utf8_lossy(&o.stdout);
    assert!(csv_text.starts_with("status,indicator_id,indicator_name,"));
    assert_eq!(csv_text.lines().count(), expected.height() + 1);
}

#[test]
fn a_kolada_report_shows_the_national_value_and_the_rank() {
    let out = tempfile::tempdir().unwrap();
    let summary = styrkort::run(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("pipelines/kolada-uddevalla.toml"),
        &styrkort::RunOptions::new(None, out.path().to_path_buf()),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let page = out.path().join("uddevalla.html");
    let o = styrkort(&[
        "report",
        summary.run_dir.to_str().unwrap(),
        "--unit",
        "1485",
        "-o",
        page.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let html = std::fs::read_to_string(&page).unwrap();
    // Sick leave (N00090) in 2022: Uddevalla's rank and Riket's value, both from the Parquet.
    let year = |unit: &str| {
        read_parquet(&summary.run_dir.join("deviations.parquet"))
            .lazy()
            .filter(
                col("org_unit_id")
                    .eq(lit(unit))
                    .and(col("indicator_id").eq(lit("sick_leave")))
                    .and(col("segment").eq(lit("total")))
                    .and(col("period").eq(lit("2022"))),
            )
            .collect()
            .unwrap()
    };
    let uddevalla = year("1485");
    let riket = year("0000");
    let rank = uddevalla
        .column("rank")
        .unwrap()
        .cast(&DataType::Float64)
        .unwrap();
    let rank_of = uddevalla
        .column("rank_of")
        .unwrap()
        .cast(&DataType::Float64)
        .unwrap();
    let text = format!(
        "rang {} av {}",
        rank.f64().unwrap().get(0).unwrap(),
        rank_of.f64().unwrap().get(0).unwrap()
    );
    assert!(html.contains(&text), "lacks '{text}'");
    let national = riket
        .column("value")
        .unwrap()
        .f64()
        .unwrap()
        .get(0)
        .unwrap();
    // Written as the report writes numbers: one decimal from 10 up, two below.
    let decimals = if national.abs() >= 10.0 { 1 } else { 2 };
    let national = format!(
        "Riket {}",
        format!("{national:.decimals$}").replace('.', ",")
    );
    assert!(html.contains(&national), "lacks '{national}'");
}
