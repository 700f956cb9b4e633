//! Cross-source indicators: "kostnad per brukare i hemtjänst" is the ledger's cost over home-care
//! clients. Each side is computed as an indicator of its own in its source's fused plan (its
//! own filter, the indicator's scope, grains and breakdowns), and the two are put together here,
//! per unit, grain, period and segment, before `finish` — so a parent's value is still the ratio
//! of its sums, never a mean of its children's ratios.

use polars::prelude::*;

use crate::definitions::{Pipeline, SIDE_SEPARATOR};
use crate::schema::RAW_COLUMNS;

/// The raw values with every cross-source indicator's two sides replaced by the indicator:
/// numerator from the numerator side, denominator from the denominator side's numerator, and
/// `n_rows` the numerator side's rows (0 where only the denominator side has rows).
pub(crate) fn combine_sides(
    raw: Vec<DataFrame>,
    pipeline: &Pipeline,
) -> PolarsResult<Vec<DataFrame>> {
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
    let mut out = vec![all.clone().lazy().filter(is_side.not()).collect()?];
    // The cell keys: RAW_COLUMNS without the indicator and the measures.
    let keys: Vec<Expr> = RAW_COLUMNS[1..5].iter().map(|k| col(*k)).collect();
    let with_keys = |extra: &[Expr]| keys.iter().chain(extra).cloned().collect::<Vec<_>>();
    for id in crossing {
        let side = |name: &str| {
            all.clone()
                .lazy()
                .filter(col("indicator_id").eq(lit(format!("{id}{SIDE_SEPARATOR}{name}"))))
        };
        let numerator = side("numerator").select(with_keys(&[col("numerator"), col("n_rows")]));
        let denominator =
            side("denominator").select(with_keys(&[col("numerator").alias("denominator")]));
        let mut columns = vec![lit(id).alias("indicator_id")];
        columns.extend(with_keys(&[
            col("numerator"),
            col("denominator"),
            col("n_rows").fill_null(lit(0i64)),
        ]));
        let joined = numerator
            .join(
                denominator,
                keys.clone(),
                keys.clone(),
                JoinArgs::new(JoinType::Full).with_coalesce(JoinCoalesce::CoalesceColumns),
            )
            .select(columns)
            .collect()?;
        out.push(joined);
    }
    Ok(out)
}
