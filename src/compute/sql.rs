//! Phase 1 written as SQL, for the engines that run SQL: Apache DataFusion in-process or on a
//! Ballista cluster (`engine = "datafusion"` / `"ballista://host:port"`).
//!
//! Nothing here parses SQL. The polars plan stays the one definition of what a row is worth:
//! its row-level expressions (typed columns, the row checks, filters, the arguments of every
//! partial state) are *printed* as SQL by [`to_sql`], so both engines evaluate the same
//! expressions. An expression the printer does not know (a user-defined function, a polars
//! string function) makes the source run on polars, with the reason in `explain` and the log.
//!
//! One source becomes these statements, each over the source's table:
//! - **states**: `GROUP BY GROUPING SETS` with one set per segmentation (`(unit, month)` for
//!   the total, `(unit, month, dim)` per breakdown) and one `(month, row state)` set that counts
//!   usable, rejected and blank rows per month — one scan for every sum, count, min and max;
//! - one per **distinct-value set** (`SELECT DISTINCT unit, month, [dim,] value`) and per
//!   **value multiset** (`GROUP BY unit, month, [dim,] value` with the multiplicity);
//! - when rows were rejected, **rejected rows** per file, numbered in file order (a window over
//!   one partition), so their messages are built by the same polars checks as on the polars
//!   engine and name the same rows.

use polars::prelude::*;

use crate::ingest::{FINITE, TRIMMED};

/// A polars row-level expression as SQL with the same value on every row, or why not.
pub(crate) fn to_sql(e: &Expr) -> Result<String, String> {
    Ok(match e {
        Expr::Alias(inner, _) => to_sql(inner)?,
        Expr::Column(name) => ident(name),
        Expr::Literal(v) => literal(v)?,
        Expr::BinaryExpr { left, op, right } => {
            let (l, r) = (to_sql(left)?, to_sql(right)?);
            let op = match op {
                Operator::Eq => "=",
                Operator::NotEq => "<>",
                Operator::EqValidity => "IS NOT DISTINCT FROM",
                Operator::NotEqValidity => "IS DISTINCT FROM",
                Operator::Lt => "<",
                Operator::LtEq => "<=",
                Operator::Gt => ">",
                Operator::GtEq => ">=",
                Operator::Plus => "+",
                Operator::Minus => "-",
                Operator::Multiply => "*",
                // Rust's division: whole numbers truncate, as SQL's `/` does on integers.
                Operator::RustDivide => "/",
                Operator::TrueDivide => {
                    return Ok(format!("(CAST({l} AS DOUBLE) / CAST({r} AS DOUBLE))"));
                }
                Operator::Modulus => "%",
                // On booleans (the only operands the SQL compiler gives them) both are
                // three-valued logic, as SQL's AND and OR.
                Operator::And | Operator::LogicalAnd => "AND",
                Operator::Or | Operator::LogicalOr => "OR",
                other => return Err(format!("the operator {other:?}")),
            };
            format!("({l} {op} {r})")
        }
        Expr::Cast {
            expr,
            dtype,
            options,
        } => {
            if null_literal(expr) {
                return Ok("NULL".to_string());
            }
            let DataTypeExpr::Literal(dtype) = dtype else {
                return Err(format!("a cast to {dtype:?}"));
            };
            let cast = match options {
                polars::chunked_array::cast::CastOptions::Strict => "CAST",
                _ => "TRY_CAST",
            };
            format!("{cast}({} AS {})", to_sql(expr)?, sql_type(dtype)?)
        }
        Expr::Ternary {
            predicate,
            truthy,
            falsy,
        } => format!(
            "(CASE WHEN {} THEN {} ELSE {} END)",
            to_sql(predicate)?,
            to_sql(truthy)?,
            to_sql(falsy)?
        ),
        Expr::Function { input, function } => function_sql(function, input)?,
        // Text is trimmed as Rust's `str::trim` trims: every Unicode white space, not only the
        // space SQL's trim() removes.
        Expr::AnonymousFunction { input, fmt_str, .. } if fmt_str.as_str() == TRIMMED => {
            format!("btrim({}, {})", to_sql(&input[0])?, white_space_sql())
        }
        // NaN and ±inf become null; Arrow compares floats in total order (NaN above
        // infinity), so NaN is not below infinity.
        Expr::AnonymousFunction { input, fmt_str, .. } if fmt_str.as_str() == FINITE => {
            let x = to_sql(&input[0])?;
            format!("(CASE WHEN (abs({x}) < CAST('Infinity' AS DOUBLE)) THEN {x} ELSE NULL END)")
        }
        other => return Err(format!("the expression {other:?}")),
    })
}

/// `null`, typed or not.
fn null_literal(e: &Expr) -> bool {
    match e {
        Expr::Literal(v) => v.is_null(),
        Expr::Cast { expr, .. } => null_literal(expr),
        _ => false,
    }
}

fn function_sql(function: &FunctionExpr, input: &[Expr]) -> Result<String, String> {
    let arg = |k: usize| -> Result<String, String> {
        input
            .get(k)
            .ok_or_else(|| format!("{function:?} without argument {k}"))
            .and_then(to_sql)
    };
    let name = format!("{function:?}");
    Ok(match name.as_str() {
        "Boolean(IsNull)" => format!("({} IS NULL)", arg(0)?),
        "Boolean(IsNotNull)" => format!("({} IS NOT NULL)", arg(0)?),
        "Boolean(Not)" => format!("(NOT {})", arg(0)?),
        // Arrow compares floats in total order (NaN above infinity), so NaN is not finite
        // here either; null stays null as in polars.
        "Boolean(IsFinite)" => format!("(abs({}) < CAST('Infinity' AS DOUBLE))", arg(0)?),
        "Boolean(IsNan)" => format!("isnan({})", arg(0)?),
        "Boolean(IsNotNan)" => format!("(NOT isnan({}))", arg(0)?),
        "FillNull" => format!("coalesce({}, {})", arg(0)?, arg(1)?),
        "Abs" => format!("abs({})", arg(0)?),
        "Negate" => format!("(- {})", arg(0)?),
        _ => return Err(format!("the function {name}")),
    })
}

/// The characters `char::is_whitespace` holds true for (Unicode's White_Space).
const WHITE_SPACE: &str = "\u{9}\u{a}\u{b}\u{c}\u{d}\u{20}\u{85}\u{a0}\u{1680}\u{2000}\u{2001}\u{2002}\u{2003}\u{2004}\u{2005}\u{2006}\u{2007}\u{2008}\u{2009}\u{200a}\u{2028}\u{2029}\u{202f}\u{205f}\u{3000}";

/// [`WHITE_SPACE`] as a SQL expression of code points (folded to one constant by the
/// planner), so statements stay printable.
fn white_space_sql() -> String {
    let chars: Vec<String> = WHITE_SPACE
        .chars()
        .map(|c| format!("chr({})", c as u32))
        .collect();
    format!("concat({})", chars.join(", "))
}

/// A quoted SQL identifier.
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A quoted SQL string literal.
pub(crate) fn text(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

fn float(f: f64) -> String {
    if f.is_finite() {
        // `{:?}` keeps the decimal point (`0.0`) and round-trips every bit.
        format!("{f:?}")
    } else if f.is_nan() {
        "CAST('NaN' AS DOUBLE)".to_string()
    } else if f > 0.0 {
        "CAST('Infinity' AS DOUBLE)".to_string()
    } else {
        "CAST('-Infinity' AS DOUBLE)".to_string()
    }
}

fn literal(v: &LiteralValue) -> Result<String, String> {
    let unknown = || format!("the literal {v:?}");
    // Series, ranges and list literals have no one SQL value (and a dynamic list has no
    // value polars can give yet).
    if !v.is_scalar() || format!("{v:?}").starts_with("Dyn(List") {
        return Err(unknown());
    }
    let value = v.to_any_value().ok_or_else(unknown)?;
    Ok(match value {
        AnyValue::Null => "NULL".to_string(),
        AnyValue::Boolean(b) => if b { "TRUE" } else { "FALSE" }.to_string(),
        AnyValue::String(s) => text(s),
        AnyValue::StringOwned(s) => text(&s),
        AnyValue::Float64(f) => float(f),
        AnyValue::Float32(f) => float(f as f64),
        AnyValue::Date(days) => format!("CAST({days} AS DATE)"),
        other if other.is_integer() => match other.extract::<i64>() {
            Some(i) => i.to_string(),
            None => return Err(unknown()),
        },
        _ => return Err(unknown()),
    })
}

fn sql_type(dtype: &DataType) -> Result<&'static str, String> {
    Ok(match dtype {
        DataType::Boolean => "BOOLEAN",
        DataType::Int8 => "TINYINT",
        DataType::Int16 => "SMALLINT",
        DataType::Int32 => "INT",
        DataType::Int64 => "BIGINT",
        DataType::UInt8 => "TINYINT UNSIGNED",
        DataType::UInt16 => "SMALLINT UNSIGNED",
        DataType::UInt32 => "INT UNSIGNED",
        DataType::UInt64 => "BIGINT UNSIGNED",
        DataType::Float32 => "FLOAT",
        DataType::Float64 => "DOUBLE",
        DataType::String => "VARCHAR",
        DataType::Date => "DATE",
        DataType::Unknown(UnknownKind::Int(_)) => "BIGINT",
        DataType::Unknown(UnknownKind::Float) => "DOUBLE",
        DataType::Unknown(UnknownKind::Str) => "VARCHAR",
        other => return Err(format!("the type {other}")),
    })
}

/// How one scalar partial state aggregates its rows (the value expressions are row-level).
#[derive(Debug, Clone)]
pub(crate) enum RowAgg {
    /// Every row of the cell.
    Rows,
    /// Rows where the condition is true (null counts as false).
    CountTrue(Expr),
    /// Sum of the value; 0 when every value is null (polars' sum).
    Sum(Expr),
    Min(Expr),
    Max(Expr),
}

impl RowAgg {
    /// The aggregate as SQL.
    pub(crate) fn to_sql(&self) -> Result<String, String> {
        Ok(match self {
            RowAgg::Rows => "count(*)".to_string(),
            RowAgg::CountTrue(c) => format!("sum(CASE WHEN {} THEN 1 ELSE 0 END)", to_sql(c)?),
            // SQL's sum of no values is NULL, polars' is 0: the null counts kept beside every
            // sum say whether it had values.
            RowAgg::Sum(x) => format!("coalesce(sum({}), 0)", to_sql(x)?),
            RowAgg::Min(x) => format!("min({})", to_sql(x)?),
            RowAgg::Max(x) => format!("max({})", to_sql(x)?),
        })
    }
}

/// Codes of the org column and the unit each maps to, with the days (since 1970, inclusive;
/// `None` = open) when it does.
pub(crate) type UnitCodes = Vec<(String, Option<i32>, Option<i32>, u32)>;

/// A row's own unit as SQL: the code lookup, by the row's date when the mapping is dated.
pub(crate) fn unit_lookup(code: &str, date: &str, codes: &UnitCodes) -> String {
    if codes.is_empty() {
        return "CAST(NULL AS INT UNSIGNED)".to_string();
    }
    let day = format!("CAST({} AS INT)", ident(date));
    let code = format!("CAST({} AS VARCHAR)", ident(code));
    let mut out = String::from("(CASE");
    for (value, from, to, unit) in codes {
        out.push_str(&format!(" WHEN {code} = {}", text(value)));
        if let Some(f) = from {
            out.push_str(&format!(" AND {day} >= {f}"));
        }
        if let Some(t) = to {
            out.push_str(&format!(" AND {day} <= {t}"));
        }
        out.push_str(&format!(" THEN CAST({unit} AS INT UNSIGNED)"));
    }
    out.push_str(" END)");
    out
}

/// One phase-1 output of a source, as the polars plan has it.
#[derive(Debug, Clone)]
pub(crate) enum SqlOutput {
    /// The scalar states of one segmentation: `(name, aggregate)`.
    Scalars {
        dim: Option<String>,
        states: Vec<(String, RowAgg)>,
    },
    /// Distinct values of each column (`(name, row-level value)`), over the rows passing `mask`.
    Distinct {
        dim: Option<String>,
        mask: Option<String>,
        columns: Vec<(String, Expr)>,
    },
    /// Non-null values with their multiplicity, over the rows passing `mask`.
    Median {
        dim: Option<String>,
        mask: Option<String>,
        value: Expr,
    },
}

/// What a source's rows are, as SQL pieces (see the module documentation).
#[derive(Debug, Clone)]
pub(crate) struct SqlSource {
    /// Row-level columns computed from the file's columns: typed values and raw copies.
    pub(crate) typed: Vec<(String, Expr)>,
    /// The number of the first failing check (0 = a blank row), null when none fails.
    pub(crate) why: Expr,
    pub(crate) org_column: String,
    pub(crate) date_column: String,
    pub(crate) codes: UnitCodes,
    /// Each indicator's row condition (`__filter_<slot>`): its filter and its scope's units.
    pub(crate) filters: Vec<(String, Option<Expr>, Option<Vec<u32>>)>,
    pub(crate) outputs: Vec<SqlOutput>,
}

/// Row states in the `__state` column.
pub(crate) const ROW_USABLE: i32 = 0;
pub(crate) const ROW_REJECTED: i32 = 1;
pub(crate) const ROW_BLANK: i32 = 2;

/// The statements of one source over table `table`.
#[derive(Debug, Clone)]
pub(crate) struct SourceStatements {
    /// Per segmentation the states, then `(__month, __state)` row counts. Columns: the keys
    /// `__unit`, `__month`, each breakdown dimension, `__state`, `__set` (the grouping set:
    /// 0 … segmentations − 1, then the row counts), then every state and `__rows`.
    pub(crate) states: String,
    /// Breakdown dimensions in the order of their key columns.
    #[cfg_attr(not(feature = "distributed"), allow(dead_code))] // read by the SQL engines
    pub(crate) dims: Vec<String>,
    /// The state names of each segmentation, in `SqlOutput` order of the scalars outputs.
    #[cfg_attr(not(feature = "distributed"), allow(dead_code))] // read by the SQL engines
    pub(crate) scalar_outputs: Vec<(usize, Option<String>, Vec<String>)>,
    /// `(output, column, statement)` of each distinct set and value multiset. A distinct
    /// statement returns `__unit, __month, [__dim,] __v`; a multiset one also `__w`.
    pub(crate) sets: Vec<(usize, String, String)>,
}

impl SqlSource {
    /// The common table expressions that make `rows` out of `table`: typed columns, the row
    /// checks, the unit, the month, `__state` and each indicator's filter column. `numbered`
    /// adds `__rn`, the row's 1-based position in the table (one partition: file order).
    pub(crate) fn rows_cte(&self, table: &str, numbered: bool) -> Result<String, String> {
        let mut typed: Vec<String> = self
            .typed
            .iter()
            .map(|(name, e)| Ok(format!("{} AS {}", to_sql(e)?, ident(name))))
            .collect::<Result<_, String>>()?;
        if numbered {
            typed.insert(0, "row_number() OVER () AS \"__rn\"".to_string());
        }
        let month = format!(
            "CAST(date_part('year', {d}) * 12 + date_part('month', {d}) - 1 AS INT)",
            d = ident(&self.date_column)
        );
        let unit = unit_lookup(&self.org_column, &self.date_column, &self.codes);
        let mut filters = Vec::new();
        for (name, filter, scope) in &self.filters {
            let filter = filter
                .as_ref()
                .map(|f| Ok::<_, String>(format!("coalesce({}, FALSE)", to_sql(f)?)))
                .transpose()?;
            let scope = scope.as_ref().map(|units| {
                if units.is_empty() {
                    "FALSE".to_string()
                } else {
                    let list: Vec<String> = units.iter().map(|u| u.to_string()).collect();
                    format!("(\"__unit\" IN ({}))", list.join(", "))
                }
            });
            let cond = match (scope, filter) {
                (Some(s), Some(f)) => format!("({s} AND {f})"),
                (Some(c), None) | (None, Some(c)) => c,
                (None, None) => "TRUE".to_string(),
            };
            filters.push(format!(", {cond} AS {}", ident(name)));
        }
        Ok(format!(
            "typed AS (SELECT {typed} FROM {table}), \
             checked AS (SELECT *, {why} AS \"__why\" FROM typed), \
             placed AS (SELECT *, CASE WHEN \"__why\" IS NULL THEN {unit} END AS \"__unit0\", {month} AS \"__month\" FROM checked), \
             stated AS (SELECT *, CASE WHEN \"__why\" IS NULL AND \"__unit0\" IS NOT NULL THEN {ROW_USABLE} WHEN \"__why\" = 0 THEN {ROW_BLANK} ELSE {ROW_REJECTED} END AS \"__state\", \
             CASE WHEN \"__why\" IS NULL THEN \"__unit0\" END AS \"__unit\" FROM placed), \
             rows AS (SELECT *{filters} FROM stated)",
            typed = typed.join(", "),
            table = ident(table),
            why = to_sql(&self.why)?,
            filters = filters.concat(),
        ))
    }

    /// Every statement of the source (see [`SourceStatements`]).
    pub(crate) fn statements(&self, table: &str) -> Result<SourceStatements, String> {
        let cte = self.rows_cte(table, false)?;
        let (states, dims, scalar_outputs) = self.states_statement(&cte)?;
        Ok(SourceStatements {
            states,
            dims,
            scalar_outputs,
            sets: self.set_statements(&cte)?,
        })
    }

    /// The one grouping-sets statement of the scalar states (see [`SourceStatements::states`]),
    /// with the breakdown dimensions in key order and each segmentation's state names.
    #[allow(clippy::type_complexity)] // the three fields of `SourceStatements` it fills
    fn states_statement(
        &self,
        cte: &str,
    ) -> Result<
        (
            String,
            Vec<String>,
            Vec<(usize, Option<String>, Vec<String>)>,
        ),
        String,
    > {
        let mut dims: Vec<String> = Vec::new();
        for out in &self.outputs {
            if let SqlOutput::Scalars { dim: Some(d), .. } = out
                && !dims.contains(d)
            {
                dims.push(d.clone());
            }
        }
        let mut sets = Vec::new();
        let mut selects = Vec::new();
        let mut scalar_outputs = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for (at, out) in self.outputs.iter().enumerate() {
            match out {
                SqlOutput::Scalars { dim, states } => {
                    let mut keys = vec!["\"__unit\"".to_string(), "\"__month\"".to_string()];
                    if let Some(d) = dim {
                        keys.push(ident(d));
                    }
                    sets.push(format!("({})", keys.join(", ")));
                    for (name, agg) in states {
                        if seen.insert(name.clone()) {
                            selects.push(format!("{} AS {}", agg.to_sql()?, ident(name)));
                        }
                    }
                    scalar_outputs.push((
                        at,
                        dim.clone(),
                        states.iter().map(|(n, _)| n.clone()).collect(),
                    ));
                }
                SqlOutput::Distinct { .. } | SqlOutput::Median { .. } => {}
            }
        }
        sets.push("(\"__month\", \"__state\")".to_string());
        let mut keys = vec!["\"__unit\"".to_string(), "\"__month\"".to_string()];
        keys.extend(dims.iter().map(|d| ident(d)));
        keys.push("\"__state\"".to_string());
        // `grouping()` of every key, as one number per set: each set leaves a different pattern
        // of keys out.
        let set_id = format!("grouping({})", keys.join(", "));
        let states = format!(
            "WITH {cte} SELECT {keys}, {set_id} AS \"__set\", {selects}count(*) AS \"__rows\" FROM rows GROUP BY GROUPING SETS ({sets})",
            keys = keys.join(", "),
            selects = selects.iter().map(|s| format!("{s}, ")).collect::<String>(),
            sets = sets.join(", "),
        );
        Ok((states, dims, scalar_outputs))
    }

    /// `(output, column, statement)` of each distinct set and value multiset (see
    /// [`SourceStatements::sets`]).
    fn set_statements(&self, cte: &str) -> Result<Vec<(usize, String, String)>, String> {
        let mut set_statements = Vec::new();
        for (at, out) in self.outputs.iter().enumerate() {
            let (dim, mask) = match out {
                SqlOutput::Scalars { .. } => continue,
                SqlOutput::Distinct { dim, mask, .. } | SqlOutput::Median { dim, mask, .. } => {
                    (dim, mask)
                }
            };
            let mut keys = vec!["\"__unit\"".to_string(), "\"__month\"".to_string()];
            let mut named = keys.clone();
            if let Some(d) = dim {
                keys.push(ident(d));
                named.push(format!("{} AS \"__dim\"", ident(d)));
            }
            let mut cond = format!("\"__state\" = {ROW_USABLE}");
            if let Some(m) = mask {
                cond.push_str(&format!(" AND {}", ident(m)));
            }
            // The row conditions are counted per group and tested after grouping (HAVING), not
            // in a WHERE: DataFusion pushes a WHERE below the projections by substituting
            // their expressions, and the row checks and unit lookup were then evaluated
            // again inside the filter, ten times slower.
            match out {
                SqlOutput::Distinct { columns, .. } => {
                    for (column, value) in columns {
                        let value = to_sql(value)?;
                        set_statements.push((
                            at,
                            column.clone(),
                            format!(
                                "WITH {cte} SELECT {}, {value} AS \"__v\" FROM rows GROUP BY {}, {value} HAVING max(CASE WHEN {cond} THEN 1 ELSE 0 END) = 1",
                                named.join(", "),
                                keys.join(", "),
                            ),
                        ));
                    }
                }
                SqlOutput::Median { value, .. } => {
                    let value = to_sql(value)?;
                    let weight =
                        format!("sum(CASE WHEN {cond} AND {value} IS NOT NULL THEN 1 ELSE 0 END)");
                    set_statements.push((
                        at,
                        "__v".to_string(),
                        format!(
                            "WITH {cte} SELECT {}, {value} AS \"__v\", {weight} AS \"__w\" FROM rows GROUP BY {}, {value} HAVING {weight} > 0",
                            named.join(", "),
                            keys.join(", "),
                        ),
                    ));
                }
                SqlOutput::Scalars { .. } => unreachable!("skipped above"),
            }
        }
        Ok(set_statements)
    }

    /// The file's rejected rows in file order: `__rn` (1-based row) and the raw columns.
    #[cfg_attr(not(feature = "distributed"), allow(dead_code))] // run by the SQL engines
    pub(crate) fn rejected_statement(&self, table: &str, raw: &[String]) -> Result<String, String> {
        let cte = self.rows_cte(table, true)?;
        let columns: Vec<String> = raw.iter().map(|c| ident(c)).collect();
        Ok(format!(
            "WITH {cte} SELECT \"__rn\", {} FROM rows WHERE \"__state\" = {ROW_REJECTED} ORDER BY \"__rn\"",
            columns.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definitions::compile_sql_expr;

    fn sql(text: &str) -> String {
        to_sql(&compile_sql_expr(text).unwrap()).unwrap()
    }

    #[test]
    fn white_space_is_what_rust_trims() {
        let all: Vec<char> = (0..=0x10ffff)
            .filter_map(char::from_u32)
            .filter(|c| c.is_whitespace())
            .collect();
        assert_eq!(WHITE_SPACE.chars().collect::<Vec<_>>(), all);
    }

    #[test]
    fn row_expressions_print_as_sql() {
        assert_eq!(
            sql("case when wait_days <= 120 then 1 else 0 end"),
            "(CASE WHEN (\"wait_days\" <= 120) THEN 1 ELSE 0 END)"
        );
        assert_eq!(
            sql("kpi = 'N''07' and value is not null"),
            "((\"kpi\" = 'N''07') AND (\"value\" IS NOT NULL))"
        );
        assert_eq!(sql("budget - outcome"), "(\"budget\" - \"outcome\")");
        assert!(to_sql(&compile_sql_expr("upper(a)").unwrap()).is_err());
    }
}
