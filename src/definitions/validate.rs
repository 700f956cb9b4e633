//! Checks a pipeline file can make on its own: unique ids, references that resolve, expressions
//! that compile and use only declared columns, a goal tree without cycles, and every indicator
//! measuring some goal.

use std::collections::{BTreeMap, BTreeSet};

use polars::prelude::Expr;
use toml::Spanned;

use super::{ColumnType, Diagnostic, GoalDef, IndicatorDef, Pipeline, SourceDef, SourceFormat};
use crate::period::Month;

/// Compiles one SQL expression with polars' SQL support. The error text is polars' own, trimmed.
pub(crate) fn compile_sql_expr(text: &str) -> Result<Expr, String> {
    polars::sql::sql_expr(text).map_err(|e| e.to_string().trim().to_string())
}

pub(super) fn check(p: &Pipeline) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let def = &p.def;

    if def.name.get_ref().is_empty()
        || !def
            .name
            .get_ref()
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        out.push(p.diag_at(
            def.name.span(),
            "name",
            "pipeline name must be non-empty and use only letters, digits, '-' and '_' (it names the output folder)",
        ));
    }
    if let Some(name) = &def.engine.name
        && let Err(why) = super::Engine::parse(name.get_ref())
    {
        out.push(p.diag_at(name.span(), "engine.name", why));
    }
    if Month::parse(def.periods.first.get_ref()).is_none() {
        out.push(p.diag_at(
            def.periods.first.span(),
            "periods.first",
            format!(
                "expected a month as YYYY-MM, found '{}'",
                def.periods.first.get_ref()
            ),
        ));
    }
    if let Some(d) = &def.periods.default_as_of
        && chrono::NaiveDate::parse_from_str(d.get_ref(), "%Y-%m-%d").is_err()
    {
        out.push(p.diag_at(
            d.span(),
            "periods.default_as_of",
            format!("expected a date as YYYY-MM-DD, found '{}'", d.get_ref()),
        ));
    }

    if let Some(alpha) = &def.alpha
        && !(*alpha.get_ref() > 0.0 && *alpha.get_ref() < 0.5)
    {
        out.push(p.diag_at(
            alpha.span(),
            "alpha",
            format!(
                "alpha = {} must be between 0 and 0.5 (e.g. 0.05)",
                alpha.get_ref()
            ),
        ));
    }
    check_text_dialect(
        p,
        "tables",
        &def.tables.encoding,
        &def.tables.decimal,
        &mut out,
    );
    check_sources(p, &mut out);
    check_indicators(p, &mut out);
    check_goals(p, &mut out);
    out
}

fn duplicates<'a>(
    p: &Pipeline,
    kind: &str,
    ids: impl Iterator<Item = &'a Spanned<String>>,
    out: &mut Vec<Diagnostic>,
) {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for id in ids {
        if let Some(first_line) = seen.get(id.get_ref().as_str()) {
            out.push(p.diag_at(
                id.span(),
                format!("{kind} '{}'", id.get_ref()),
                format!("duplicate {kind} id (first defined on line {first_line})"),
            ));
        } else {
            seen.insert(id.get_ref(), super::line_col(&p.text, id.span().start).0);
        }
    }
}

fn check_sources(p: &Pipeline, out: &mut Vec<Diagnostic>) {
    duplicates(p, "source", p.def.sources.iter().map(|s| &s.name), out);
    for s in &p.def.sources {
        let item = format!("source '{}'", s.name.get_ref());
        check_key_columns(p, s, &item, out);
        if let Some(t) = &s.total_rows {
            check_expression(p, &item, "total_rows", at(t), Some(s), out);
        }
        check_text_settings(p, s, &item, out);
        if let Some(share) = &s.max_rejected_share
            && !(0.0..=1.0).contains(share.get_ref())
        {
            out.push(p.diag_at(
                share.span(),
                &item,
                format!(
                    "max_rejected_share = {} is not a share between 0 and 1 (0.05 allows 5 % of the rows to be rejected)",
                    share.get_ref()
                ),
            ));
        }
        check_columns(p, s, &item, out);
    }
}

/// A source's date column must be declared as a date, month or year, its org column as text.
fn check_key_columns(p: &Pipeline, s: &SourceDef, item: &str, out: &mut Vec<Diagnostic>) {
    let keys: [(&str, &Spanned<String>, &[ColumnType], &str); 2] = [
        (
            "date_column",
            &s.date_column,
            &[ColumnType::Date, ColumnType::Year, ColumnType::Month],
            "date, month or year",
        ),
        ("org_column", &s.org_column, &[ColumnType::String], "string"),
    ];
    for (key, column, allowed, expected) in keys {
        let message = match s.columns.get_ref().get(column.get_ref()).map(|c| c.ty()) {
            None => format!(
                "{key} '{}' is not among the declared columns",
                column.get_ref()
            ),
            Some(t) if allowed.contains(&t) => continue,
            Some(t) => format!(
                "{key} '{}' is declared as {}, expected {expected}",
                column.get_ref(),
                t.as_str()
            ),
        };
        out.push(p.diag_at(column.span(), item, message));
    }
}

/// How a text file is written (dialect, delimiter, decimal mark, thousands separator,
/// encoding) applies to CSV sources only, and each setting must be one a reader can use.
fn check_text_settings(p: &Pipeline, s: &SourceDef, item: &str, out: &mut Vec<Diagnostic>) {
    // Text settings apply to CSV files; an Excel sheet's numbers and dates are typed cells.
    if let Some(d) = &s.dialect
        && !super::DIALECTS.contains(&d.get_ref().as_str())
    {
        out.push(p.diag_at(
            d.span(),
            item,
            format!(
                "dialect '{}' is not one styrkort knows: {}",
                d.get_ref(),
                super::DIALECTS.join(", ")
            ),
        ));
    }
    let csv_only = [
        ("dialect", &s.dialect),
        ("delimiter", &s.delimiter),
        ("decimal", &s.decimal),
        ("thousands", &s.thousands),
        ("encoding", &s.encoding),
    ];
    if s.format != SourceFormat::Csv {
        for (key, setting) in csv_only {
            if let Some(v) = setting {
                out.push(p.diag_at(v.span(), item, format!("{key} applies to csv sources")));
            }
        }
    }
    if let Some(sheet) = &s.sheet
        && s.format != SourceFormat::Xlsx
    {
        out.push(p.diag_at(sheet.span(), item, "sheet applies to xlsx sources"));
    }
    if let Some(d) = &s.delimiter {
        let ok = d.get_ref() == "\\t"
            || d.get_ref() == "\t"
            || (d.get_ref().len() == 1 && d.get_ref().is_ascii());
        if !ok || d.get_ref() == "\"" {
            out.push(p.diag_at(
                d.span(),
                item,
                format!(
                    "delimiter '{}' must be one ASCII character such as ';' or \"\\t\" for a tab",
                    d.get_ref()
                ),
            ));
        }
    }
    check_text_dialect(p, item, &s.encoding, &s.decimal, out);
    if let Some(t) = &s.thousands {
        let decimal = s
            .decimal
            .as_ref()
            .map(|d| d.get_ref().as_str())
            .unwrap_or(".");
        if t.get_ref().chars().count() != 1 || t.get_ref() == decimal {
            out.push(p.diag_at(
                t.span(),
                item,
                format!(
                    "thousands '{}' must be one character other than the decimal mark '{decimal}' (\" \" for a space)",
                    t.get_ref()
                ),
            ));
        }
    }
}

/// Each declared column's checks must suit its type, and its name must not be one of ours.
fn check_columns(p: &Pipeline, s: &SourceDef, item: &str, out: &mut Vec<Diagnostic>) {
    let cols = s.columns.get_ref();
    for (name, decl) in cols {
        if let Some(c) = decl.checks() {
            let numeric = matches!(c.ty, ColumnType::Int | ColumnType::Float);
            if (c.min.is_some() || c.max.is_some()) && !numeric {
                out.push(p.diag_at(
                    s.columns.span(),
                    item,
                    format!("column '{name}': min and max apply to int and float columns"),
                ));
            }
            if let Some(format) = &c.format {
                if c.ty != ColumnType::Date {
                    out.push(p.diag_at(
                        s.columns.span(),
                        item,
                        format!("column '{name}': format applies to date columns"),
                    ));
                } else if let Err(why) = check_date_format(format) {
                    out.push(p.diag_at(
                        s.columns.span(),
                        item,
                        format!("column '{name}': format '{format}' {why}"),
                    ));
                }
            }
            if c.values.is_some() && c.ty != ColumnType::String {
                out.push(p.diag_at(
                    s.columns.span(),
                    item,
                    format!("column '{name}': values applies to string columns"),
                ));
            }
        }
        if name.starts_with("__") {
            out.push(p.diag_at(
                s.columns.span(),
                item,
                format!("column '{name}': names starting with '__' are reserved for styrkort"),
            ));
        }
    }
}

/// `encoding` and `decimal` of a CSV source or of the definitions tables.
fn check_text_dialect(
    p: &Pipeline,
    item: &str,
    encoding: &Option<Spanned<String>>,
    decimal: &Option<Spanned<String>>,
    out: &mut Vec<Diagnostic>,
) {
    if let Some(e) = encoding
        && !matches!(
            e.get_ref().to_ascii_lowercase().as_str(),
            "utf-8" | "utf8" | "windows-1252" | "cp1252" | "latin-1" | "latin1" | "iso-8859-1"
        )
    {
        out.push(p.diag_at(
            e.span(),
            item,
            format!(
                "encoding '{}' is not one styrkort reads: utf-8, windows-1252 or latin-1",
                e.get_ref()
            ),
        ));
    }
    if let Some(d) = decimal
        && d.get_ref() != "."
        && d.get_ref() != ","
    {
        out.push(p.diag_at(
            d.span(),
            item,
            format!("decimal '{}' must be \".\" or \",\"", d.get_ref()),
        ));
    }
}

/// An expression's place in the file and its text.
fn at<T: AsRef<str>>(text: &Spanned<T>) -> (std::ops::Range<usize>, &str) {
    (text.span(), text.get_ref().as_ref())
}

fn check_expression(
    p: &Pipeline,
    item: &str,
    field: &str,
    (span, text): (std::ops::Range<usize>, &str),
    source: Option<&SourceDef>,
    out: &mut Vec<Diagnostic>,
) {
    match compile_sql_expr(text) {
        Err(e) => out.push(p.diag_at(
            span.clone(),
            item,
            format!("{field} '{text}' does not compile: {e}"),
        )),
        Ok(expr) => {
            let Some(source) = source else { return };
            let declared = source.columns.get_ref();
            let used: BTreeSet<String> = expr
                .meta()
                .root_names()
                .into_iter()
                .map(|n| n.to_string())
                .collect();
            for name in used.iter().filter(|n| !declared.contains_key(n.as_str())) {
                out.push(p.diag_at(
                    span.clone(),
                    item,
                    format!(
                        "{field} uses column '{name}', which source '{}' does not declare (declared: {})",
                        source.name.get_ref(),
                        declared.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
        }
    }
}

/// Runs the indicator's expressions on an empty frame with the source's declared column types,
/// so what polars would refuse at run time (`sum` over a text column, arithmetic between a
/// number and a text) is a definition error now, naming the indicator and the expression.
fn check_types(
    p: &Pipeline,
    item: &str,
    numerator_field: &str,
    ind: &IndicatorDef,
    source: &SourceDef,
    out: &mut Vec<Diagnostic>,
) {
    use polars::prelude::*;
    let declared = source.columns.get_ref();
    let schema = Schema::from_iter(
        declared
            .iter()
            .map(|(name, decl)| Field::new(name.as_str().into(), decl.ty().dtype())),
    );
    let types = declared
        .iter()
        .map(|(name, decl)| format!("{name} {}", decl.ty().as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    let empty = DataFrame::empty_with_schema(&schema).lazy();
    let mut fields: Vec<(&str, std::ops::Range<usize>, &str)> = vec![(
        numerator_field,
        ind.numerator.span(),
        ind.numerator.get_ref().as_str(),
    )];
    fields.extend(
        ind.denominator
            .iter()
            .map(|d| ("denominator", d.span(), d.get_ref().as_str())),
    );
    fields.extend(
        ind.filter
            .iter()
            .map(|f| ("filter", f.span(), f.get_ref().as_str())),
    );
    for (field, span, text) in fields {
        let Ok(expr) = compile_sql_expr(text) else {
            continue;
        };
        let expr = if field == "filter" {
            expr.cast(DataType::Boolean)
        } else {
            expr.cast(DataType::Float64)
        };
        if let Err(e) = empty.clone().select([expr]).collect() {
            let reason = e.to_string();
            let reason = reason.lines().next().unwrap_or("").trim();
            out.push(p.diag_at(
                span,
                item,
                format!(
                    "{field} '{text}' does not fit the declared column types: {reason} (source '{}' declares {types})",
                    source.name.get_ref()
                ),
            ));
        }
    }
}

fn check_indicators(p: &Pipeline, out: &mut Vec<Diagnostic>) {
    duplicates(p, "indicator", p.def.indicators.iter().map(|i| &i.id), out);
    for ind in &p.def.indicators {
        let item = format!("indicator '{}'", ind.id.get_ref());
        if ind.id.get_ref().contains(super::SIDE_SEPARATOR) {
            out.push(p.diag_at(
                ind.id.span(),
                &item,
                format!("an indicator id cannot contain '{}'", super::SIDE_SEPARATOR),
            ));
        }
        if ind.is_cross_source() {
            if let Some(f) = &ind.filter {
                out.push(p.diag_at(
                    f.span(),
                    &item,
                    "a cross-source indicator filters each side: numerator = { source = …, expr = …, filter = … }",
                ));
            }
            for (field, side) in ["numerator", "denominator"].into_iter().zip(ind.sides()) {
                check_reading(p, &item, field, &side, out);
            }
        } else {
            check_reading(p, &item, "numerator", ind, out);
        }
        if ind.grains.get_ref().is_empty() {
            out.push(p.diag_at(
                ind.grains.span(),
                &item,
                "grains must name at least one grain",
            ));
        }
        if !ind.scale.is_finite() || ind.scale == 0.0 {
            out.push(p.diag_at(
                ind.id.span(),
                &item,
                "scale must be a finite, non-zero number",
            ));
        }
        if ind.stat_kind.is_some() && ind.denominator.is_none() {
            out.push(p.diag_at(
                ind.id.span(),
                &item,
                "stat_kind needs a denominator (the number of members or the exposure)",
            ));
        }
        if ind.spc_baseline.is_some_and(|n| n < 12) {
            out.push(p.diag_at(
                ind.id.span(),
                &item,
                "spc_baseline must be at least 12 points (as Making Data Count requires)",
            ));
        }
        for r in &ind.rebase {
            if Month::parse(r.get_ref()).is_none() {
                out.push(p.diag_at(
                    r.span(),
                    &item,
                    format!(
                        "rebase: expected a month as YYYY-MM, found '{}'",
                        r.get_ref()
                    ),
                ));
            }
        }
        if ind.spc_grain == Some(crate::period::Grain::Ytd) {
            out.push(p.diag_at(
                ind.id.span(),
                &item,
                "spc_grain cannot be ytd: year-to-date periods overlap, so they are not a series",
            ));
        }
    }
}

/// The checks of what one computed indicator (a single-source indicator, or one side of a
/// cross-source one) reads: its source, its expressions against the source's declared columns
/// and types, and its breakdown columns.
fn check_reading(
    p: &Pipeline,
    item: &str,
    numerator_field: &str,
    ind: &IndicatorDef,
    out: &mut Vec<Diagnostic>,
) {
    let Some(name) = &ind.source else {
        out.push(p.diag_at(
            ind.numerator.span(),
            item,
            format!(
                "{numerator_field} names no source: set source = \"…\" on the indicator, or on this side as {{ source = \"…\", expr = \"…\" }}"
            ),
        ));
        return;
    };
    let source = p.source(name.get_ref());
    if source.is_none() {
        out.push(p.diag_at(
            name.span(),
            item,
            format!(
                "unknown source '{}'{}",
                name.get_ref(),
                p.source_hint(name.get_ref())
            ),
        ));
    }
    let before = out.len();
    check_expression(p, item, numerator_field, at(&ind.numerator), source, out);
    if let Some(d) = &ind.denominator {
        check_expression(p, item, "denominator", at(d), source, out);
    }
    if let Some(f) = &ind.filter {
        check_expression(p, item, "filter", at(f), source, out);
    }
    let Some(source) = source else { return };
    if out.len() == before {
        check_types(p, item, numerator_field, ind, source, out);
    }
    for b in &ind.breakdown {
        if !source.columns.get_ref().contains_key(b.get_ref()) {
            out.push(p.diag_at(
                b.span(),
                item,
                format!(
                    "breakdown column '{}' is not declared by source '{}'",
                    b.get_ref(),
                    source.name.get_ref()
                ),
            ));
        }
    }
}

fn check_goals(p: &Pipeline, out: &mut Vec<Diagnostic>) {
    duplicates(p, "goal", p.def.goals.iter().map(|g| &g.id), out);
    let goal_ids = p.goal_ids();
    let indicator_ids = p.indicator_ids();
    let mut measured: BTreeSet<&str> = BTreeSet::new();
    for g in &p.def.goals {
        let item = format!("goal '{}'", g.id.get_ref());
        for i in &g.indicators {
            if indicator_ids.contains(i.get_ref().as_str()) {
                measured.insert(i.get_ref());
            } else {
                out.push(p.diag_at(
                    i.span(),
                    &item,
                    format!(
                        "unknown indicator '{}'{}",
                        i.get_ref(),
                        p.indicator_hint(i.get_ref())
                    ),
                ));
            }
        }
        if let Some(share) = g.met_share
            && !(share > 0.0 && share <= 1.0)
        {
            out.push(p.diag_at(g.id.span(), &item, "met_share must be in (0, 1]"));
        }
        check_goal_weights(p, g, &item, out);
        if let Some(parent) = &g.parent
            && !goal_ids.contains(parent.get_ref().as_str())
        {
            out.push(p.diag_at(
                parent.span(),
                &item,
                format!("unknown parent goal '{}'", parent.get_ref()),
            ));
        }
    }
    check_goal_cycles(p, out);
    for ind in &p.def.indicators {
        if !measured.contains(ind.id.get_ref().as_str()) {
            out.push(p.diag_at(
                ind.id.span(),
                format!("indicator '{}'", ind.id.get_ref()),
                "indicator measures no goal: list it under some goal's `indicators`",
            ));
        }
    }
}

/// A goal's weights name its indicators or sub-goals, each with a positive weight.
fn check_goal_weights(p: &Pipeline, g: &GoalDef, item: &str, out: &mut Vec<Diagnostic>) {
    for (id, w) in &g.weights {
        let member = g.indicators.iter().any(|i| i.get_ref() == id)
            || p.def.goals.iter().any(|c| {
                c.id.get_ref() == id
                    && c.parent.as_ref().map(|x| x.get_ref()) == Some(g.id.get_ref())
            });
        if !member {
            out.push(p.diag_at(
                g.id.span(),
                item,
                format!(
                    "weights names '{id}', which is neither an indicator of the goal nor a sub-goal"
                ),
            ));
        }
        if !(w.is_finite() && *w > 0.0) {
            out.push(p.diag_at(
                g.id.span(),
                item,
                format!("weight of '{id}' must be a positive number"),
            ));
        }
    }
}

/// No goal is its own ancestor: a goal whose parent chain comes back to itself can never be
/// rolled up.
fn check_goal_cycles(p: &Pipeline, out: &mut Vec<Diagnostic>) {
    let parent_of: BTreeMap<&str, &str> = p
        .def
        .goals
        .iter()
        .filter_map(|g| {
            g.parent
                .as_ref()
                .map(|pa| (g.id.get_ref().as_str(), pa.get_ref().as_str()))
        })
        .collect();
    for g in &p.def.goals {
        let start = g.id.get_ref().as_str();
        let mut cur = start;
        let mut steps = 0;
        while let Some(&next) = parent_of.get(cur) {
            steps += 1;
            if next == start {
                out.push(p.diag_at(
                    g.id.span(),
                    format!("goal '{start}'"),
                    "goal is its own ancestor (cycle in parent goals)",
                ));
                break;
            }
            if steps > parent_of.len() {
                break;
            }
            cur = next;
        }
    }
}

/// `Ok` when `format` reads back a date it writes (so it has a day, a month and a year and no
/// unknown `%` item); else what is wrong, for a definition error.
pub(crate) fn check_date_format(format: &str) -> Result<(), String> {
    use std::fmt::Write;
    let probe = chrono::NaiveDate::from_ymd_opt(2024, 3, 31).expect("a valid date");
    let mut text = String::new();
    if write!(text, "{}", probe.format(format)).is_err() {
        return Err("is not a chrono format string (e.g. \"%d/%m/%Y\")".to_string());
    }
    match chrono::NaiveDate::parse_from_str(&text, format) {
        Ok(back) if back == probe => Ok(()),
        _ => Err(
            "does not name a day, a month and a year (e.g. \"%d/%m/%Y\", \"%Y%m%d\")".to_string(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_date_format_must_name_day_month_and_year() {
        assert!(check_date_format("%d/%m/%Y").is_ok());
        assert!(check_date_format("%Y%m%d").is_ok());
        assert!(check_date_format("%Y-%m").is_err(), "no day");
        assert!(check_date_format("%d/%m/%Q").is_err(), "unknown item");
    }
}
