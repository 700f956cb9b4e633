//! The direct path, for indicators whose aggregates have no exact mergeable state (see
//! `partial`): every row is joined to its unit's ancestors and to every period its month belongs
//! to, and one group-by per segmentation computes each cell from its rows. Exact for any
//! aggregate polars' SQL accepts, but its memory grows with rows × levels × periods, which is
//! why only those indicators take it.

use std::collections::BTreeSet;

use polars::prelude::*;

use super::expr::{IndicatorAggs, compile_indicator};
use super::grains_needed;
use crate::definitions::IndicatorDef;
use crate::org::OrgTree;
use crate::period::{Grain, RunMonths};
use crate::schema::RAW_COLUMNS;

/// The direct plan for `defs` (with their slot in the source), over the source's rows (with the
/// `__filter_{slot}` columns added). Output: the raw long format, one row per cell with rows.
/// An error names the indicator whose expression does not compile.
pub(crate) fn plan(
    defs: &[(usize, &IndicatorDef)],
    total_rows: LazyFrame,
    breakdown_rows: LazyFrame,
    tree: &OrgTree,
    months: RunMonths,
) -> Result<LazyFrame, (String, String)> {
    let internal = |e: PolarsError| (String::new(), e.to_string());
    let aggs: Vec<IndicatorAggs> = defs
        .iter()
        .map(|(slot, ind)| compile_indicator(ind, *slot).map_err(|m| (ind.id.get_ref().clone(), m)))
        .collect::<Result<_, _>>()?;
    let grains = grains_needed(defs.iter().map(|(_, d)| *d));
    let explode = exploder(tree, months, &grains, &aggs).map_err(internal)?;
    let (total_rows, breakdown_rows) = (explode(total_rows), explode(breakdown_rows));
    let keys = || vec![col("__org_unit"), col("__grain"), col("__period")];
    let mut long = vec![grouped(
        total_rows,
        keys(),
        lit("total"),
        &aggs.iter().collect::<Vec<_>>(),
    )];
    let breakdowns: BTreeSet<String> = defs
        .iter()
        .flat_map(|(_, d)| d.breakdown.iter().map(|b| b.get_ref().clone()))
        .collect();
    for dim in &breakdowns {
        let members: Vec<&IndicatorAggs> = defs
            .iter()
            .zip(&aggs)
            .filter(|((_, d), _)| d.breakdown.iter().any(|b| b.get_ref() == dim))
            .map(|(_, a)| a)
            .collect();
        let mut by = keys();
        by.push(col(dim.as_str()));
        long.push(grouped(
            breakdown_rows.clone(),
            by,
            super::segment_label(dim),
            &members,
        ));
    }
    let values = concat(long, UnionArgs::default()).map_err(internal)?;
    Ok(values
        .join(
            tree.unit_ids_frame().map_err(internal)?.lazy(),
            [col("__org_unit")],
            [col("__unit")],
            JoinArgs::new(JoinType::Inner),
        )
        .select(RAW_COLUMNS.map(col)))
}

/// What makes the direct path's rows: each row once per ancestor of its unit (`__org_unit`, the
/// unit itself included) and per period of `grains` its month belongs to (`__grain`,
/// `__period`), with each indicator's own-row mask.
fn exploder(
    tree: &OrgTree,
    months: RunMonths,
    grains: &[Grain],
    aggs: &[IndicatorAggs],
) -> PolarsResult<impl Fn(LazyFrame) -> LazyFrame + use<>> {
    let membership = months.membership_frame(grains)?;
    let ancestors = tree
        .ancestor_index_frame()?
        .lazy()
        .select([col("__unit"), col("__ancestor").alias("__org_unit")]);
    let membership = membership.lazy().select([
        col("__month"),
        col("grain").alias("__grain"),
        col("period").alias("__period"),
    ]);
    let own_masks: Vec<Expr> = aggs
        .iter()
        .filter_map(|a| {
            a.own_mask
                .as_ref()
                .map(|(n, e)| e.clone().alias(n.as_str()))
        })
        .collect();
    Ok(move |rows: LazyFrame| {
        let exploded = rows
            .join(
                ancestors.clone(),
                [col("__unit")],
                [col("__unit")],
                JoinArgs::new(JoinType::Inner),
            )
            .join(
                membership.clone(),
                [col("__month")],
                [col("__month")],
                JoinArgs::new(JoinType::Inner),
            );
        if own_masks.is_empty() {
            exploded
        } else {
            exploded.with_columns(own_masks.clone())
        }
    })
}

/// One group-by computing every member indicator, unpivoted to one row per indicator.
fn grouped(rows: LazyFrame, by: Vec<Expr>, segment: Expr, members: &[&IndicatorAggs]) -> LazyFrame {
    let mut aggs = Vec::new();
    for a in members {
        aggs.push(a.numerator.clone());
        aggs.extend(a.denominator.clone());
        aggs.push(a.n_rows.clone());
    }
    let wide = rows
        .group_by(by)
        .agg(aggs)
        .with_column(segment.alias("segment"));
    let per_indicator: Vec<LazyFrame> = members
        .iter()
        .map(|a| {
            let out_name = |e: &Expr| {
                e.clone()
                    .meta()
                    .output_name()
                    .map(|n| n.to_string())
                    .expect("aggregations are aliased in compile_indicator")
            };
            wide.clone().select([
                lit(a.id.as_str()).alias("indicator_id"),
                col("__org_unit"),
                col("__grain").alias("grain"),
                col("__period").alias("period"),
                col("segment"),
                col(out_name(&a.numerator)).alias("numerator"),
                match &a.denominator {
                    Some(d) => col(out_name(d)),
                    None => lit(NULL).cast(DataType::Float64),
                }
                .alias("denominator"),
                col(out_name(&a.n_rows)).alias("n_rows"),
            ])
        })
        .collect();
    concat(per_indicator, UnionArgs::default()).expect("frames of identical schema concatenate")
}
