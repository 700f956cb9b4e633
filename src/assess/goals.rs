//! Goal attainment (måluppfyllelse) per unit and period, rolled up from the goal's indicators and
//! its sub-goals by the goal's rule.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use polars::prelude::*;

use super::status::Status;
use crate::definitions::{GoalDef, GoalRule, Pipeline};
use crate::org::OrgTree;

/// A total cell's key without the segment, and its status.
const STATUS_OF_CELL: [&str; 5] = ["indicator_id", "org_unit_id", "grain", "period", "status"];

/// One member's status in a goal's cell, with its weight.
struct Member {
    status: Status,
    weight: f64,
}

/// The counts behind one goal cell.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GoalCell {
    pub(crate) status: Status,
    pub(crate) n_indicators: u32,
    pub(crate) n_met: u32,
    pub(crate) n_partly_met: u32,
    pub(crate) n_not_met: u32,
    pub(crate) n_no_data: u32,
    pub(crate) share_met: Option<f64>,
}

/// Rolls members up by a rule. Members without a target count in `n_indicators` only.
fn roll_up(members: &[Member], rule: &GoalRule) -> GoalCell {
    let count = |s: Status| members.iter().filter(|m| m.status == s).count() as u32;
    let (n_met, n_partly_met, n_not_met) = (
        count(Status::Met),
        count(Status::PartlyMet),
        count(Status::NotMet),
    );
    let n_no_data = count(Status::NoData) + count(Status::NotAssessable);
    let weight = |pred: &dyn Fn(Status) -> bool| -> f64 {
        members
            .iter()
            .filter(|m| pred(m.status))
            .map(|m| m.weight)
            .sum()
    };
    let assessed = weight(&|s| s.is_assessed());
    let share_met = (assessed > 0.0).then(|| weight(&|s| s == Status::Met) / assessed);
    let status = match share_met {
        None => Status::NoData,
        Some(share) => match rule {
            GoalRule::AllMet => {
                if n_partly_met == 0 && n_not_met == 0 {
                    Status::Met
                } else if n_met == 0 && n_partly_met == 0 {
                    Status::NotMet
                } else {
                    Status::PartlyMet
                }
            }
            GoalRule::Share { met_share } => {
                if share >= *met_share {
                    Status::Met
                } else if n_met == 0 && n_partly_met == 0 {
                    Status::NotMet
                } else {
                    Status::PartlyMet
                }
            }
        },
    };
    GoalCell {
        status,
        n_indicators: members.len() as u32,
        n_met,
        n_partly_met,
        n_not_met,
        n_no_data,
        share_met,
    }
}

/// A goal cell: unit, grain, period.
type CellKey<'a> = (&'a str, &'a str, &'a str);

/// `goal_id, org_unit_id, grain, period, status, n_indicators, n_met, n_partly_met, n_not_met,
/// n_no_data, share_met` for every unit in the owner's subtree and period where the goal has a
/// member. Indicator statuses are read from the deviations' `total` segment.
pub(crate) fn goal_status(
    pipeline: &Pipeline,
    tree: &OrgTree,
    deviations: &DataFrame,
) -> PolarsResult<DataFrame> {
    let totals = deviations
        .clone()
        .lazy()
        .filter(col("segment").eq(lit("total")))
        .select(crate::schema::cols(&STATUS_OF_CELL))
        .collect()?;
    let by_indicator = statuses_by_indicator(&totals)?;
    let results = roll_up_goals(pipeline, tree, &by_indicator);
    let mut goal_ids: Vec<&String> = results.keys().collect();
    goal_ids.sort();
    let cells: Vec<(&String, &CellKey<'_>, &GoalCell)> = goal_ids
        .into_iter()
        .flat_map(|g| results[g].iter().map(move |(k, c)| (g, k, c)))
        .collect();
    let count = |f: fn(&GoalCell) -> u32| cells.iter().map(|(_, _, c)| f(c)).collect::<Vec<u32>>();
    let counts = [
        count(|c| c.n_indicators),
        count(|c| c.n_met),
        count(|c| c.n_partly_met),
        count(|c| c.n_not_met),
        count(|c| c.n_no_data),
    ];
    let [a, b, c, d, e] = counts;
    df!(
        "goal_id" => cells.iter().map(|(g, _, _)| g.as_str()).collect::<Vec<_>>(),
        "org_unit_id" => cells.iter().map(|(_, k, _)| k.0).collect::<Vec<_>>(),
        "grain" => cells.iter().map(|(_, k, _)| k.1).collect::<Vec<_>>(),
        "period" => cells.iter().map(|(_, k, _)| k.2).collect::<Vec<_>>(),
        "status" => cells.iter().map(|(_, _, c)| c.status.as_str()).collect::<Vec<_>>(),
        "n_indicators" => a,
        "n_met" => b,
        "n_partly_met" => c,
        "n_not_met" => d,
        "n_no_data" => e,
        "share_met" => cells.iter().map(|(_, _, c)| c.share_met).collect::<Vec<_>>(),
    )
}

/// Each indicator's status per (unit, grain, period) cell, from the total segment's rows of the
/// deviations (`totals`, in `STATUS_OF_CELL` columns).
fn statuses_by_indicator(
    totals: &DataFrame,
) -> PolarsResult<HashMap<&str, BTreeMap<CellKey<'_>, Status>>> {
    let mut by_indicator: HashMap<&str, BTreeMap<CellKey<'_>, Status>> = HashMap::new();
    let cols: Vec<&StringChunked> = STATUS_OF_CELL
        .iter()
        .map(|c| totals.column(c).and_then(|c| c.str()))
        .collect::<PolarsResult<_>>()?;
    for i in 0..totals.height() {
        let get = |k: usize| cols[k].get(i).unwrap_or_default();
        let status = Status::parse(get(4)).unwrap_or(Status::NoTarget);
        by_indicator
            .entry(get(0))
            .or_default()
            .insert((get(1), get(2), get(3)), status);
    }
    Ok(by_indicator)
}

/// Every goal's cells, sub-goals first: the statuses of its indicators and of its sub-goals at
/// the units under its owner, rolled up by the goal's rule and weights.
fn roll_up_goals<'a>(
    pipeline: &Pipeline,
    tree: &OrgTree,
    by_indicator: &HashMap<&str, BTreeMap<CellKey<'a>, Status>>,
) -> HashMap<String, BTreeMap<CellKey<'a>, GoalCell>> {
    let goals = &pipeline.def.goals;
    let mut results: HashMap<String, BTreeMap<CellKey<'a>, GoalCell>> = HashMap::new();
    for goal in children_first(goals) {
        let children: Vec<&GoalDef> = goals
            .iter()
            .filter(|g| g.parent.as_ref().map(|p| p.get_ref()) == Some(goal.id.get_ref()))
            .collect();
        let units: BTreeSet<&str> = tree.subtree(goal.owner.get_ref()).into_iter().collect();
        let weight = |id: &str| goal.weights.get(id).copied().unwrap_or(1.0);
        let mut cells: BTreeMap<CellKey<'a>, Vec<Member>> = BTreeMap::new();
        for ind in &goal.indicators {
            for (key, status) in by_indicator
                .get(ind.get_ref().as_str())
                .into_iter()
                .flatten()
            {
                if units.contains(key.0) {
                    cells.entry(*key).or_default().push(Member {
                        status: *status,
                        weight: weight(ind.get_ref()),
                    });
                }
            }
        }
        for child in children {
            for (key, cell) in results.get(child.id.get_ref()).into_iter().flatten() {
                if units.contains(key.0) {
                    cells.entry(*key).or_default().push(Member {
                        status: cell.status,
                        weight: weight(child.id.get_ref()),
                    });
                }
            }
        }
        let rolled = cells
            .into_iter()
            .map(|(key, members)| (key, roll_up(&members, &goal.rule())))
            .collect();
        results.insert(goal.id.get_ref().clone(), rolled);
    }
    results
}

/// Goals ordered so that every sub-goal comes before its parent (the goal tree is checked for
/// cycles when the pipeline loads).
fn children_first(goals: &[GoalDef]) -> Vec<&GoalDef> {
    fn visit<'a>(
        g: &'a GoalDef,
        goals: &'a [GoalDef],
        done: &mut BTreeSet<&'a str>,
        out: &mut Vec<&'a GoalDef>,
    ) {
        if !done.insert(g.id.get_ref()) {
            return;
        }
        for child in goals
            .iter()
            .filter(|c| c.parent.as_ref().map(|p| p.get_ref()) == Some(g.id.get_ref()))
        {
            visit(child, goals, done, out);
        }
        out.push(g);
    }
    let mut done = BTreeSet::new();
    let mut out = Vec::new();
    for g in goals {
        visit(g, goals, &mut done, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(statuses: &[Status]) -> Vec<Member> {
        statuses
            .iter()
            .map(|&status| Member {
                status,
                weight: 1.0,
            })
            .collect()
    }

    #[test]
    fn default_rule() {
        use Status::*;
        let r = |s: &[Status]| roll_up(&members(s), &GoalRule::AllMet).status;
        assert_eq!(r(&[Met, Met, NoTarget]), Met);
        assert_eq!(r(&[Met, NotMet]), PartlyMet);
        assert_eq!(r(&[PartlyMet, NotMet]), PartlyMet);
        assert_eq!(r(&[NotMet, NotMet, NoData]), NotMet);
        assert_eq!(r(&[NoData, NoTarget, NotAssessable]), NoData);
        let cell = roll_up(
            &members(&[Met, NotMet, PartlyMet, NoData]),
            &GoalRule::AllMet,
        );
        assert_eq!(
            (
                cell.n_indicators,
                cell.n_met,
                cell.n_partly_met,
                cell.n_not_met,
                cell.n_no_data
            ),
            (4, 1, 1, 1, 1)
        );
        assert_eq!(cell.share_met, Some(1.0 / 3.0));
    }
}
