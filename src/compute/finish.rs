//! From raw aggregates to the `indicator_values` table: stock measures' coarser periods, the full
//! unit × period × segment grid (a unit in scope with no rows still gets its row), values, and
//! the descriptive columns, sorted so that reruns write identical bytes.

use std::collections::{BTreeMap, BTreeSet};

use polars::prelude::*;

use crate::definitions::{IndicatorDef, Rollup, StockRule, WhenNoRows};
use crate::org::OrgTree;
use crate::period::{Grain, RunMonths};
use crate::schema::{CELL_KEY, RAW_COLUMNS, VALUE_COLUMNS};

/// What `finish_values` needs to know about one indicator.
#[derive(Debug, Clone)]
pub(crate) struct IndicatorRules {
    pub(crate) id: String,
    pub(crate) scale: f64,
    pub(crate) has_denominator: bool,
    pub(crate) when_no_rows: WhenNoRows,
    pub(crate) stock: Option<StockRule>,
    pub(crate) rollup: Rollup,
    pub(crate) grains: Vec<Grain>,
    /// Units reported: the scope's subtrees (which must report) and the units above them.
    pub(crate) units: Vec<String>,
}

impl IndicatorRules {
    pub(crate) fn from_def(def: &IndicatorDef, tree: &OrgTree) -> IndicatorRules {
        let units = match &def.scope {
            Some(scope) => scope_units(tree, &scope.get_ref().roots()),
            None => tree.units().iter().map(|u| u.id.clone()).collect(),
        };
        let mut grains = def.grains.get_ref().clone();
        grains.sort();
        grains.dedup();
        IndicatorRules {
            id: def.id.get_ref().clone(),
            scale: def.scale,
            has_denominator: def.denominator.is_some(),
            when_no_rows: def.when_no_rows,
            stock: def.stock,
            rollup: def.rollup,
            grains,
            units,
        }
    }
}

/// The subtrees under `roots` and every ancestor of a root, sorted.
fn scope_units(tree: &OrgTree, roots: &[&str]) -> Vec<String> {
    let mut units = BTreeSet::new();
    for root in roots {
        units.extend(tree.subtree(root).into_iter().map(String::from));
        units.extend(
            tree.ancestors_and_self(root)
                .into_iter()
                .map(|u| u.id.clone()),
        );
    }
    units.into_iter().collect()
}

pub(crate) fn finish_values(
    raw: Vec<DataFrame>,
    rules: &[IndicatorRules],
    tree: &OrgTree,
    months: RunMonths,
) -> PolarsResult<DataFrame> {
    let frames: Vec<LazyFrame> = raw
        .into_iter()
        .map(|df| df.lazy().select(RAW_COLUMNS.map(col)))
        .collect();
    let raw = if frames.is_empty() {
        empty_raw().lazy()
    } else {
        concat(frames, UnionArgs::default())?
    };
    let rules_frame = rules_frame(rules)?;
    let raw = with_stock_periods(raw, &rules_frame, months)?;
    let raw = with_unweighted_means(raw, rules, tree)?.collect()?;

    let grid = grid(&raw, rules, months)?;
    let key_cols: Vec<Expr> = CELL_KEY.iter().map(|k| col(*k)).collect();
    let filled = grid
        .lazy()
        .join(
            raw.lazy(),
            key_cols.clone(),
            key_cols,
            JoinArgs::new(JoinType::Left),
        )
        .join(
            rules_frame.lazy(),
            [col("indicator_id")],
            [col("indicator_id")],
            JoinArgs::new(JoinType::Left),
        );

    let period_frame = months.period_frame(&Grain::ALL)?;
    let out = filled
        .with_columns(cell_values())
        .join(
            tree.units_frame()?.lazy(),
            [col("org_unit_id")],
            [col("org_unit_id")],
            JoinArgs::new(JoinType::Left),
        )
        .join(
            period_frame.lazy(),
            [col("grain"), col("period")],
            [col("grain"), col("period")],
            JoinArgs::new(JoinType::Left),
        )
        .select(
            VALUE_COLUMNS
                .iter()
                .map(|c| col(*c))
                .chain([col("__non_finite")])
                .collect::<Vec<_>>(),
        )
        .sort(
            CELL_KEY,
            SortMultipleOptions::default().with_maintain_order(true),
        )
        .collect()?;
    warn_non_finite(&out)?;
    out.drop("__non_finite")
}

/// A filled cell's published `value`, `numerator`, `denominator` and `n_rows` from its raw
/// aggregates and its indicator's rules (`scale`, `__has_denominator`, `__zero_when_empty`), and
/// `__non_finite`: whether an aggregate was not finite (and is null now).
fn cell_values() -> [Expr; 5] {
    let n = col("n_rows").fill_null(lit(0i64));
    let empty = n.clone().eq(lit(0i64));
    let zero = col("__zero_when_empty");
    let no_rows = when(zero.clone())
        .then(lit(0.0f64))
        .otherwise(lit(NULL).cast(DataType::Float64));
    let den = col("denominator");
    let value = when(empty.clone())
        .then(no_rows.clone())
        .when(col("__has_denominator"))
        .then(
            when(den.clone().is_null().or(den.clone().eq(lit(0.0))))
                .then(lit(NULL).cast(DataType::Float64))
                .otherwise(col("scale") * col("numerator") / den.clone()),
        )
        .otherwise(col("scale") * col("numerator"));
    let numerator = when(empty.clone())
        .then(no_rows)
        .otherwise(col("numerator"));
    let denominator = when(empty)
        .then(lit(NULL).cast(DataType::Float64))
        .otherwise(den);
    // An aggregate that overflowed (1e308 + 1e308) or divided by zero inside a row expression
    // (`sum(x / (a - a))`) is not a measurement: null, and a warning naming the cells.
    let non_finite = |e: Expr| e.clone().is_not_null().and(e.is_finite().not());
    let bad = non_finite(value.clone())
        .or(non_finite(numerator.clone()))
        .or(non_finite(denominator.clone()));
    let finite = |e: Expr| {
        when(e.clone().is_finite())
            .then(e)
            .otherwise(lit(NULL).cast(DataType::Float64))
    };
    [
        bad.clone().alias("__non_finite"),
        when(bad)
            .then(lit(NULL).cast(DataType::Float64))
            .otherwise(value)
            .alias("value"),
        finite(numerator).alias("numerator"),
        finite(denominator).alias("denominator"),
        n.alias("n_rows"),
    ]
}

/// Logs the cells whose aggregate was not finite (set to null), with up to five examples.
fn warn_non_finite(out: &DataFrame) -> PolarsResult<()> {
    let bad = out
        .clone()
        .lazy()
        .filter(col("__non_finite"))
        .select([
            col("indicator_id"),
            col("org_unit_id"),
            col("period"),
            col("segment"),
        ])
        .collect()?;
    if bad.height() == 0 {
        return Ok(());
    }
    let text = |name: &str, i: usize| -> PolarsResult<String> {
        Ok(bad
            .column(name)?
            .str()?
            .get(i)
            .unwrap_or_default()
            .to_string())
    };
    let mut examples = Vec::new();
    for i in 0..bad.height().min(5) {
        examples.push(format!(
            "{} {} {} {}",
            text("indicator_id", i)?,
            text("org_unit_id", i)?,
            text("period", i)?,
            text("segment", i)?
        ));
    }
    tracing::warn!(
        cells = bad.height(),
        examples = %examples.join("; "),
        "aggregates that are not finite (overflow, or division by zero inside a row expression) were set to null"
    );
    Ok(())
}

pub(super) fn empty_raw() -> DataFrame {
    df!(
        "indicator_id" => Vec::<String>::new(),
        "org_unit_id" => Vec::<String>::new(),
        "grain" => Vec::<String>::new(),
        "period" => Vec::<String>::new(),
        "segment" => Vec::<String>::new(),
        "numerator" => Vec::<f64>::new(),
        "denominator" => Vec::<f64>::new(),
        "n_rows" => Vec::<i64>::new(),
    )
    .expect("static frame")
}

fn rules_frame(rules: &[IndicatorRules]) -> PolarsResult<DataFrame> {
    df!(
        "indicator_id" => rules.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        "scale" => rules.iter().map(|r| r.scale).collect::<Vec<_>>(),
        "__has_denominator" => rules.iter().map(|r| r.has_denominator).collect::<Vec<_>>(),
        "__zero_when_empty" => rules.iter().map(|r| r.when_no_rows == WhenNoRows::Zero).collect::<Vec<_>>(),
        "__stock" => rules.iter().map(|r| match r.stock {
            None => "",
            Some(StockRule::Last) => "last",
            Some(StockRule::Mean) => "mean",
        }).collect::<Vec<_>>(),
    )
}

/// Stock measures (headcount, balances) must not add months up: their quarter, tertial, year and
/// ytd values are formed from the monthly values instead — the period's last month (`last`), or
/// the mean of the numerators and denominators of the months that have rows (`mean`).
fn with_stock_periods(
    raw: LazyFrame,
    rules_frame: &DataFrame,
    months: RunMonths,
) -> PolarsResult<LazyFrame> {
    let coarse = [Grain::Quarter, Grain::Tertial, Grain::Year, Grain::Ytd];
    let raw = raw.join(
        rules_frame
            .clone()
            .lazy()
            .select([col("indicator_id"), col("__stock")]),
        [col("indicator_id")],
        [col("indicator_id")],
        JoinArgs::new(JoinType::Left),
    );
    let is_stock = col("__stock").neq(lit(""));
    let flows = raw
        .clone()
        .filter(is_stock.clone().not().or(col("grain").eq(lit("month"))));

    let month_index = months
        .period_frame(&[Grain::Month])?
        .lazy()
        .select([col("period"), col("__first_month").alias("__month")]);
    let membership = months.membership_frame(&coarse)?.lazy();
    let bounds = months.period_frame(&coarse)?.lazy().select([
        col("grain"),
        col("period"),
        col("__last_month"),
    ]);
    let spread = raw
        .filter(is_stock.and(col("grain").eq(lit("month"))))
        .join(
            month_index,
            [col("period")],
            [col("period")],
            JoinArgs::new(JoinType::Inner),
        )
        .drop(cols(["grain", "period"]))
        .join(
            membership,
            [col("__month")],
            [col("__month")],
            JoinArgs::new(JoinType::Inner),
        );
    let last = spread
        .clone()
        .filter(col("__stock").eq(lit("last")))
        .join(
            bounds,
            [col("grain"), col("period")],
            [col("grain"), col("period")],
            JoinArgs::new(JoinType::Inner),
        )
        .filter(col("__month").eq(col("__last_month")))
        .select(RAW_COLUMNS.map(col));
    let mean = spread
        .filter(
            col("__stock")
                .eq(lit("mean"))
                .and(col("n_rows").gt(lit(0i64))),
        )
        .group_by(CELL_KEY.map(col))
        .agg([
            col("numerator").mean(),
            col("denominator").mean(),
            col("n_rows").sum(),
        ])
        .select(RAW_COLUMNS.map(col));
    concat(
        [flows.select(RAW_COLUMNS.map(col)), last, mean],
        UnionArgs::default(),
    )
}

/// Indicators with `rollup = "unweighted_mean"`: a leaf unit keeps its own value; every unit
/// above leaves gets the unweighted mean of the values of the leaf units beneath it that have one
/// (Kolada's rule for groups), with their number in `n_units`. Other rows get `n_units` null.
fn with_unweighted_means(
    raw: LazyFrame,
    rules: &[IndicatorRules],
    tree: &OrgTree,
) -> PolarsResult<LazyFrame> {
    let means: Vec<&IndicatorRules> = rules
        .iter()
        .filter(|r| r.rollup == Rollup::UnweightedMean)
        .collect();
    let no_units = lit(NULL).cast(DataType::Int64).alias("n_units");
    if means.is_empty() {
        return Ok(raw.with_column(no_units));
    }
    let mean_rules = df!(
        "indicator_id" => means.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        "__mean_has_den" => means.iter().map(|r| r.has_denominator).collect::<Vec<_>>(),
    )?;
    let tagged = raw
        .join(
            mean_rules.lazy(),
            [col("indicator_id")],
            [col("indicator_id")],
            JoinArgs::new(JoinType::Left),
        )
        .join(
            leaf_units_frame(tree)?.lazy(),
            [col("org_unit_id")],
            [col("org_unit_id")],
            JoinArgs::new(JoinType::Left),
        )
        .with_columns([
            col("__mean_has_den").is_not_null().alias("__mean"),
            col("__leaf").fill_null(lit(false)),
        ]);
    let out_cols: Vec<Expr> = RAW_COLUMNS
        .iter()
        .map(|c| col(*c))
        .chain([col("n_units")])
        .collect();
    let kept = tagged
        .clone()
        .filter(col("__mean").not().or(col("__leaf")))
        .with_column(
            when(col("__mean").and(col("n_rows").gt(lit(0i64))))
                .then(lit(1i64))
                .otherwise(lit(NULL).cast(DataType::Int64))
                .alias("n_units"),
        )
        .select(out_cols.clone());
    let above = means_above_leaves(tagged, tree)?.select(out_cols);
    concat([kept, above], UnionArgs::default())
}

/// `org_unit_id, __leaf = true` for every unit without children.
fn leaf_units_frame(tree: &OrgTree) -> PolarsResult<DataFrame> {
    let parents: BTreeSet<&str> = tree
        .units()
        .iter()
        .filter_map(|u| u.parent_id.as_deref())
        .collect();
    let leaves: Vec<&str> = tree
        .units()
        .iter()
        .map(|u| u.id.as_str())
        .filter(|id| !parents.contains(id))
        .collect();
    let n = leaves.len();
    df!("org_unit_id" => leaves, "__leaf" => vec![true; n])
}

/// Every unit above leaves, per cell of an `unweighted_mean` indicator: the mean of the finite
/// values of the leaves beneath it (`numerator`; `denominator` 1 for a ratio), their rows and
/// their number (`n_units`). `tagged` is the raw frame with `__mean`, `__leaf` and
/// `__mean_has_den`.
fn means_above_leaves(tagged: LazyFrame, tree: &OrgTree) -> PolarsResult<LazyFrame> {
    let leaf_value = when(col("__mean_has_den"))
        .then(col("numerator") / col("denominator"))
        .otherwise(col("numerator"));
    let ancestors = tree
        .ancestors_frame()?
        .lazy()
        .filter(col("__unit").neq(col("org_unit_id")))
        .select([
            col("__unit").alias("__leaf_unit"),
            col("org_unit_id").alias("__ancestor"),
        ]);
    Ok(tagged
        .filter(
            col("__mean")
                .and(col("__leaf"))
                .and(col("n_rows").gt(lit(0i64))),
        )
        .with_column(leaf_value.alias("__v"))
        .filter(col("__v").is_not_null().and(col("__v").is_finite()))
        .join(
            ancestors,
            [col("org_unit_id")],
            [col("__leaf_unit")],
            JoinArgs::new(JoinType::Inner),
        )
        .group_by([
            col("indicator_id"),
            col("__ancestor").alias("org_unit_id"),
            col("grain"),
            col("period"),
            col("segment"),
        ])
        .agg([
            col("__v").mean().alias("numerator"),
            col("__mean_has_den").first().alias("__has_den"),
            col("n_rows").sum().alias("n_rows"),
            len().cast(DataType::Int64).alias("n_units"),
        ])
        .with_column(
            when(col("__has_den"))
                .then(lit(1.0f64))
                .otherwise(lit(NULL).cast(DataType::Float64))
                .alias("denominator"),
        ))
}

/// Every (indicator, unit in scope, declared grain's period, segment) cell. Segments are the
/// total plus each breakdown value seen for the indicator anywhere in the run.
fn grid(raw: &DataFrame, rules: &[IndicatorRules], months: RunMonths) -> PolarsResult<DataFrame> {
    let mut segments: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let seen = raw
        .clone()
        .lazy()
        .filter(col("segment").neq(lit("total")))
        .select([col("indicator_id"), col("segment")])
        .unique(None, UniqueKeepStrategy::Any)
        .collect()?;
    let ids = seen.column("indicator_id")?.str()?;
    let segs = seen.column("segment")?.str()?;
    for (i, s) in ids.iter().zip(segs.iter()) {
        if let (Some(i), Some(s)) = (i, s) {
            segments
                .entry(i.to_string())
                .or_default()
                .insert(s.to_string());
        }
    }
    let periods: BTreeMap<Grain, Vec<String>> = Grain::ALL
        .iter()
        .map(|&g| (g, months.periods(g).into_iter().map(|p| p.label).collect()))
        .collect();
    let mut cols: [Vec<&str>; 5] = Default::default();
    let total = "total".to_string();
    for r in rules {
        let mut segs: Vec<&String> = vec![&total];
        if let Some(s) = segments.get(&r.id) {
            segs.extend(s.iter());
        }
        for unit in &r.units {
            for g in &r.grains {
                for p in &periods[g] {
                    for s in &segs {
                        cols[0].push(&r.id);
                        cols[1].push(unit);
                        cols[2].push(g.as_str());
                        cols[3].push(p);
                        cols[4].push(s);
                    }
                }
            }
        }
    }
    let [a, b, c, d, e] = cols;
    df!(CELL_KEY[0] => a, CELL_KEY[1] => b, CELL_KEY[2] => c, CELL_KEY[3] => d, CELL_KEY[4] => e)
}
