//! Indicator expressions → polars aggregations. The SQL text is compiled by polars' own SQL
//! support; we only rewrite the result so that an indicator's row filter applies inside its
//! aggregations, which lets many indicators with different filters share one group-by.

use polars::prelude::*;

use crate::definitions::{IndicatorDef, compile_sql_expr};

/// The aggregations of one indicator, ready to go into a fused group-by.
#[derive(Debug, Clone)]
pub(crate) struct IndicatorAggs {
    pub(crate) id: String,
    pub(crate) numerator: Expr,
    pub(crate) denominator: Option<Expr>,
    /// Rows that counted: `len()`, or the number of rows passing the filter.
    pub(crate) n_rows: Expr,
    /// `(column name, boolean expression)` to add after the join to ancestors, for indicators
    /// that count only a unit's own rows.
    pub(crate) own_mask: Option<(String, Expr)>,
}

/// Compiles an indicator whose expressions were already checked by `definitions`.
/// `slot` makes the helper column names unique within a source.
pub(crate) fn compile_indicator(ind: &IndicatorDef, slot: usize) -> Result<IndicatorAggs, String> {
    // The row condition (filter and scope) is the column `__filter_{slot}`, added to the rows
    // by the source's plan.
    let filter_name = format!("__filter_{slot}");
    let filtered = ind.selects_rows();
    // Indicators over published values count only a unit's own rows: a post-join mask
    // `__own_{slot}` adds "the row is the unit's own" to the filter.
    let own_name = format!("__own_{slot}");
    let own_rows = ind.rollup != crate::definitions::Rollup::Rows;
    let mask = if own_rows {
        Some(own_name.as_str())
    } else {
        filtered.then_some(filter_name.as_str())
    };
    let numerator = restrict_to(compile_sql_expr(ind.numerator.get_ref())?, mask)
        .cast(DataType::Float64)
        .alias(format!("__num_{slot}"));
    let denominator = match &ind.denominator {
        Some(d) => Some(
            restrict_to(compile_sql_expr(d.get_ref())?, mask)
                .cast(DataType::Float64)
                .alias(format!("__den_{slot}")),
        ),
        None => None,
    };
    let n_rows = match mask {
        Some(m) => col(m).sum(),
        None => len(),
    }
    .cast(DataType::Int64)
    .alias(format!("__n_{slot}"));
    let own_mask = own_rows.then(|| {
        let own = col("__unit").eq(col("__org_unit"));
        let mask = if filtered {
            own.and(col(filter_name.as_str()))
        } else {
            own
        };
        (own_name.clone(), mask)
    });
    Ok(IndicatorAggs {
        own_mask,
        id: ind.id.get_ref().clone(),
        numerator,
        denominator,
        n_rows,
    })
}

/// Makes every column read inside `expr` see only the rows where the boolean column `mask` is
/// true, and `count(*)` count only those rows. Without a mask the expression is unchanged.
pub(crate) fn restrict_to(expr: Expr, mask: Option<&str>) -> Expr {
    let Some(mask) = mask else { return expr };
    expr.map_expr(|e| match e {
        Expr::Column(name) => Expr::Column(name).filter(col(mask)),
        Expr::Len => col(mask).sum(),
        other => other,
    })
}
