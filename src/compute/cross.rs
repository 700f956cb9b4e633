//! Cross-source indicators: "kostnad per brukare i hemtjänst" is the ledger's cost over home-care
//! clients. Each side is computed as an indicator of its own in its source's fused plan (its
//! own filter, the indicator's scope, grains and breakdowns), and the two are put together here,
//! per unit, grain, period and segment, before `finish` — so a parent's value is still the ratio
//! of its sums, never a mean of its children's ratios.

use polars::prelude::*;

use super::finish::RAW_COLUMNS;
use crate::definitions::{Pipeline, SIDE_SEPARATOR};

/// The raw values with every cross-source indicator's two sides replaced by the indicator:
/// numerator from the numerator side, denominator from the denominator side's numerator, and
/// `n_rows` the numerator side's rows (0 where only the denominator side has rows).
pub fn combine_sides(raw: Vec<DataFrame>, pipeline: &Pipeline) -> PolarsResult<Vec<DataFrame>> {
    let crossing: Vec<&str> = pipeline
        .def
        .indicators
        .iter()
        .filter(|i| i.is_cross_source())
        .map(|i| i.id.get_ref().as_str())
        .collect();
    if crossing.is_empty() {
        return Ok(raw);
    }
    let all = concat(
        raw.into_iter()
            .map(|df| df.lazy().select(RAW_COLUMNS.map(col)))
            .collect::<Vec<_>>(),
        UnionArgs::default(),
    )?
    .collect()?;
    let is_side = col("indicator_id")
        .str()
        .contains_literal(lit(SIDE_SEPARATOR));
    let mut out = vec![all.clone().lazy().filter(is_side.clone().not()).collect()?];
    let keys = ["org_unit_id", "grain", "period", "segment"];
    for id in crossing {
        let side = |name: &str| {
            all.clone()
                .lazy()
                .filter(col("indicator_id").eq(lit(format!("{id}{SIDE_SEPARATOR}{name}"))))
        };
        let numerator = side("numerator").select([
            col("org_unit_id"),
            col("grain"),
            col("period"),
            col("segment"),
            col("numerator"),
            col("n_rows"),
        ]);
        let denominator = side("denominator").select([
            col("org_unit_id"),
            col("grain"),
            col("period"),
            col("segment"),
            col("numerator").alias("denominator"),
        ]);
        let key_exprs: Vec<Expr> = keys.iter().map(|k| col(*k)).collect();
        let joined = numerator
            .join(
                denominator,
                key_exprs.clone(),
                key_exprs,
                JoinArgs::new(JoinType::Full).with_coalesce(JoinCoalesce::CoalesceColumns),
            )
            .select([
                lit(id).alias("indicator_id"),
                col("org_unit_id"),
                col("grain"),
                col("period"),
                col("segment"),
                col("numerator"),
                col("denominator"),
                col("n_rows").fill_null(lit(0i64)),
            ])
            .collect()?;
        out.push(joined);
    }
    Ok(out)
}
