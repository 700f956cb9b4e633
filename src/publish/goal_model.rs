//! The goal model as tables beside the facts, so Power BI or DuckDB users join names and the
//! goal tree by id (a star schema): `indicators.parquet`, `goals.parquet`, `org_units.parquet`
//! and, where the pipeline has comparison groups, `groups.parquet`.

use polars::prelude::*;

use crate::definitions::Pipeline;
use crate::org::{Groups, OrgTree};

/// A serde enum's snake_case name (`higher_is_better`).
fn word(value: &impl serde::Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// `(file name, table)` for each goal-model table the pipeline has.
pub(crate) fn goal_model_tables(
    p: &Pipeline,
    tree: &OrgTree,
    groups: &Groups,
) -> PolarsResult<Vec<(&'static str, DataFrame)>> {
    let mut tables = vec![
        ("indicators.parquet", indicators(p)?),
        ("goals.parquet", goals(p)?),
        ("org_units.parquet", org_units(tree)?),
    ];
    if !groups.members.is_empty() {
        tables.push(("groups.parquet", group_members(groups)?));
    }
    Ok(tables)
}

fn indicators(p: &Pipeline) -> PolarsResult<DataFrame> {
    let defs = &p.def.indicators;
    let goal_ids = |id: &str| {
        let mut ids: Vec<&str> = p
            .def
            .goals
            .iter()
            .filter(|g| g.indicators.iter().any(|i| i.get_ref() == id))
            .map(|g| g.id.get_ref().as_str())
            .collect();
        ids.sort_unstable();
        ids.join(",")
    };
    df!(
        "indicator_id" => defs.iter().map(|d| d.id.get_ref().as_str()).collect::<Vec<_>>(),
        "indicator_name" => defs.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(),
        "unit" => defs.iter().map(|d| d.unit.as_str()).collect::<Vec<_>>(),
        "description" => defs.iter().map(|d| d.description.as_str()).collect::<Vec<_>>(),
        "polarity" => defs.iter().map(|d| word(&d.polarity)).collect::<Vec<_>>(),
        // A cross-source indicator's sources joined: "ledger, homecare_visits".
        "source" => defs.iter().map(|d| d.source_names().join(", ")).collect::<Vec<_>>(),
        "stat_kind" => defs.iter().map(|d| d.stat_kind.map(|k| word(&k))).collect::<Vec<_>>(),
        "goal_ids" => defs.iter().map(|d| goal_ids(d.id.get_ref())).collect::<Vec<_>>(),
    )
}

fn goals(p: &Pipeline) -> PolarsResult<DataFrame> {
    let defs = &p.def.goals;
    df!(
        "goal_id" => defs.iter().map(|g| g.id.get_ref().as_str()).collect::<Vec<_>>(),
        "goal_name" => defs.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(),
        "description" => defs.iter().map(|g| g.description.as_str()).collect::<Vec<_>>(),
        "level" => defs.iter().map(|g| g.level.as_str()).collect::<Vec<_>>(),
        "owner_unit_id" => defs.iter().map(|g| g.owner.get_ref().as_str()).collect::<Vec<_>>(),
        "parent_goal_id" => defs
            .iter()
            .map(|g| g.parent.as_ref().map(|x| x.get_ref().as_str()))
            .collect::<Vec<_>>(),
        "basis" => defs.iter().map(|g| word(&g.basis)).collect::<Vec<_>>(),
        "reference" => defs.iter().map(|g| g.reference.as_str()).collect::<Vec<_>>(),
        "indicator_ids" => defs
            .iter()
            .map(|g| g.indicators.iter().map(|i| i.get_ref().as_str()).collect::<Vec<_>>().join(","))
            .collect::<Vec<_>>(),
    )
}

/// `org_unit_id, org_name, parent_id, org_kind, org_level, org_path` (`UK/SN/SOC`).
pub(crate) fn org_units(tree: &OrgTree) -> PolarsResult<DataFrame> {
    let units = tree.units();
    let paths: Vec<String> = units
        .iter()
        .map(|u| {
            let mut chain: Vec<&str> = tree
                .ancestors_and_self(&u.id)
                .iter()
                .map(|a| a.id.as_str())
                .collect();
            chain.reverse();
            chain.join("/")
        })
        .collect();
    let levels: Vec<i32> = paths
        .iter()
        .map(|p| p.matches('/').count() as i32)
        .collect();
    df!(
        "org_unit_id" => units.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(),
        "org_name" => units.iter().map(|u| u.name.as_str()).collect::<Vec<_>>(),
        "parent_id" => units.iter().map(|u| u.parent_id.as_deref()).collect::<Vec<_>>(),
        "org_kind" => units.iter().map(|u| u.kind.as_str()).collect::<Vec<_>>(),
        "org_level" => levels,
        "org_path" => paths,
    )
}

fn group_members(groups: &Groups) -> PolarsResult<DataFrame> {
    let (mut g, mut u) = (Vec::new(), Vec::new());
    for (group, members) in &groups.members {
        for m in members {
            g.push(group.as_str());
            u.push(m.as_str());
        }
    }
    df!("group_id" => g, "org_unit_id" => u)
}

/// Adds `name_col` from `names` (keyed by `key`) right after `key`, for tables read on their own
/// (a deviation row that says "Sjukfrånvaro", not only `sick_leave_pct`). Row order is kept.
pub(crate) fn with_name(
    table: DataFrame,
    names: &DataFrame,
    key: &str,
    name_col: &str,
) -> PolarsResult<DataFrame> {
    if table
        .get_column_names()
        .iter()
        .any(|c| c.as_str() == name_col)
    {
        return Ok(table);
    }
    let mut order: Vec<Expr> = Vec::new();
    for c in table.get_column_names() {
        order.push(col(c.as_str()));
        if c.as_str() == key {
            order.push(col(name_col));
        }
    }
    let mut args = JoinArgs::new(JoinType::Left);
    args.maintain_order = MaintainOrderJoin::Left;
    table
        .lazy()
        .join(
            names.clone().lazy().select([col(key), col(name_col)]),
            [col(key)],
            [col(key)],
            args,
        )
        .select(order)
        .collect()
}
