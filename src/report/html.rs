//! The controller's report: one self-contained HTML file (inline CSS and SVG, no script, nothing
//! fetched) made from a published run's tables, for the whole kommun or one unit and everything
//! beneath it, for one period: the goal tree with statuses, each goal's indicators, an SPC chart
//! per indicator × unit, sibling units compared (a funnel plot for proportions), actions, and
//! data quality. Swedish by default.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use maud::{DOCTYPE, Markup, PreEscaped, html};
use polars::prelude::*;

use super::charts::{self, SpcPoint};
use super::words::{Lang, decimals_for};
use crate::Error;
use crate::publish::Manifest;

/// What the report covers.
#[derive(Debug, Clone, Default)]
pub struct ReportOptions {
    /// This unit and everything beneath it; the root (the kommun) when `None`.
    pub unit: Option<String>,
    /// A period label (`2024-T2`, `2024`, `2024-03`, `2024-Q1`); the latest tertial when `None`.
    pub period: Option<String>,
    pub lang: Lang,
}

const CSS: &str = r#"
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0 auto;max-width:1100px;padding:0 16px 48px;color:#1d2433;line-height:1.4}
header{border-bottom:3px solid #005eb8;margin-bottom:16px}h1{margin:16px 0 4px;font-size:1.7em}
h2{border-bottom:1px solid #ccd;padding-bottom:4px;margin-top:32px}h3{margin:18px 0 6px}
nav a{margin-right:14px}.meta{color:#555;font-size:.9em}
table{border-collapse:collapse;width:100%;font-size:.88em;margin:6px 0 12px}
th,td{border-bottom:1px solid #e3e6ee;padding:4px 6px;text-align:left;vertical-align:top}th{background:#f3f5f9}
td.num{text-align:right;white-space:nowrap}
.chip{display:inline-block;padding:1px 8px;border-radius:10px;font-size:.85em;white-space:nowrap;color:#fff;background:#8a8f98}
.met{background:#1b7f3b}.partly_met{background:#c98a00}.not_met{background:#c62828}.no_data{background:#8a8f98}.no_target,.not_assessable{background:#b0b4bb}
.act{background:#c62828}.watch{background:#c98a00}.none{background:#d9dce2;color:#333}
.goal{border-left:4px solid #d9dce2;padding:2px 0 2px 12px;margin:10px 0}.goal.g-met{border-color:#1b7f3b}.goal.g-partly_met{border-color:#c98a00}.goal.g-not_met{border-color:#c62828}
.basis{color:#555;font-size:.9em;margin:2px 0}.children{margin-left:18px}
.analysis{background:#f6f8fb;border-left:3px solid #005eb8;padding:6px 10px;font-size:.92em}
figure{margin:10px 0 18px;break-inside:avoid}figcaption{font-size:.9em;margin-bottom:2px}
svg.spc,svg.funnel,svg.bars{width:100%;max-width:700px;height:auto;display:block}
svg .axis{stroke:#999}svg .tick{font-size:10px;fill:#555}
svg .val{fill:none;stroke:#3d4a5c;stroke-width:1.2}svg .mean{fill:none;stroke:#1d2433;stroke-dasharray:4 3}
svg .lim{fill:none;stroke:#7a8699;stroke-dasharray:2 3}svg .exp{fill:none;stroke:#2e7d32;stroke-width:1;stroke-dasharray:5 2 1 2}svg .tgt{stroke:#c62828;stroke-width:1.2;stroke-dasharray:6 3}
svg .pcc{fill:#7b7d7d}svg .pi{fill:#289de0}svg .pc{fill:#fab428}svg .pn{fill:#490092}
svg .bar{fill:#6b8fc7}svg .l95{fill:none;stroke:#7a8699;stroke-dasharray:3 3}svg .l998{fill:none;stroke:#1d2433;stroke-dasharray:1 2}
svg.icon{width:18px;height:18px;vertical-align:middle}svg.icon text{font-size:11px;fill:#fff;font-weight:bold}
svg.icon .ic{fill:#7b7d7d}svg.icon .ii{fill:#289de0}svg.icon .io{fill:#fab428}svg.icon .in{fill:#490092}
.unit{border-top:1px solid #e3e6ee;margin-top:18px;content-visibility:auto;contain-intrinsic-size:auto 2400px}.crumbs{font-size:.85em;color:#555}
@media print{nav{display:none}figure{page-break-inside:avoid}}
"#;

/// Reads a published run's tables and writes the report.
pub fn html_report(run_dir: &Path, options: &ReportOptions) -> Result<String, Error> {
    let run = RunTables::read(run_dir, options)?;
    Ok(render(&run, options.lang).into_string())
}

fn data(e: PolarsError) -> Error {
    Error::from(e)
}

fn strs(df: &DataFrame, name: &str) -> Result<Vec<Option<String>>, Error> {
    let c = df
        .column(name)
        .map_err(data)?
        .cast(&DataType::String)
        .map_err(data)?;
    Ok(c.str()
        .map_err(data)?
        .iter()
        .map(|v| v.map(str::to_string))
        .collect())
}

fn nums(df: &DataFrame, name: &str) -> Result<Vec<Option<f64>>, Error> {
    let c = df
        .column(name)
        .map_err(data)?
        .cast(&DataType::Float64)
        .map_err(data)?;
    Ok(c.f64().map_err(data)?.iter().collect())
}

fn flags(df: &DataFrame, name: &str) -> Result<Vec<Option<bool>>, Error> {
    let c = df
        .column(name)
        .map_err(data)?
        .cast(&DataType::Boolean)
        .map_err(data)?;
    Ok(c.bool().map_err(data)?.iter().collect())
}

fn text(v: &[Option<String>], i: usize) -> String {
    v[i].clone().unwrap_or_default()
}

struct Unit {
    id: String,
    name: String,
    parent: Option<String>,
    kind: String,
    path: String,
}

struct Goal {
    id: String,
    name: String,
    level: String,
    owner: String,
    parent: Option<String>,
    basis: String,
    reference: String,
    indicators: Vec<String>,
}

struct Indicator {
    name: String,
    unit: String,
    proportion: bool,
}

/// Mean, lower and upper process limits, and the point type of a value on an SPC chart.
/// A point's SPC reading: centre line, process limits, point type, and the seasonal
/// expectation where a season was found.
#[derive(Clone)]
struct SpcLimits {
    mean: Option<f64>,
    lpl: Option<f64>,
    upl: Option<f64>,
    point_type: String,
    expected: Option<f64>,
}

/// Year-end forecast, its low and high, and the outlook.
type Forecast = (f64, Option<f64>, Option<f64>, Option<String>);

/// (goal, unit, grain, period) → (status, indicators met, indicators).
type GoalStates = BTreeMap<(String, String, String, String), (String, f64, f64)>;

/// (goal or indicator id, unit, period) → (text, author, date)
type Analyses = BTreeMap<(String, String, String), (String, String, String)>;

/// Per source, its commonest kinds of rejected rows: (kind, count, example).
type RejectedKinds = BTreeMap<String, Vec<(String, usize, String)>>;

/// One row of `deviations.parquet` (segment `total`).
struct Cell {
    indicator: String,
    unit: String,
    grain: String,
    period: String,
    value: Option<f64>,
    numerator: Option<f64>,
    denominator: Option<f64>,
    n_rows: f64,
    status: String,
    target_kind: Option<String>,
    target: Option<f64>,
    change: Option<f64>,
    yoy: Option<f64>,
    rank: Option<f64>,
    rank_of: Option<f64>,
    comparison: Option<f64>,
    spc: Option<SpcLimits>,
}

struct Signal {
    flag: String,
    reason: String,
    variation: String,
    assurance: Option<String>,
    forecast: Option<Forecast>,
}

struct ActionRow {
    record_type: String,
    id: String,
    goal: String,
    unit: String,
    title: String,
    owner: String,
    due: String,
    status: String,
    overdue_days: Option<f64>,
    grain: String,
    period: String,
}

/// Everything the report shows, read from the run folder and restricted to the report's units.
struct RunTables {
    manifest: Manifest,
    /// The unit the report is for, and the tree's root (the kommun, or Riket).
    focus: String,
    root: String,
    grain: String,
    period: String,
    /// Units in scope, in tree order (by path).
    units: Vec<Unit>,
    all_units: BTreeMap<String, String>,
    goals: Vec<Goal>,
    indicators: BTreeMap<String, Indicator>,
    /// (indicator, unit) → cells by period, each grain apart.
    cells: BTreeMap<(String, String), Vec<Cell>>,
    signals: BTreeMap<(String, String), Signal>,
    goal_status: GoalStates,
    actions: Vec<ActionRow>,
    rejected: RejectedKinds,
    analyses: Analyses,
}

use super::read_run_table as read;

/// The units a report is about.
struct Focus {
    /// The unit the report is for (`--unit`, else the root) and those beneath it, in tree order.
    units: Vec<Unit>,
    /// Every unit's name by id.
    all_units: BTreeMap<String, String>,
    focus: String,
    /// The tree's root above the focus unit.
    root: String,
}

fn units_in_focus(org: &DataFrame, options: &ReportOptions) -> Result<Focus, Error> {
    let (ids, names, parents, kinds, paths) = (
        strs(org, "org_unit_id")?,
        strs(org, "org_name")?,
        strs(org, "parent_id")?,
        strs(org, "org_kind")?,
        strs(org, "org_path")?,
    );
    let mut all: Vec<Unit> = (0..org.height())
        .map(|i| Unit {
            id: text(&ids, i),
            name: text(&names, i),
            parent: parents[i].clone(),
            kind: text(&kinds, i),
            path: text(&paths, i),
        })
        .collect();
    let all_units: BTreeMap<String, String> =
        all.iter().map(|u| (u.id.clone(), u.name.clone())).collect();
    let focus = match &options.unit {
        Some(u) if all_units.contains_key(u) => u.clone(),
        Some(u) => {
            return Err(Error::Usage(format!(
                "--unit '{u}' is not an org unit of this run (e.g. {})",
                super::nearest(u, all_units.keys())
            )));
        }
        None => all
            .iter()
            .find(|u| u.parent.is_none())
            .map(|u| u.id.clone())
            .unwrap_or_default(),
    };
    let focus_path = all
        .iter()
        .find(|u| u.id == focus)
        .map(|u| u.path.clone())
        .unwrap_or_default();
    let root = all
        .iter()
        .find(|u| !u.path.contains('/') && focus_path.starts_with(&u.path))
        .map(|u| u.id.clone())
        .unwrap_or_default();
    all.retain(|u| u.path == focus_path || u.path.starts_with(&format!("{focus_path}/")));
    all.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Focus {
        units: all,
        all_units,
        focus,
        root,
    })
}

fn goals_of(goals_df: &DataFrame) -> Result<Vec<Goal>, Error> {
    let g = |n: &str| strs(goals_df, n);
    let (gid, gname, glevel, gowner, gparent, gbasis, gref, gind) = (
        g("goal_id")?,
        g("goal_name")?,
        g("level")?,
        g("owner_unit_id")?,
        g("parent_goal_id")?,
        g("basis")?,
        g("reference")?,
        g("indicator_ids")?,
    );
    let goals = (0..goals_df.height())
        .map(|i| Goal {
            id: text(&gid, i),
            name: text(&gname, i),
            level: text(&glevel, i),
            owner: text(&gowner, i),
            parent: gparent[i].clone(),
            basis: text(&gbasis, i),
            reference: text(&gref, i),
            indicators: text(&gind, i)
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        })
        .collect();
    Ok(goals)
}

fn indicators_of(ind: &DataFrame) -> Result<BTreeMap<String, Indicator>, Error> {
    let (iid, iname, iunit, ikind) = (
        strs(ind, "indicator_id")?,
        strs(ind, "indicator_name")?,
        strs(ind, "unit")?,
        strs(ind, "stat_kind")?,
    );
    let indicators = (0..ind.height())
        .map(|i| {
            (
                text(&iid, i),
                Indicator {
                    name: text(&iname, i),
                    unit: text(&iunit, i),
                    proportion: ikind[i].as_deref() == Some("proportion"),
                },
            )
        })
        .collect();
    Ok(indicators)
}

fn goal_states_of(gs: &DataFrame) -> Result<GoalStates, Error> {
    let (sg, su, sgr, sp, ss, sm, sn) = (
        strs(gs, "goal_id")?,
        strs(gs, "org_unit_id")?,
        strs(gs, "grain")?,
        strs(gs, "period")?,
        strs(gs, "status")?,
        nums(gs, "n_met")?,
        nums(gs, "n_indicators")?,
    );
    let goal_status = (0..gs.height())
        .map(|i| {
            (
                (text(&sg, i), text(&su, i), text(&sgr, i), text(&sp, i)),
                (text(&ss, i), sm[i].unwrap_or(0.0), sn[i].unwrap_or(0.0)),
            )
        })
        .collect();
    Ok(goal_status)
}

fn actions_of(act: &DataFrame) -> Result<Vec<ActionRow>, Error> {
    let a = |n: &str| strs(act, n);
    let (rt, aid, ag, au, at, ao, ad, ast, agr, ape) = (
        a("record_type")?,
        a("action_id")?,
        a("goal_id")?,
        a("org_unit_id")?,
        a("title")?,
        a("owner")?,
        a("due")?,
        a("status")?,
        a("grain")?,
        a("period")?,
    );
    let days = nums(act, "days_overdue")?;
    let actions = (0..act.height())
        .map(|i| ActionRow {
            record_type: text(&rt, i),
            id: text(&aid, i),
            goal: text(&ag, i),
            unit: text(&au, i),
            title: text(&at, i),
            owner: text(&ao, i),
            due: text(&ad, i),
            status: text(&ast, i),
            overdue_days: days[i],
            grain: text(&agr, i),
            period: text(&ape, i),
        })
        .collect();
    Ok(actions)
}

/// The analyses written for the run (the table is absent when there are none).
fn analyses_of(dir: &Path) -> Result<Analyses, Error> {
    let mut analyses = BTreeMap::new();
    if dir.join("analyses.parquet").exists() {
        let an = read(dir, "analyses.parquet")?;
        let (ag, ai, au, ap, aa, ad, at) = (
            strs(&an, "goal_id")?,
            strs(&an, "indicator_id")?,
            strs(&an, "org_unit_id")?,
            strs(&an, "period")?,
            strs(&an, "author")?,
            strs(&an, "date")?,
            strs(&an, "text")?,
        );
        for i in 0..an.height() {
            let id = ag[i].clone().or_else(|| ai[i].clone()).unwrap_or_default();
            analyses.insert(
                (id, text(&au, i), text(&ap, i)),
                (text(&at, i), text(&aa, i), text(&ad, i)),
            );
        }
    }
    Ok(analyses)
}

/// The grain of a period label.
fn grain_of(period: &str) -> &'static str {
    if period.contains("YTD") {
        "ytd"
    } else if period.contains("-T") {
        "tertial"
    } else if period.contains("-Q") {
        "quarter"
    } else if period.len() == 4 {
        "year"
    } else {
        "month"
    }
}

/// The units a report covers, to filter the tables by.
struct UnitScope(DataFrame);

impl UnitScope {
    fn new(units: &BTreeSet<String>) -> Result<UnitScope, Error> {
        let ids: Vec<&str> = units.iter().map(String::as_str).collect();
        Ok(UnitScope(df!("org_unit_id" => ids).map_err(data)?))
    }

    /// The rows of `df` that pass `extra` and belong to a unit in scope (an inner join on the
    /// unit ids).
    fn keep(&self, df: DataFrame, extra: Expr) -> Result<DataFrame, Error> {
        df.lazy()
            .filter(extra)
            .join(
                self.0.clone().lazy(),
                [col("org_unit_id")],
                [col("org_unit_id")],
                JoinArgs::new(JoinType::Inner),
            )
            .collect()
            .map_err(data)
    }
}

/// The total segment's deviations of the units in scope and of the root too (Riket in a Kolada
/// pipeline): the national value beside a unit's.
fn total_deviations(
    dir: &Path,
    scope: &UnitScope,
    root: &str,
    root_in_scope: bool,
) -> Result<DataFrame, Error> {
    let total = col("segment").eq(lit("total"));
    let all = read(dir, "deviations.parquet")?;
    let dev = scope.keep(all.clone(), total.clone())?;
    if root_in_scope {
        return Ok(dev);
    }
    let root_rows = all
        .lazy()
        .filter(total.and(col("org_unit_id").eq(lit(root))))
        .collect()
        .map_err(data)?;
    dev.vstack(
        &root_rows
            .select(dev.get_column_names().into_iter().cloned())
            .map_err(data)?,
    )
    .map_err(data)
}

impl RunTables {
    fn read(dir: &Path, options: &ReportOptions) -> Result<RunTables, Error> {
        let manifest = Manifest::read(dir).ok_or_else(|| {
            Error::Usage(format!(
                "{}: no readable manifest.json (is this a run folder, OUT/<pipeline>/as_of=<date>?)",
                dir.display()
            ))
        })?;
        let Focus {
            units: all,
            all_units,
            focus,
            root,
        } = units_in_focus(&read(dir, "org_units.parquet")?, options)?;
        let in_scope: BTreeSet<String> = all.iter().map(|u| u.id.clone()).collect();
        let scope = UnitScope::new(&in_scope)?;
        let keep = |df: DataFrame, extra: Expr| scope.keep(df, extra);
        let dev = total_deviations(dir, &scope, &root, in_scope.contains(&root))?;
        let (grain, period) = pick_period(&dev, options.period.as_deref())?;
        let cells = cells_of(&dev)?;

        let goals = goals_of(&read(dir, "goals.parquet")?)?;

        let indicators = indicators_of(&read(dir, "indicators.parquet")?)?;

        let sig = keep(
            read(dir, "signals.parquet")?,
            col("segment").eq(lit("total")),
        )?;
        let signals = signals_of(&sig)?;

        let gs = keep(
            read(dir, "goal_status.parquet")?,
            col("grain")
                .eq(lit(grain.as_str()))
                .and(col("period").eq(lit(period.as_str())))
                .or(col("grain").eq(lit("year"))),
        )?;
        let goal_status = goal_states_of(&gs)?;

        let act = keep(read(dir, "actions.parquet")?, lit(true))?;
        let actions = actions_of(&act)?;

        let rejected = rejected_reasons(&read(dir, "rejected_rows.parquet")?)?;
        let analyses = analyses_of(dir)?;
        Ok(RunTables {
            manifest,
            focus,
            root,
            grain,
            period,
            units: all,
            all_units,
            goals,
            indicators,
            cells,
            signals,
            goal_status,
            actions,
            rejected,
            analyses,
        })
    }

    /// The analysis text written for a goal or indicator at a unit in the report's period.
    fn analysis(&self, id: &str, unit: &str, period: &str) -> Option<&(String, String, String)> {
        self.analyses
            .get(&(id.to_string(), unit.to_string(), period.to_string()))
    }

    fn unit_name(&self, id: &str) -> String {
        self.all_units
            .get(id)
            .cloned()
            .unwrap_or_else(|| id.to_string())
    }

    /// The cell an indicator shows for a unit: the report's grain and period, else (an
    /// indicator without that grain) its latest year up to the report's year.
    fn cell(&self, indicator: &str, unit: &str) -> Option<&Cell> {
        let cells = self.cells.get(&(indicator.to_string(), unit.to_string()))?;
        if let Some(c) = cells
            .iter()
            .find(|c| c.grain == self.grain && c.period == self.period)
        {
            return Some(c);
        }
        let year = &self.period[..4.min(self.period.len())];
        cells
            .iter()
            .filter(|c| c.grain == "year" && c.period.as_str() <= year)
            .max_by(|a, b| a.period.cmp(&b.period))
    }

    /// The SPC series of an indicator for a unit: the cells that carry process limits.
    fn spc_series(&self, indicator: &str, unit: &str) -> Vec<&Cell> {
        self.cells
            .get(&(indicator.to_string(), unit.to_string()))
            .map(|cells| cells.iter().filter(|c| c.spc.is_some()).collect())
            .unwrap_or_default()
    }

    /// A goal's status at a unit: in the report's period, else (a goal whose indicators have no
    /// such grain) in its latest year up to the report's year. With the period shown.
    fn goal_state(&self, goal: &str, unit: &str) -> Option<(String, f64, f64, String)> {
        let key = |g: &str, p: &str| {
            (
                goal.to_string(),
                unit.to_string(),
                g.to_string(),
                p.to_string(),
            )
        };
        if let Some((s, m, n)) = self.goal_status.get(&key(&self.grain, &self.period)) {
            return Some((s.clone(), *m, *n, self.period.clone()));
        }
        let year = &self.period[..4.min(self.period.len())];
        self.goal_status
            .range(key("year", "")..)
            .take_while(|(k, _)| k.0 == goal && k.1 == unit && k.2 == "year")
            .filter(|(k, _)| k.3.as_str() <= year)
            .last()
            .map(|(k, (s, m, n))| (s.clone(), *m, *n, k.3.clone()))
    }

    /// The unit a goal is followed up at in this report: its owner when the owner is in scope
    /// (a nämnd's goal at the nämnd), else the report's unit (a KF goal at the nämnd reported).
    fn goal_unit<'a>(&'a self, goal: &'a Goal) -> &'a str {
        if self.units.iter().any(|u| u.id == goal.owner) {
            &goal.owner
        } else {
            &self.focus
        }
    }

    fn children(&self, unit: &str) -> Vec<&Unit> {
        self.units
            .iter()
            .filter(|u| u.parent.as_deref() == Some(unit))
            .collect()
    }
}

/// The report's grain and period: the one asked for, or the latest tertial (else year).
fn pick_period(dev: &DataFrame, asked: Option<&str>) -> Result<(String, String), Error> {
    let grains = strs(dev, "grain")?;
    let periods = strs(dev, "period")?;
    let latest = flags(dev, "is_latest_period")?;
    if let Some(p) = asked {
        let g = grain_of(p);
        if periods.iter().any(|x| x.as_deref() == Some(p)) {
            return Ok((g.to_string(), p.to_string()));
        }
        let mut known: Vec<&str> = grains
            .iter()
            .zip(&periods)
            .filter(|(gr, _)| gr.as_deref() == Some(g))
            .filter_map(|(_, pe)| pe.as_deref())
            .collect();
        known.sort_unstable();
        known.dedup();
        return Err(Error::Usage(format!(
            "--period '{p}' is not a period of this run (its {g} periods: {})",
            known.join(", ")
        )));
    }
    for g in ["tertial", "year", "month"] {
        if let Some(i) =
            (0..dev.height()).find(|&i| grains[i].as_deref() == Some(g) && latest[i] == Some(true))
        {
            return Ok((g.to_string(), text(&periods, i)));
        }
    }
    Err(Error::Usage("the run has no periods to report".into()))
}

fn cells_of(dev: &DataFrame) -> Result<BTreeMap<(String, String), Vec<Cell>>, Error> {
    let s = |n: &str| strs(dev, n);
    let f = |n: &str| nums(dev, n);
    let (ind, unit, grain, period, status, tkind, ptype) = (
        s("indicator_id")?,
        s("org_unit_id")?,
        s("grain")?,
        s("period")?,
        s("status")?,
        s("target_kind")?,
        s("point_type")?,
    );
    let (value, num, den, nrows, target, change, yoy, rank, rank_of, comparison, mean, lpl, upl) = (
        f("value")?,
        f("numerator")?,
        f("denominator")?,
        f("n_rows")?,
        f("target_value")?,
        f("change")?,
        f("yoy_change")?,
        f("rank")?,
        f("rank_of")?,
        f("comparison_value")?,
        f("spc_mean")?,
        f("spc_lpl")?,
        f("spc_upl")?,
    );
    let expected = f("seasonal_expected")?;
    let mut out: BTreeMap<(String, String), Vec<Cell>> = BTreeMap::new();
    for i in 0..dev.height() {
        let spc = ptype[i].clone().map(|point_type| SpcLimits {
            mean: mean[i],
            lpl: lpl[i],
            upl: upl[i],
            point_type,
            expected: expected[i],
        });
        out.entry((text(&ind, i), text(&unit, i)))
            .or_default()
            .push(Cell {
                indicator: text(&ind, i),
                unit: text(&unit, i),
                grain: text(&grain, i),
                period: text(&period, i),
                value: value[i],
                numerator: num[i],
                denominator: den[i],
                n_rows: nrows[i].unwrap_or(0.0),
                status: text(&status, i),
                target_kind: tkind[i].clone(),
                target: target[i],
                change: change[i],
                yoy: yoy[i],
                rank: rank[i],
                rank_of: rank_of[i],
                comparison: comparison[i],
                spc,
            });
    }
    for cells in out.values_mut() {
        cells.sort_by(|a, b| {
            (a.grain.as_str(), a.period.as_str()).cmp(&(b.grain.as_str(), b.period.as_str()))
        });
    }
    Ok(out)
}

fn signals_of(sig: &DataFrame) -> Result<BTreeMap<(String, String), Signal>, Error> {
    let s = |n: &str| strs(sig, n);
    let (ind, unit, flag, reason, icon, assurance, outlook) = (
        s("indicator_id")?,
        s("org_unit_id")?,
        s("flag")?,
        s("reason")?,
        s("variation_icon")?,
        s("assurance")?,
        s("forecast_outlook")?,
    );
    let (fy, fl, fh) = (
        nums(sig, "forecast_year_end")?,
        nums(sig, "forecast_low")?,
        nums(sig, "forecast_high")?,
    );
    Ok((0..sig.height())
        .map(|i| {
            (
                (text(&ind, i), text(&unit, i)),
                Signal {
                    flag: text(&flag, i),
                    reason: text(&reason, i),
                    variation: text(&icon, i),
                    assurance: assurance[i].clone(),
                    forecast: fy[i].map(|y| (y, fl[i], fh[i], outlook[i].clone())),
                },
            )
        })
        .collect())
}

/// Per source, the commonest kinds of rejection with a count and an example.
fn rejected_reasons(rej: &DataFrame) -> Result<RejectedKinds, Error> {
    let (source, file, row, reason) = (
        strs(rej, "source")?,
        strs(rej, "file")?,
        nums(rej, "row")?,
        strs(rej, "reason")?,
    );
    let mut kinds: BTreeMap<String, BTreeMap<String, (usize, String)>> = BTreeMap::new();
    for (i, r) in reason.iter().enumerate() {
        let r = r.clone().unwrap_or_default();
        let e = kinds
            .entry(text(&source, i))
            .or_default()
            .entry(crate::ingest::quality::reason_kind(&r))
            .or_insert_with(|| {
                (
                    0,
                    format!("{}:{} {r}", text(&file, i), row[i].unwrap_or(0.0)),
                )
            });
        e.0 += 1;
    }
    Ok(kinds
        .into_iter()
        .map(|(s, k)| {
            let mut v: Vec<(String, usize, String)> =
                k.into_iter().map(|(kind, (n, ex))| (kind, n, ex)).collect();
            v.sort_by_key(|k| std::cmp::Reverse(k.1));
            v.truncate(3);
            (s, v)
        })
        .collect())
}

fn num(lang: Lang, v: Option<f64>) -> String {
    v.map(|v| lang.number(v, decimals_for(v)))
        .unwrap_or_else(|| "–".into())
}

fn signed(lang: Lang, v: Option<f64>) -> String {
    match v {
        Some(v) if v > 0.0 => format!("+{}", lang.number(v, decimals_for(v))),
        other => num(lang, other),
    }
}

fn chip(class: &str, label: &str) -> Markup {
    html! { span class=(format!("chip {class}")) { (label) } }
}

fn variation_icon(lang: Lang, kind: &str) -> Markup {
    let (class, letter) = match kind {
        "improvement_high" => ("ii", "H"),
        "improvement_low" => ("ii", "L"),
        "concern_high" => ("io", "H"),
        "concern_low" => ("io", "L"),
        "neutral_high" => ("in", "H"),
        "neutral_low" => ("in", "L"),
        _ => ("ic", "~"),
    };
    let label = match kind {
        k if k.starts_with("improvement") => lang.t(
            "Särskild orsak – förbättring",
            "Special cause – improvement",
        ),
        k if k.starts_with("concern") => {
            lang.t("Särskild orsak – oroande", "Special cause – concern")
        }
        k if k.starts_with("neutral") => lang.t("Särskild orsak", "Special cause"),
        _ => lang.t("Slumpmässig variation", "Common-cause variation"),
    };
    charts::icon(class, letter, label)
}

fn assurance_icon(lang: Lang, kind: &str) -> Markup {
    let (class, letter) = match kind {
        "consistent_pass" => ("ii", "P"),
        "consistent_fail" => ("io", "F"),
        _ => ("ic", "?"),
    };
    charts::icon(class, letter, lang.assurance(kind))
}

fn render(run: &RunTables, lang: Lang) -> Markup {
    let m = &run.manifest;
    let focus_name = run.unit_name(&run.focus);
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (lang.t("Måluppföljning", "Goal follow-up")) " – " (focus_name) " – " (run.period) }
                style { (PreEscaped(CSS)) }
            }
            body {
                header {
                    h1 { (lang.t("Måluppföljning", "Goal follow-up")) " " (focus_name) ", " (run.period) }
                    p.meta {
                        (lang.t("Pipeline", "Pipeline")) " " (m.pipeline) " · "
                        (lang.t("data till och med", "data up to")) " " (m.last_period) " · "
                        (lang.t("per", "as of")) " " (m.as_of) " · styrkort " (m.styrkort_version) " · "
                        (lang.t("körning", "run")) " " (m.run_id)
                    }
                    nav {
                        a href="#mal" { (lang.t("Mål", "Goals")) }
                        a href="#enheter" { (lang.t("Nyckeltal per enhet", "Indicators by unit")) }
                        a href="#atgarder" { (lang.t("Åtgärder", "Actions")) }
                        a href="#datakvalitet" { (lang.t("Datakvalitet", "Data quality")) }
                    }
                }
                (summary(run, lang))
                (goal_tree(run, lang))
                (units(run, lang))
                (actions(run, lang))
                (data_quality(run, lang))
            }
        }
    }
}

fn summary(run: &RunTables, lang: Lang) -> Markup {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for g in &run.goals {
        if let Some((status, ..)) = run.goal_state(&g.id, run.goal_unit(g)) {
            *counts.entry(status).or_default() += 1;
        }
    }
    html! {
        section #sammanfattning {
            h2 { (lang.t("Sammanfattning", "Summary")) }
            p {
                (lang.t("Målen för", "Goals for")) " " (run.unit_name(&run.focus)) ", " (run.period) ": "
                @for s in ["met", "partly_met", "not_met", "no_data"] {
                    (chip(s, &format!("{} {}", counts.get(s).copied().unwrap_or(0), lang.status(s)))) " "
                }
            }
        }
    }
}

fn goal_tree(run: &RunTables, lang: Lang) -> Markup {
    let shown: BTreeSet<&str> = run
        .goals
        .iter()
        .filter(|g| run.goal_state(&g.id, run.goal_unit(g)).is_some())
        .map(|g| g.id.as_str())
        .collect();
    let roots: Vec<&Goal> = run
        .goals
        .iter()
        .filter(|g| shown.contains(g.id.as_str()))
        .filter(|g| g.parent.as_deref().is_none_or(|p| !shown.contains(p)))
        .collect();
    html! {
        section #mal {
            h2 { (lang.t("Mål", "Goals")) }
            @if roots.is_empty() {
                p { (lang.t("Inga mål följs upp för enheten.", "No goals are followed up for this unit.")) }
            }
            @for g in roots { (goal_block(run, lang, g, &shown)) }
        }
    }
}

fn goal_block(run: &RunTables, lang: Lang, goal: &Goal, shown: &BTreeSet<&str>) -> Markup {
    let at = run.goal_unit(goal);
    let (status, met, n, period) = run
        .goal_state(&goal.id, at)
        .unwrap_or_else(|| ("no_data".into(), 0.0, 0.0, run.period.clone()));
    let children: Vec<&Goal> = run
        .goals
        .iter()
        .filter(|c| c.parent.as_deref() == Some(goal.id.as_str()) && shown.contains(c.id.as_str()))
        .collect();
    html! {
        article class=(format!("goal g-{status}")) id=(format!("goal-{}", goal.id)) {
            h3 { (chip(&status, lang.status(&status))) " " (goal.name) " " small { "(" (goal.id) ")" } }
            p.basis {
                (lang.t("Grund", "Basis")) ": " (lang.basis(&goal.basis)) " – " (goal.reference) " · "
                (lang.t("Nivå", "Level")) ": " (goal.level) " · "
                (lang.t("Ägare", "Owner")) ": " (run.unit_name(&goal.owner))
                @if at != goal.owner { " · " (lang.t("uppföljt för", "followed up for")) " " (run.unit_name(at)) }
            }
            p { (lang.number(met, 0)) " " (lang.t("av", "of")) " " (lang.number(n, 0)) " " (lang.t("nyckeltal uppfyllda", "indicators met")) ", " (period) }
            @if let Some((text, author, date)) = run.analysis(&goal.id, at, &period) {
                div.analysis {
                    strong { (lang.t("Analys", "Analysis")) ": " } (text)
                    br; small { (author) ", " (date) }
                }
            }
            table.ind {
                thead { tr {
                    th { (lang.t("Nyckeltal", "Indicator")) }
                    th { (lang.t("Period", "Period")) }
                    th { (lang.t("Värde", "Value")) }
                    th { (lang.t("Målvärde", "Target")) }
                    th { (lang.t("Status", "Status")) }
                    th { (lang.t("Förändring", "Change")) }
                    th { (lang.t("Mot förra året", "Year on year")) }
                    th { (lang.t("Signal", "Signal")) }
                    th { (lang.t("Prognos helår", "Year-end forecast")) }
                } }
                tbody {
                    @for id in &goal.indicators {
                        (indicator_row(run, lang, id, at))
                    }
                }
            }
            @for id in &goal.indicators {
                @if let Some((text, author, date)) = run.cell(id, at).and_then(|c| run.analysis(id, at, &c.period)) {
                    div.analysis {
                        strong { (run.indicators.get(id).map(|i| i.name.as_str()).unwrap_or(id)) ": " } (text)
                        br; small { (author) ", " (date) }
                    }
                }
            }
            @if !children.is_empty() {
                div.children { @for c in children { (goal_block(run, lang, c, shown)) } }
            }
        }
    }
}

fn target_text(lang: Lang, c: &Cell) -> String {
    let Some(t) = c.target else {
        return "–".into();
    };
    let op = match c.target_kind.as_deref() {
        Some("floor") => "≥ ",
        Some("ceiling") => "≤ ",
        _ => "",
    };
    format!("{op}{}", lang.number(t, decimals_for(t)))
}

fn indicator_row(run: &RunTables, lang: Lang, id: &str, unit: &str) -> Markup {
    let name = run
        .indicators
        .get(id)
        .map(|i| i.name.clone())
        .unwrap_or_else(|| id.to_string());
    let Some(c) = run.cell(id, unit) else {
        return html! { tr { td { (name) } td colspan="8" { "–" } } };
    };
    let signal = run.signals.get(&(id.to_string(), unit.to_string()));
    let has_chart = !run.spc_series(id, unit).is_empty();
    html! {
        tr {
            td {
                @if has_chart { a href=(format!("#ind-{id}-{unit}")) { (name) } } @else { (name) }
                @if let (Some(r), Some(of)) = (c.rank, c.rank_of.filter(|of| *of > 1.0)) {
                    br; small { (lang.t("rang", "rank")) " " (lang.number(r, 0)) " " (lang.t("av", "of")) " " (lang.number(of, 0)) }
                }
                @if c.comparison.is_some() {
                    br; small { (lang.t("jämförelsevärde", "comparison value")) " " (num(lang, c.comparison)) }
                }
                @if unit != run.root {
                    @if let Some(v) = run.cell(id, &run.root).and_then(|r| r.value) {
                        br; small { (run.unit_name(&run.root)) " " (lang.number(v, decimals_for(v))) }
                    }
                }
            }
            td { (c.period) }
            td.num { (num(lang, c.value)) }
            td.num { (target_text(lang, c)) }
            td { (chip(&c.status, lang.status(&c.status))) }
            td.num { (signed(lang, c.change)) }
            td.num { (signed(lang, c.yoy)) }
            td {
                @if let Some(s) = signal {
                    (chip(&s.flag, lang.flag(&s.flag))) " " small { (lang.reason(&s.reason)) }
                }
            }
            td {
                @if let Some((y, lo, hi, outlook)) = signal.and_then(|s| s.forecast.clone()) {
                    (lang.number(y, decimals_for(y)))
                    @if let (Some(lo), Some(hi)) = (lo, hi) { " (" (lang.number(lo, decimals_for(lo))) "–" (lang.number(hi, decimals_for(hi))) ")" }
                    @if let Some(o) = outlook { br; small { (lang.outlook(&o)) } }
                }
            }
        }
    }
}

fn units(run: &RunTables, lang: Lang) -> Markup {
    html! {
        section #enheter {
            h2 { (lang.t("Nyckeltal per enhet", "Indicators by unit")) }
            p.meta { (lang.t(
                "Styrdiagram (SPC): värden, medelvärde (streckat), processgränser (prickat), säsongsförväntan (grönt, där serien har en säsong) och målvärde (rött). Blå punkter är särskilda orsaker till det bättre, orange till det sämre.",
                "SPC charts: values, mean (dashed), process limits (dotted), seasonal expectation (green, where the series has a season) and target (red). Blue points are special causes for the better, orange for the worse.")) }
            @for u in &run.units { (unit_section(run, lang, u)) }
        }
    }
}

fn unit_section(run: &RunTables, lang: Lang, unit: &Unit) -> Markup {
    let children = run.children(&unit.id);
    let ancestors: Vec<&str> = unit.path.split('/').collect();
    html! {
        section.unit id=(format!("u-{}", unit.id)) {
            h3 { (unit.name) " " small { "(" (unit.kind) ")" } }
            p.crumbs {
                @for a in &ancestors[..ancestors.len().saturating_sub(1)] {
                    @if run.units.iter().any(|u| u.id == *a) {
                        a href=(format!("#u-{a}")) { (run.unit_name(a)) } " › "
                    } @else { (run.unit_name(a)) " › " }
                }
                (unit.name)
                @if !children.is_empty() {
                    br; (lang.t("Enheter under", "Units beneath")) ": "
                    @for c in &children { a href=(format!("#u-{}", c.id)) { (c.name) } " " }
                }
            }
            @for (id, ind) in &run.indicators {
                @let series = run.spc_series(id, &unit.id);
                @if !series.is_empty() {
                    (spc_figure(run, lang, id, ind, unit, &series))
                }
                @if !children.is_empty() { (comparison(run, lang, id, ind, unit, &children)) }
            }
        }
    }
}

fn spc_figure(
    run: &RunTables,
    lang: Lang,
    id: &str,
    ind: &Indicator,
    unit: &Unit,
    series: &[&Cell],
) -> Markup {
    let points: Vec<SpcPoint> = series
        .iter()
        .map(|c| {
            let spc = c.spc.clone().expect("spc series cells carry limits");
            SpcPoint {
                period: c.period.clone(),
                value: c.value,
                mean: spc.mean,
                lpl: spc.lpl,
                upl: spc.upl,
                point_type: spc.point_type,
                expected: spc.expected,
            }
        })
        .collect();
    let target = series.last().and_then(|c| c.target);
    let signal = run.signals.get(&(id.to_string(), unit.id.clone()));
    let title = format!("{} – {}", ind.name, unit.name);
    html! {
        figure id=(format!("ind-{id}-{}", unit.id)) {
            figcaption {
                strong { (ind.name) }
                @if !ind.unit.is_empty() { " (" (ind.unit) ")" }
                @if let Some(s) = signal {
                    " " (variation_icon(lang, &s.variation))
                    @if let Some(a) = &s.assurance { " " (assurance_icon(lang, a)) }
                    " " (chip(&s.flag, lang.flag(&s.flag))) " " (lang.reason(&s.reason))
                }
            }
            (charts::spc_chart(&points, target, lang, &title))
        }
    }
}

fn comparison(
    run: &RunTables,
    lang: Lang,
    id: &str,
    ind: &Indicator,
    parent: &Unit,
    children: &[&Unit],
) -> Markup {
    let cells: Vec<(&Unit, &Cell)> = children
        .iter()
        .filter_map(|u| run.cell(id, &u.id).map(|c| (*u, c)))
        .filter(|(_, c)| c.value.is_some())
        .collect();
    if cells.len() < 2 {
        return html! {};
    }
    let period = &cells[0].1.period;
    let title = format!(
        "{} – {} {}, {period}",
        ind.name,
        lang.t("enheterna under", "units beneath"),
        parent.name
    );
    let target = run.cell(id, &parent.id).and_then(|c| c.target);
    let chart = if ind.proportion {
        let units: Vec<(String, String, f64, f64)> = cells
            .iter()
            .filter_map(|(u, c)| Some((u.id.clone(), u.name.clone(), c.numerator?, c.denominator?)))
            .filter(|u| u.3 > 0.0)
            .collect();
        // The indicator's scale (100 for a percentage), read back from a value and its parts.
        let scale = cells
            .iter()
            .find_map(|(_, c)| Some(c.value? / (c.numerator? / c.denominator?)))
            .filter(|s| s.is_finite() && *s > 0.0)
            .unwrap_or(100.0);
        charts::funnel_chart(&units, scale, lang, &title)
    } else {
        let mut bars: Vec<(String, String, f64)> = cells
            .iter()
            .map(|(u, c)| (u.id.clone(), u.name.clone(), c.value.unwrap_or(0.0)))
            .collect();
        bars.sort_by(|a, b| b.2.total_cmp(&a.2));
        charts::bar_chart(&bars, target, lang, &title)
    };
    html! {
        figure.compare {
            figcaption { strong { (ind.name) } " – " (lang.t("jämförelse mellan enheterna under", "units beneath")) " " (parent.name) ", " (period) }
            (chart)
        }
    }
}

fn actions(run: &RunTables, lang: Lang) -> Markup {
    let goal_name = |id: &str| {
        run.goals
            .iter()
            .find(|g| g.id == id)
            .map(|g| g.name.clone())
            .unwrap_or_else(|| id.to_string())
    };
    let open: Vec<&ActionRow> = run
        .actions
        .iter()
        .filter(|a| a.record_type == "action" && a.status != "done" && a.status != "cancelled")
        .collect();
    let without: Vec<&ActionRow> = run
        .actions
        .iter()
        .filter(|a| {
            a.record_type == "deviation_without_action"
                && a.grain == run.grain
                && a.period == run.period
        })
        .collect();
    html! {
        section #atgarder {
            h2 { (lang.t("Åtgärder", "Actions")) }
            h3 { (lang.t("Pågående och planerade åtgärder", "Open actions")) " (" (open.len()) ")" }
            table {
                thead { tr {
                    th { (lang.t("Åtgärd", "Action")) } th { (lang.t("Mål", "Goal")) } th { (lang.t("Enhet", "Unit")) }
                    th { (lang.t("Ansvarig", "Owner")) } th { (lang.t("Klart senast", "Due")) } th { (lang.t("Status", "Status")) }
                    th { (lang.t("Försenad", "Overdue")) }
                } }
                tbody { @for a in &open { tr {
                    td { (a.title) " " small { "(" (a.id) ")" } }
                    td { a href=(format!("#goal-{}", a.goal)) { (goal_name(&a.goal)) } }
                    td { a href=(format!("#u-{}", a.unit)) { (run.unit_name(&a.unit)) } }
                    td { (a.owner) } td { (a.due) } td { (a.status) }
                    td.num { @if let Some(d) = a.overdue_days { (chip("not_met", &format!("{} {}", lang.number(d, 0), lang.t("dagar", "days")))) } }
                } } }
            }
            h3 { (lang.t("Ej uppfyllda mål utan åtgärd", "Goals not met without an action")) ", " (run.period) " (" (without.len()) ")" }
            table {
                thead { tr { th { (lang.t("Mål", "Goal")) } th { (lang.t("Enhet", "Unit")) } } }
                tbody { @for a in &without { tr {
                    td { a href=(format!("#goal-{}", a.goal)) { (goal_name(&a.goal)) } }
                    td { a href=(format!("#u-{}", a.unit)) { (run.unit_name(&a.unit)) } }
                } } }
            }
        }
    }
}

fn data_quality(run: &RunTables, lang: Lang) -> Markup {
    // Units with no rows in the report's period, per indicator.
    let mut silent: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for ((ind, unit), _) in run.cells.iter() {
        if let Some(c) = run.cell(ind, unit)
            && c.n_rows == 0.0
            && c.value.is_none()
        {
            silent
                .entry(c.indicator.as_str())
                .or_default()
                .push(run.unit_name(&c.unit));
        }
    }
    html! {
        section #datakvalitet {
            h2 { (lang.t("Datakvalitet", "Data quality")) }
            table {
                thead { tr {
                    th { (lang.t("Källa", "Source")) } th { (lang.t("Rader lästa", "Rows read")) }
                    th { (lang.t("Avvisade", "Rejected")) } th { (lang.t("Senaste månad", "Latest month")) }
                    th { (lang.t("Vanligaste skäl", "Top reasons")) } th { (lang.t("Kontroller", "Checks")) }
                } }
                tbody { @for s in &run.manifest.sources { tr {
                    td { (s.name) }
                    td.num { (lang.number(s.rows_read as f64, 0)) }
                    td.num { (lang.number(s.rows_rejected as f64, 0)) }
                    td { (s.latest_month.clone().unwrap_or_default()) }
                    td { @for (kind, n, example) in run.rejected.get(&s.name).into_iter().flatten() {
                        (lang.number(*n as f64, 0)) " × " (kind) br; small { (example) } br;
                    } }
                    td { @for g in &s.gates { @if g.outcome != "pass" {
                        (chip(if g.outcome == "fail" { "not_met" } else { "partly_met" }, &g.gate)) " " small { (g.message) } br;
                    } } }
                } } }
            }
            h3 { (lang.t("Enheter utan rapporterade uppgifter", "Units that did not report")) ", " (run.period) }
            @if silent.is_empty() { p { (lang.t("Alla enheter har rapporterat.", "Every unit reported.")) } }
            ul { @for (ind, names) in &silent {
                li {
                    (run.indicators.get(*ind).map(|i| i.name.clone()).unwrap_or_else(|| ind.to_string())) ": "
                    (names.iter().take(10).cloned().collect::<Vec<_>>().join(", "))
                    @if names.len() > 10 { " " (lang.t("och", "and")) " " (names.len() - 10) " " (lang.t("till", "more")) }
                }
            } }
            @if !run.manifest.warnings.is_empty() {
                h3 { (lang.t("Varningar från körningen", "Warnings from the run")) }
                ul { @for w in &run.manifest.warnings { li { (w) } } }
            }
        }
    }
}
