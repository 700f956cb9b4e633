//! Actions (åtgärder): what administrations do to reach their goals. Read from the analysts' CSV,
//! flagged when overdue at the as-of date, and set against the goals that are not met: a not-met
//! goal at a unit with no open action there (or above it) is a deviation without action.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use polars::prelude::*;

use crate::definitions::{Diagnostic, Diagnostics, Pipeline, TableRow, read_table};
use crate::org::OrgTree;
use crate::period::days_since_epoch;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ActionStatus {
    Planned,
    Ongoing,
    Done,
    Delayed,
    Cancelled,
}

impl ActionStatus {
    pub(crate) fn parse(s: &str) -> Option<ActionStatus> {
        Some(match s {
            "planned" => ActionStatus::Planned,
            "ongoing" => ActionStatus::Ongoing,
            "done" => ActionStatus::Done,
            "delayed" => ActionStatus::Delayed,
            "cancelled" => ActionStatus::Cancelled,
            _ => return None,
        })
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ActionStatus::Planned => "planned",
            ActionStatus::Ongoing => "ongoing",
            ActionStatus::Done => "done",
            ActionStatus::Delayed => "delayed",
            ActionStatus::Cancelled => "cancelled",
        }
    }

    /// Still to be carried out.
    pub(crate) fn is_open(self) -> bool {
        !matches!(self, ActionStatus::Done | ActionStatus::Cancelled)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Action {
    pub(crate) action_id: String,
    pub(crate) goal_id: String,
    pub(crate) org_unit_id: String,
    pub(crate) title: String,
    pub(crate) owner: String,
    pub(crate) start: Option<NaiveDate>,
    pub(crate) due: NaiveDate,
    pub(crate) status: ActionStatus,
}

impl Action {
    /// Open and past its due date at the as-of date.
    pub(crate) fn is_overdue(&self, as_of: NaiveDate) -> bool {
        self.status.is_open() && self.due < as_of
    }
}

/// The columns of the actions file, in the order `action_of_row` reads them.
const ACTION_COLUMNS: [&str; 8] = [
    "action_id",
    "goal_id",
    "org_unit_id",
    "title",
    "owner",
    "start",
    "due",
    "status",
];

/// Reads the actions CSV the pipeline names (none: no actions).
pub(crate) fn load_actions(
    pipeline: &Pipeline,
    tree: &OrgTree,
) -> Result<Vec<Action>, Diagnostics> {
    let Some(file) = &pipeline.def.actions else {
        return Ok(Vec::new());
    };
    let path = pipeline.resolve(file);
    let (rows, mut problems) =
        read_table(&path, "actions", &ACTION_COLUMNS, pipeline.table_dialect())?;
    let goals = pipeline.goal_ids();
    let mut actions = Vec::new();
    let mut ids = BTreeSet::new();
    for row in &rows {
        match action_of_row(row, pipeline, tree, &goals, &mut ids) {
            Ok(action) => actions.push(action),
            Err(message) => problems.push(Diagnostic::at_line(
                &path,
                row.line,
                format!("action '{}'", row.get(0)),
                message,
            )),
        }
    }
    if problems.is_empty() {
        Ok(actions)
    } else {
        Err(Diagnostics(problems))
    }
}

/// One row of the actions file as an action, or what is wrong with it: an empty or repeated id
/// (`ids` holds those seen), an unknown goal or unit, a status or date that does not read.
fn action_of_row(
    row: &TableRow,
    pipeline: &Pipeline,
    tree: &OrgTree,
    goals: &BTreeSet<&str>,
    ids: &mut BTreeSet<String>,
) -> Result<Action, String> {
    let f = |k: usize| row.get(k).to_string();
    let date = |k: usize| -> Result<Option<NaiveDate>, String> {
        let text = f(k);
        if text.is_empty() {
            return Ok(None);
        }
        NaiveDate::parse_from_str(&text, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| {
                format!(
                    "column '{}': expected a date YYYY-MM-DD, found '{text}'",
                    ACTION_COLUMNS[k]
                )
            })
    };
    if f(0).is_empty() {
        return Err("column 'action_id': empty".into());
    }
    if !ids.insert(f(0)) {
        return Err("duplicate action_id".into());
    }
    if !goals.contains(f(1).as_str()) {
        return Err(format!(
            "column 'goal_id': unknown goal '{}'{}",
            f(1),
            pipeline.goal_hint(&f(1))
        ));
    }
    if !tree.contains(&f(2)) {
        return Err(format!(
            "column 'org_unit_id': unknown org unit '{}'{}",
            f(2),
            tree.did_you_mean(&f(2))
        ));
    }
    let Some(status) = ActionStatus::parse(&f(7)) else {
        return Err(format!(
            "column 'status': expected planned, ongoing, done, delayed or cancelled, found '{}'",
            f(7)
        ));
    };
    let start = date(5)?;
    let Some(due) = date(6)? else {
        return Err("column 'due': a due date is required".into());
    };
    Ok(Action {
        action_id: f(0),
        goal_id: f(1),
        org_unit_id: f(2),
        title: f(3),
        owner: f(4),
        start,
        due,
        status,
    })
}

/// `actions.parquet`: every action with `overdue` and `days_overdue`, then one row per not-met
/// goal × unit × grain in that grain's latest period that has no open action for the goal at the
/// unit or above it (`record_type = "deviation_without_action"`).
pub(crate) fn actions_table(
    actions: &[Action],
    goal_status: &DataFrame,
    tree: &OrgTree,
    as_of: NaiveDate,
) -> PolarsResult<DataFrame> {
    let mut rows = ActionRows::default();
    let mut sorted: Vec<&Action> = actions.iter().collect();
    sorted.sort_by(|a, b| a.action_id.cmp(&b.action_id));
    for a in sorted {
        let overdue = a.is_overdue(as_of);
        rows.push(
            "action",
            Some(a),
            &a.goal_id,
            &a.org_unit_id,
            Some(overdue),
            overdue.then(|| (as_of - a.due).num_days()),
            None,
        );
    }

    let latest = goal_status
        .clone()
        .lazy()
        .filter(col("is_latest_period"))
        .filter(col("status").eq(lit("not_met")))
        .select([
            col("goal_id"),
            col("org_unit_id"),
            col("grain"),
            col("period"),
        ])
        .sort(
            ["goal_id", "org_unit_id", "grain"],
            SortMultipleOptions::default(),
        )
        .collect()?;
    let get = |name: &str| latest.column(name).and_then(|c| c.str().cloned());
    let (goal, unit, grain, period) = (
        get("goal_id")?,
        get("org_unit_id")?,
        get("grain")?,
        get("period")?,
    );
    for i in 0..latest.height() {
        let (Some(g), Some(u), Some(gr), Some(p)) =
            (goal.get(i), unit.get(i), grain.get(i), period.get(i))
        else {
            continue;
        };
        let covered = tree.ancestors_and_self(u).iter().any(|anc| {
            actions
                .iter()
                .any(|a| a.goal_id == g && a.org_unit_id == anc.id && a.status.is_open())
        });
        if !covered {
            rows.push(
                "deviation_without_action",
                None,
                g,
                u,
                None,
                None,
                Some((gr, p)),
            );
        }
    }
    rows.frame()
}

#[derive(Default)]
struct ActionRows {
    record_type: Vec<&'static str>,
    action_id: Vec<Option<String>>,
    goal_id: Vec<String>,
    org_unit_id: Vec<String>,
    title: Vec<Option<String>>,
    owner: Vec<Option<String>>,
    start: Vec<Option<i32>>,
    due: Vec<Option<i32>>,
    status: Vec<Option<&'static str>>,
    overdue: Vec<Option<bool>>,
    days_overdue: Vec<Option<i64>>,
    grain: Vec<Option<String>>,
    period: Vec<Option<String>>,
}

impl ActionRows {
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        record_type: &'static str,
        action: Option<&Action>,
        goal: &str,
        unit: &str,
        overdue: Option<bool>,
        days_overdue: Option<i64>,
        period: Option<(&str, &str)>,
    ) {
        self.record_type.push(record_type);
        self.action_id.push(action.map(|a| a.action_id.clone()));
        self.goal_id.push(goal.to_string());
        self.org_unit_id.push(unit.to_string());
        self.title.push(action.map(|a| a.title.clone()));
        self.owner.push(action.map(|a| a.owner.clone()));
        self.start
            .push(action.and_then(|a| a.start).map(days_since_epoch));
        self.due.push(action.map(|a| days_since_epoch(a.due)));
        self.status.push(action.map(|a| a.status.as_str()));
        self.overdue.push(overdue);
        self.days_overdue.push(days_overdue);
        self.grain.push(period.map(|p| p.0.to_string()));
        self.period.push(period.map(|p| p.1.to_string()));
    }

    fn frame(self) -> PolarsResult<DataFrame> {
        let mut df = df!(
            "record_type" => self.record_type,
            "action_id" => self.action_id,
            "goal_id" => self.goal_id,
            "org_unit_id" => self.org_unit_id,
            "title" => self.title,
            "owner" => self.owner,
            "start" => self.start,
            "due" => self.due,
            "status" => self.status,
            "overdue" => self.overdue,
            "days_overdue" => self.days_overdue,
            "grain" => self.grain,
            "period" => self.period,
        )?;
        for name in ["start", "due"] {
            let dates = df.column(name)?.cast(&DataType::Date)?;
            df.with_column(dates)?;
        }
        Ok(df)
    }
}
