//! `styrkort spc FILE`: the statistics the engine runs on every indicator series, run on any
//! series an analyst brings in a CSV (`series, date, value`, optional `target`).

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{Datelike, NaiveDate};
use serde_json::json;

use crate::Error;
use crate::assess::signals::{flag, worse_trend};
use crate::assess::stats::{
    Centre, Direction, DriftOptions, DriftReading, RunsPart, SpcOptions, SpcResult, anhoej, drift,
    mann_kendall, xmr,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Csv,
    Json,
}

pub struct AdhocOptions {
    pub direction: Direction,
    pub rebase: Vec<NaiveDate>,
    pub fix_after: Option<usize>,
    pub screen_outliers: bool,
    pub alpha: f64,
    pub format: Format,
}

/// (date, value, target) of one CSV row.
type Row = (NaiveDate, Option<f64>, Option<f64>);

struct InputSeries {
    dates: Vec<NaiveDate>,
    values: Vec<Option<f64>>,
    target: Option<f64>,
}

fn read(path: &Path) -> Result<BTreeMap<String, InputSeries>, Error> {
    let bad =
        |line: u64, msg: String| Error::Usage(format!("{}: line {line}: {msg}", path.display()));
    let mut reader = csv::Reader::from_path(path)
        .map_err(|e| Error::Usage(format!("{}: {e}", path.display())))?;
    let headers = reader.headers().map_err(|e| bad(1, e.to_string()))?.clone();
    let pos = |name: &str| headers.iter().position(|h| h.trim() == name);
    let (Some(i_series), Some(i_date), Some(i_value)) = (pos("series"), pos("date"), pos("value"))
    else {
        return Err(bad(
            1,
            "expected the columns series, date, value (and optionally target)".into(),
        ));
    };
    let i_target = pos("target");
    let mut out: BTreeMap<String, InputSeries> = BTreeMap::new();
    let mut rows: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    for record in reader.records() {
        let record =
            record.map_err(|e| bad(e.position().map(|p| p.line()).unwrap_or(0), e.to_string()))?;
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        let field = |i: usize| record.get(i).unwrap_or("").trim();
        let number = |i: Option<usize>, name: &str| -> Result<Option<f64>, Error> {
            match i.map(field).filter(|t| !t.is_empty()) {
                None => Ok(None),
                Some(t) => t
                    .parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite())
                    .map(Some)
                    .ok_or_else(|| {
                        bad(
                            line,
                            format!("column '{name}': expected a number, found '{t}'"),
                        )
                    }),
            }
        };
        let date = NaiveDate::parse_from_str(field(i_date), "%Y-%m-%d").map_err(|_| {
            bad(
                line,
                format!(
                    "column 'date': expected YYYY-MM-DD, found '{}'",
                    field(i_date)
                ),
            )
        })?;
        let value = number(Some(i_value), "value")?;
        let target = number(i_target, "target")?;
        rows.entry(field(i_series).to_string())
            .or_default()
            .push((date, value, target));
    }
    if rows.is_empty() {
        // An empty result would look like "no signals": say there was nothing to analyse.
        return Err(Error::Usage(format!(
            "{}: no rows after the header: nothing to analyse",
            path.display()
        )));
    }
    for (name, mut r) in rows {
        r.sort_by_key(|x| x.0);
        out.insert(
            name,
            InputSeries {
                dates: r.iter().map(|x| x.0).collect(),
                values: r.iter().map(|x| x.1).collect(),
                target: r.iter().rev().find_map(|x| x.2),
            },
        );
    }
    Ok(out)
}

struct Analysed {
    name: String,
    direction: Direction,
    input: InputSeries,
    spc: SpcResult,
    drift: Option<DriftReading>,
    runs: Vec<RunsPart>,
    mk: Option<crate::assess::stats::MannKendall>,
}

/// Runs the analysis on every series of the file and renders it.
pub fn spc_report(path: &Path, opts: &AdhocOptions) -> Result<String, Error> {
    let series = read(path)?;
    let analysed: Vec<Analysed> = series
        .into_iter()
        .map(|(name, input)| {
            let rebase_at: Vec<usize> = opts
                .rebase
                .iter()
                .filter_map(|d| input.dates.iter().position(|x| x >= d))
                .collect();
            let spc_opts = SpcOptions {
                direction: opts.direction,
                target: input.target,
                rebase_at: rebase_at.clone(),
                fix_after: opts.fix_after,
                screen_outliers: opts.screen_outliers,
            };
            let spc = xmr(&input.values, &spc_opts);
            let runs = anhoej(
                &input.values,
                Centre::Mean,
                &rebase_at,
                opts.fix_after,
                opts.screen_outliers,
            );
            let mk = mann_kendall(&input.values, opts.alpha);
            // Calendar months when the dates are a month apart, so a season can be found.
            let monthly = input.dates.windows(2).all(|w| {
                (w[1].year() * 12 + w[1].month0() as i32)
                    - (w[0].year() * 12 + w[0].month0() as i32)
                    == 1
            });
            let months: Vec<u32> = input.dates.iter().map(|d| d.month0()).collect();
            let drift = rebase_at
                .is_empty()
                .then(|| {
                    drift(
                        &input.values,
                        monthly.then_some(months.as_slice()),
                        opts.direction,
                        &DriftOptions::default(),
                    )
                })
                .flatten();
            Analysed {
                name,
                direction: opts.direction,
                input,
                spc,
                drift,
                runs,
                mk,
            }
        })
        .collect();
    Ok(match opts.format {
        Format::Json => render_json(&analysed),
        Format::Csv => render_csv(&analysed),
        Format::Table => render_table(&analysed),
    })
}

fn summary(a: &Analysed) -> BTreeMap<&'static str, serde_json::Value> {
    let dates: Vec<String> = a.input.dates.iter().map(|d| d.to_string()).collect();
    let last = a.runs.last();
    let (f, reason) = flag(
        &a.spc,
        a.drift.as_ref(),
        &a.input.values,
        last.is_some_and(|r| r.runs_signal),
        a.mk.as_ref().is_some_and(|m| worse_trend(m, a.direction)),
        &dates,
    );
    let mut m = BTreeMap::new();
    m.insert("series", json!(a.name));
    m.insert(
        "n",
        json!(a.input.values.iter().filter(|v| v.is_some()).count()),
    );
    m.insert(
        "variation_icon",
        json!(a.spc.variation_icon.map(|i| i.label())),
    );
    m.insert("assurance", json!(a.spc.assurance.map(|x| x.label())));
    m.insert("runs_signal", json!(last.map(|r| r.runs_signal)));
    m.insert("longest_run", json!(last.and_then(|r| r.longest_run)));
    m.insert(
        "longest_run_max",
        json!(last.and_then(|r| r.longest_run_max)),
    );
    m.insert("n_crossings", json!(last.and_then(|r| r.n_crossings)));
    m.insert(
        "n_crossings_min",
        json!(last.and_then(|r| r.n_crossings_min)),
    );
    m.insert(
        "chart",
        json!(if a.drift.is_some() { "ewma" } else { "xmr" }),
    );
    m.insert(
        "seasonal",
        json!(a.drift.as_ref().map(|d| d.season.is_some())),
    );
    m.insert(
        "autocorrelation",
        json!(a.drift.as_ref().map(|d| d.r1).filter(|r| r.is_finite())),
    );
    m.insert(
        "ewma_signal",
        json!(a.drift.as_ref().map(|d| !d.alarms.is_empty())),
    );
    m.insert("trend", json!(a.mk.as_ref().map(|k| k.trend)));
    m.insert("mk_p", json!(a.mk.as_ref().map(|k| k.p)));
    m.insert(
        "sens_slope",
        json!(
            a.mk.as_ref()
                .map(|k| k.sens_slope)
                .filter(|x| x.is_finite())
        ),
    );
    m.insert("flag", json!(f));
    m.insert("reason", json!(reason));
    m.insert("warnings", json!(a.spc.warnings));
    m
}

const POINT_COLUMNS: [&str; 9] = [
    "series",
    "date",
    "value",
    "mean",
    "lpl",
    "upl",
    "special_cause",
    "point_type",
    "rebase_group",
];

fn point_rows(a: &Analysed) -> Vec<Vec<String>> {
    let num = |x: f64| {
        if x.is_finite() {
            format!("{x}")
        } else {
            String::new()
        }
    };
    a.spc
        .points
        .iter()
        .zip(&a.input.dates)
        .map(|(p, d)| {
            vec![
                a.name.clone(),
                d.to_string(),
                p.value.map(|v| format!("{v}")).unwrap_or_default(),
                num(p.mean),
                num(p.lpl),
                num(p.upl),
                p.special_cause.label().to_string(),
                p.point_type.label().to_string(),
                p.group.to_string(),
            ]
        })
        .collect()
}

const SUMMARY_COLUMNS: [&str; 17] = [
    "series",
    "n",
    "chart",
    "variation_icon",
    "assurance",
    "runs_signal",
    "longest_run",
    "longest_run_max",
    "n_crossings",
    "n_crossings_min",
    "seasonal",
    "autocorrelation",
    "ewma_signal",
    "trend",
    "mk_p",
    "flag",
    "reason",
];

fn summary_row(a: &Analysed) -> Vec<String> {
    let s = summary(a);
    SUMMARY_COLUMNS
        .iter()
        .map(|c| match &s[c] {
            serde_json::Value::Null => String::new(),
            serde_json::Value::String(t) => t.clone(),
            other => other.to_string(),
        })
        .collect()
}

fn render_json(analysed: &[Analysed]) -> String {
    let series: Vec<serde_json::Value> = analysed
        .iter()
        .map(|a| {
            let points: Vec<serde_json::Value> = point_rows(a)
                .into_iter()
                .map(|r| {
                    let mut o = serde_json::Map::new();
                    for (k, v) in POINT_COLUMNS.iter().zip(r).skip(1) {
                        let value = v
                            .parse::<f64>()
                            .ok()
                            .filter(|_| !matches!(*k, "date" | "special_cause" | "point_type"))
                            .map(|x| json!(x))
                            .unwrap_or_else(|| {
                                if v.is_empty() {
                                    serde_json::Value::Null
                                } else {
                                    json!(v)
                                }
                            });
                        o.insert(k.to_string(), value);
                    }
                    serde_json::Value::Object(o)
                })
                .collect();
            json!({"summary": summary(a), "points": points})
        })
        .collect();
    serde_json::to_string_pretty(&json!({ "series": series })).expect("JSON values serialise")
        + "\n"
}

fn render_csv(analysed: &[Analysed]) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(POINT_COLUMNS);
    for a in analysed {
        for r in point_rows(a) {
            let _ = w.write_record(&r);
        }
    }
    let _ = w.flush();
    let mut out = String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default();
    out.push('\n');
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(SUMMARY_COLUMNS);
    for a in analysed {
        let _ = w.write_record(summary_row(a));
    }
    let _ = w.flush();
    out.push_str(&String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default());
    out
}

fn render_table(analysed: &[Analysed]) -> String {
    use comfy_table::{Table, presets};
    let mut out = String::new();
    for a in analysed {
        let mut t = Table::new();
        t.load_preset(presets::ASCII_MARKDOWN);
        t.set_header(&POINT_COLUMNS[1..]);
        for r in point_rows(a) {
            t.add_row(r[1..].iter().map(|c| {
                match c.parse::<f64>() {
                    Ok(x) => format!("{x:.4}")
                        .trim_end_matches('0')
                        .trim_end_matches('.')
                        .to_string(),
                    Err(_) => c.clone(),
                }
            }));
        }
        let s = summary(a);
        out.push_str(&format!("series {}\n{t}\n", a.name));
        for c in SUMMARY_COLUMNS.iter().skip(1) {
            out.push_str(&format!("  {c}: {}\n", s[c]));
        }
        for w in a.spc.warnings.iter() {
            out.push_str(&format!("  warning: {w}\n"));
        }
        out.push('\n');
    }
    out
}
