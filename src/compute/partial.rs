//! Phase 1 of the two-phase aggregation: an indicator's SQL aggregates (compiled by polars) are
//! taken apart into *partial states* that can be computed once per `(own unit, month, segment)`
//! and merged later — over the org tree and over periods — without going back to the rows.
//!
//! | aggregate in the expression | partial state per (unit, month, segment) | merge |
//! | --- | --- | --- |
//! | `sum(x)` | sum of x | add |
//! | `avg(x)` | sum of x, count of non-null x | add, then divide |
//! | `count(x)`, `count(*)`, null counts | counts | add |
//! | `min(x)`, `max(x)` | min, max | min, max |
//! | `count(distinct x)` | the distinct values of x | union, then count |
//! | `median(x)` | each value of x with its multiplicity | merge multisets, then median |
//!
//! Everything around the aggregates (arithmetic, `case`, casts, elementwise functions) is kept
//! and evaluated per result cell on the merged states, so `sum(a) / count(*)` or
//! `count(distinct x)` (which polars writes as `n_unique(x) - (null_count(x) > 0)`) come out as
//! they would over the cell's rows. An expression with an aggregate that has no exact mergeable
//! state (standard deviation, first/last, quantiles other than the median, window functions) is
//! computed the direct way instead, per cell from its rows; `explain` names those indicators.

use polars::prelude::*;

use super::sql::RowAgg;
use crate::definitions::{IndicatorDef, compile_sql_expr};

/// How a scalar state merges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Merge {
    Sum,
    Min,
    Max,
}

/// A state that is one number per cell: an aggregation over the cell's rows.
#[derive(Debug, Clone)]
pub(crate) struct ScalarState {
    pub(crate) name: String,
    /// The phase-1 aggregation over rows (already restricted to the indicator's filter).
    pub(crate) agg: Expr,
    unaliased: Expr,
    pub(crate) merge: Merge,
    /// The same aggregation in parts, for engines that write it as SQL.
    pub(crate) row: RowAgg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SetKind {
    /// `n_unique`: the distinct values (null counts as a value, as in polars).
    Distinct,
    /// `median`: non-null values with their multiplicity.
    Median,
}

/// A state that keeps values: distinct sets and value multisets.
#[derive(Debug, Clone)]
pub(crate) struct SetState {
    pub(crate) name: String,
    pub(crate) kind: SetKind,
    /// The row-level value.
    pub(crate) value: Expr,
    /// The boolean filter column restricting the rows, if the indicator has a filter.
    pub(crate) mask: Option<String>,
}

/// An indicator taken apart into partial states, with its numerator and denominator rewritten
/// over the merged states' columns.
#[derive(Debug, Clone)]
pub(crate) struct Decomposed {
    pub(crate) id: String,
    pub(crate) numerator: Expr,
    pub(crate) denominator: Option<Expr>,
    /// The scalar state counting the rows that passed the filter.
    pub(crate) n_rows: String,
    pub(crate) scalars: Vec<ScalarState>,
    pub(crate) sets: Vec<SetState>,
}

/// Takes an indicator apart. `Ok(Err(why))` when it has an aggregate without an exact mergeable
/// state (it is then computed directly); `Err` when its SQL does not compile or can never be an
/// indicator (a column outside any aggregate).
pub(crate) fn decompose(
    ind: &IndicatorDef,
    slot: usize,
) -> Result<Result<Decomposed, String>, String> {
    let mask = ind.selects_rows().then(|| format!("__filter_{slot}"));
    let numerator = compile_sql_expr(ind.numerator.get_ref())?;
    let denominator = match &ind.denominator {
        Some(d) => Some(compile_sql_expr(d.get_ref())?),
        None => None,
    };
    let mut walk = Walker {
        prefix: format!("__p{slot}_"),
        mask: mask.clone(),
        scalars: Vec::new(),
        sets: Vec::new(),
        invalid: None,
    };
    let _ = walk.count_rows();
    let n_rows_name = walk.scalars[0].name.clone();
    let numerator = walk.post(&numerator);
    let denominator = denominator.map(|d| walk.post(&d)).transpose();
    if let Some(invalid) = walk.invalid {
        return Err(invalid);
    }
    let (numerator, denominator) = match (numerator, denominator) {
        (Ok(n), Ok(d)) => (n, d),
        (Err(why), _) | (_, Err(why)) => return Ok(Err(why)),
    };
    Ok(Ok(Decomposed {
        id: ind.id.get_ref().clone(),
        numerator: numerator.cast(DataType::Float64),
        denominator: denominator.map(|d| d.cast(DataType::Float64)),
        n_rows: n_rows_name,
        scalars: walk.scalars,
        sets: walk.sets,
    }))
}

struct Walker {
    prefix: String,
    mask: Option<String>,
    scalars: Vec<ScalarState>,
    sets: Vec<SetState>,
    /// Set when the expression can never be an indicator (a column outside any aggregate).
    invalid: Option<String>,
}

impl Walker {
    fn next_name(&self) -> String {
        format!("{}{}", self.prefix, self.scalars.len() + self.sets.len())
    }

    fn scalar(&mut self, agg: Expr, merge: Merge, row: RowAgg) -> Expr {
        // The same aggregation twice in one indicator (`len()` for n_rows and inside a sum) is
        // one state.
        let same = format!("{agg:?}");
        if let Some(s) = self
            .scalars
            .iter()
            .find(|s| s.merge == merge && format!("{:?}", s.unaliased) == same)
        {
            return col(s.name.as_str());
        }
        let name = self.next_name();
        self.scalars.push(ScalarState {
            name: name.clone(),
            unaliased: agg.clone(),
            agg: agg.alias(name.as_str()),
            merge,
            row,
        });
        col(name.as_str())
    }

    fn set(&mut self, value: &Expr, kind: SetKind) -> Expr {
        let name = self.next_name();
        self.sets.push(SetState {
            name: name.clone(),
            kind,
            value: value.clone(),
            mask: self.mask.clone(),
        });
        col(name.as_str())
    }

    /// `x` where the row passes the filter, null elsewhere.
    fn masked(&self, x: &Expr) -> Expr {
        match &self.mask {
            Some(m) => when(col(m.as_str())).then(x.clone()).otherwise(lit(NULL)),
            None => x.clone(),
        }
    }

    /// Rows passing the filter where `cond` holds, as an Int64 count.
    fn count_where(&mut self, cond: Option<Expr>) -> Expr {
        let passes = match (&self.mask, cond) {
            (Some(m), Some(c)) => Some(col(m.as_str()).and(c)),
            (Some(m), None) => Some(col(m.as_str())),
            (None, Some(c)) => Some(c),
            (None, None) => None,
        };
        let (agg, row) = match passes {
            // Summed as booleans, then cast: a cast before the sum writes 8 bytes per row.
            Some(p) => (p.clone().sum().cast(DataType::Int64), RowAgg::CountTrue(p)),
            None => (len().cast(DataType::Int64), RowAgg::Rows),
        };
        self.scalar(agg, Merge::Sum, row)
    }

    fn count_rows(&mut self) -> Expr {
        self.count_where(None)
    }

    /// Rewrites the part of an expression above its aggregates.
    fn post(&mut self, e: &Expr) -> Result<Expr, String> {
        Ok(match e {
            Expr::Alias(inner, name) => self.post(inner)?.alias(name.clone()),
            Expr::Literal(_) => e.clone(),
            Expr::BinaryExpr { left, op, right } => Expr::BinaryExpr {
                left: Arc::new(self.post(left)?),
                op: *op,
                right: Arc::new(self.post(right)?),
            },
            Expr::Cast {
                expr,
                dtype,
                options,
            } => Expr::Cast {
                expr: Arc::new(self.post(expr)?),
                dtype: dtype.clone(),
                options: *options,
            },
            Expr::Ternary {
                predicate,
                truthy,
                falsy,
            } => Expr::Ternary {
                predicate: Arc::new(self.post(predicate)?),
                truthy: Arc::new(self.post(truthy)?),
                falsy: Arc::new(self.post(falsy)?),
            },
            Expr::Len => self.count_rows(),
            Expr::Agg(agg) => self.agg(agg)?,
            Expr::Function { input, function } => {
                if variant(function) == "NullCount" && input.len() == 1 && row_level(&input[0]) {
                    let x = input[0].clone();
                    self.count_where(Some(x.is_null()))
                } else if elementwise(function) {
                    Expr::Function {
                        input: input
                            .iter()
                            .map(|i| self.post(i))
                            .collect::<Result<_, _>>()?,
                        function: function.clone(),
                    }
                } else {
                    return Err(format!(
                        "function {} has no mergeable state",
                        variant(function)
                    ));
                }
            }
            Expr::Column(name) => {
                let why = format!(
                    "column '{name}' is used outside an aggregate: an indicator's numerator and denominator aggregate rows, e.g. sum({name}) or count(distinct {name})"
                );
                self.invalid = Some(why.clone());
                return Err(why);
            }
            other => return Err(format!("{other:?} has no mergeable state")),
        })
    }

    fn agg(&mut self, agg: &AggExpr) -> Result<Expr, String> {
        let input = |x: &Arc<Expr>| -> Result<Expr, String> {
            if row_level(x) {
                Ok((**x).clone())
            } else {
                Err(format!(
                    "aggregate over '{x:?}', which is not a row-by-row expression"
                ))
            }
        };
        Ok(match agg {
            AggExpr::Sum(x) => {
                let x = self.masked(&input(x)?);
                self.scalar(x.clone().sum(), Merge::Sum, RowAgg::Sum(x))
            }
            AggExpr::Mean(x) => {
                let x = input(x)?;
                let masked = self.masked(&x);
                let sum = self.scalar(masked.clone().sum(), Merge::Sum, RowAgg::Sum(masked));
                let count = self.count_where(Some(x.is_not_null()));
                when(count.clone().gt(lit(0i64)))
                    .then(sum.cast(DataType::Float64) / count.cast(DataType::Float64))
                    .otherwise(lit(NULL).cast(DataType::Float64))
            }
            AggExpr::Count {
                input: x,
                include_nulls,
            } => {
                let x = input(x)?;
                if *include_nulls {
                    self.count_rows()
                } else {
                    self.count_where(Some(x.is_not_null()))
                }
            }
            AggExpr::Min { input: x, .. } => {
                let x = self.masked(&input(x)?);
                self.scalar(x.clone().min(), Merge::Min, RowAgg::Min(x))
            }
            AggExpr::Max { input: x, .. } => {
                let x = self.masked(&input(x)?);
                self.scalar(x.clone().max(), Merge::Max, RowAgg::Max(x))
            }
            AggExpr::NUnique(x) => {
                let x = input(x)?;
                self.set(&x, SetKind::Distinct)
            }
            AggExpr::Median(x) => {
                let x = input(x)?;
                self.set(&x, SetKind::Median)
            }
            other => {
                return Err(format!(
                    "aggregate {:?} has no exact mergeable state",
                    Expr::Agg(other.clone())
                ));
            }
        })
    }
}

/// The variant name of a polars function (`NullCount`, `StringExpr`, `Boolean`, …).
fn variant(f: &FunctionExpr) -> String {
    format!("{f:?}")
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

/// Functions that map each value to one value, independently of the other rows, so they give
/// the same result whether evaluated on rows or on merged per-cell states. Anything not listed
/// (cumulative, shifting, ranking, aggregating functions) makes the indicator take the direct
/// path: an unknown function must never be merged wrongly.
fn elementwise(f: &FunctionExpr) -> bool {
    let debug = format!("{f:?}");
    match variant(f).as_str() {
        "StringExpr" => !debug.contains("Concat"),
        "Boolean" => {
            let inner = debug.trim_start_matches("Boolean(");
            !(inner.starts_with("Any") || inner.starts_with("All"))
        }
        "TemporalExpr" | "Abs" | "Negate" | "Pow" | "Sign" | "FillNull" | "Coalesce" | "Log"
        | "Log1p" | "Exp" | "Round" | "RoundSF" | "Truncate" | "Floor" | "Ceil" | "Clip"
        | "Trigonometry" | "Atan2" => true,
        _ => false,
    }
}

/// True when `e` computes one value per row from that row alone.
fn row_level(e: &Expr) -> bool {
    match e {
        Expr::Column(_) | Expr::Literal(_) => true,
        Expr::Alias(inner, _) => row_level(inner),
        Expr::BinaryExpr { left, right, .. } => row_level(left) && row_level(right),
        Expr::Cast { expr, .. } => row_level(expr),
        Expr::Ternary {
            predicate,
            truthy,
            falsy,
        } => row_level(predicate) && row_level(truthy) && row_level(falsy),
        Expr::Function { input, function } => elementwise(function) && input.iter().all(row_level),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(numerator: &str, filter: Option<&str>) -> Decomposed {
        let mut w = Walker {
            prefix: "__p0_".into(),
            mask: filter.map(|_| "__filter_0".to_string()),
            scalars: Vec::new(),
            sets: Vec::new(),
            invalid: None,
        };
        let _ = w.count_rows();
        let e = compile_sql_expr(numerator).unwrap();
        let numerator = w
            .post(&e)
            .unwrap_or_else(|why| panic!("{numerator}: {why}"));
        Decomposed {
            id: "x".into(),
            numerator,
            denominator: None,
            n_rows: "__p0_0".into(),
            scalars: w.scalars,
            sets: w.sets,
        }
    }

    #[test]
    fn each_aggregate_keeps_the_states_it_needs() {
        let kinds = |d: &Decomposed| {
            (
                d.scalars.iter().map(|s| s.merge).collect::<Vec<_>>(),
                d.sets.iter().map(|s| s.kind).collect::<Vec<_>>(),
            )
        };
        // n_rows is always the first scalar state. polars writes SQL's `sum(a)` as "the sum,
        // or null when every a is null", so a sum also keeps a null count (and the row count,
        // shared with n_rows).
        let sum = parts("sum(a)", None);
        assert_eq!(kinds(&sum), (vec![Merge::Sum; 3], vec![]), "{sum:?}");
        let avg = parts("avg(a)", Some("b > 1"));
        assert!(kinds(&avg).0.iter().all(|m| *m == Merge::Sum), "{avg:?}");
        assert!(kinds(&avg).1.is_empty());
        let minmax = parts("max(a) - min(a)", None);
        assert!(kinds(&minmax).0.contains(&Merge::Max), "{minmax:?}");
        assert!(kinds(&minmax).0.contains(&Merge::Min), "{minmax:?}");
        // count(distinct x) is n_unique(x) minus one when x has a null: a set and a null count.
        let distinct = parts("count(distinct a)", None);
        assert_eq!(kinds(&distinct).1, vec![SetKind::Distinct], "{distinct:?}");
        let median = parts("median(a)", None);
        assert_eq!(kinds(&median).1, vec![SetKind::Median], "{median:?}");
        assert_eq!(parts("count(*)", None).scalars.len(), 1);
    }

    #[test]
    fn aggregates_without_mergeable_state_are_named() {
        let mut w = Walker {
            prefix: "p".into(),
            mask: None,
            scalars: Vec::new(),
            sets: Vec::new(),
            invalid: None,
        };
        for text in ["stddev(a)", "first(a)", "a + 1"] {
            let e = compile_sql_expr(text).unwrap();
            assert!(w.post(&e).is_err(), "{text} must not be taken apart");
        }
    }
}
