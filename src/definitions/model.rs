//! Serde types for a pipeline file. Fields that later checks must point back at are
//! `Spanned`, so a diagnostic can name the line and column.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use crate::period::Grain;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PipelineDef {
    /// Names the output folder: `OUT/<name>/as_of=<date>/`.
    pub(crate) name: Spanned<String>,
    /// For the file's readers only: nothing prints it yet.
    #[serde(default)]
    #[allow(dead_code)]
    pub(crate) description: String,
    /// What to do with a row that cannot be used (unknown org code, missing date, bad value).
    #[serde(default)]
    pub(crate) on_bad_rows: OnBadRows,
    pub(crate) periods: PeriodsDef,
    pub(crate) org: OrgDef,
    #[serde(default)]
    pub(crate) sources: Vec<SourceDef>,
    #[serde(default)]
    pub(crate) indicators: Vec<IndicatorDef>,
    #[serde(default)]
    pub(crate) goals: Vec<GoalDef>,
    /// CSV of target values: `indicator_id, org_unit_id, period, kind, value, value_high,
    /// tolerance, compare_to, note`.
    pub(crate) targets: Option<String>,
    /// CSV of actions: `action_id, goal_id, org_unit_id, title, owner, start, due, status`.
    pub(crate) actions: Option<String>,
    /// CSV of analysis texts: `goal_id, indicator_id, org_unit_id, period, author, date, text`
    /// (one of goal_id and indicator_id per row).
    pub(crate) analyses: Option<String>,
    /// Significance level of the trend tests (default 0.05).
    pub(crate) alpha: Option<Spanned<f64>>,
    /// How the definitions tables (org units, code mapping, groups, targets, actions, analyses)
    /// are written, when not UTF-8 CSV with decimal points.
    #[serde(default)]
    pub(crate) tables: TablesDef,
    /// Where phase 1 (the scan and the partial states) runs.
    #[serde(default)]
    pub(crate) engine: EngineDef,
}

/// `[engine]`: where phase 1 runs. The roll-up, assessment and publishing always run here.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EngineDef {
    /// `polars` (default), `datafusion` (in-process) or `ballista://host:port` (a Ballista
    /// scheduler). `run --engine` overrides it.
    pub(crate) name: Option<Spanned<String>>,
    /// Seconds a SQL engine may take over one source before the run fails (default 3600).
    pub(crate) timeout_seconds: Option<Spanned<u64>>,
}

/// `[tables]`: the dialect of the definitions tables. A `;`-separated table (what Excel writes
/// on a Swedish Windows) is recognised by its header and reads decimal commas on its own.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TablesDef {
    /// `utf-8` (default), `windows-1252` or `latin-1`.
    pub(crate) encoding: Option<Spanned<String>>,
    /// The decimal mark of numbers (target values, tolerances): `.` (default) or `,`.
    pub(crate) decimal: Option<Spanned<String>>,
}

impl PipelineDef {
    /// The trend tests' significance level: `alpha`, or 0.05.
    pub(crate) fn alpha(&self) -> f64 {
        self.alpha.as_ref().map(|a| *a.get_ref()).unwrap_or(0.05)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum OnBadRows {
    /// Leave the row out, record it in `rejected_rows.parquet`, and go on.
    #[default]
    Reject,
    /// Fail the run at the first bad row.
    Fail,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PeriodsDef {
    /// First month reported, `YYYY-MM`.
    pub(crate) first: Spanned<String>,
    /// As-of date used when `--as-of` is not given (`YYYY-MM-DD`); without it, today.
    /// The last period reported is the last complete month before the as-of date.
    pub(crate) default_as_of: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OrgDef {
    /// CSV with `id, name, parent_id, kind`.
    pub(crate) units: String,
    /// CSV with `source, code, unit_id, valid_from, valid_to`.
    pub(crate) code_mapping: Option<String>,
    /// CSV with `group_id, member_id`: comparison groups for benchmark targets (`group:<id>`).
    pub(crate) groups: Option<String>,
    /// The units without a parent. By default the tree has exactly one root (the kommun), so a
    /// blanked `parent_id` is an error, not a unit that silently leaves every ancestor; a tree
    /// of several roots (several kommuner side by side) names them here.
    pub(crate) roots: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum SourceFormat {
    Csv,
    Parquet,
    /// A Kolada API v3 `/data` response (JSON), read as `kpi, municipality, period, gender, value`.
    KoladaJson,
    /// An Excel workbook (`.xlsx`; `.xls` and `.ods` too): one sheet, header in its first row.
    Xlsx,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum OrgCodes {
    /// The org column holds org unit ids.
    #[default]
    UnitId,
    /// The org column holds source-system codes (cost centres) mapped through `org.code_mapping`.
    Mapping,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ColumnType {
    String,
    Int,
    Float,
    Bool,
    Date,
    /// A year such as `2022` (Kolada's periods), read as the date 1 January of that year.
    Year,
    /// A month such as `2024-01` (HR and payroll exports), read as the first day of the month.
    Month,
}

impl ColumnType {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ColumnType::String => "string",
            ColumnType::Int => "int",
            ColumnType::Float => "float",
            ColumnType::Bool => "bool",
            ColumnType::Date => "date",
            ColumnType::Year => "year",
            ColumnType::Month => "month",
        }
    }

    /// The type a column of this kind has once read (a year is its 1 January).
    pub(crate) fn dtype(self) -> polars::prelude::DataType {
        use polars::prelude::DataType;
        match self {
            ColumnType::String => DataType::String,
            ColumnType::Int => DataType::Int64,
            ColumnType::Float => DataType::Float64,
            ColumnType::Bool => DataType::Boolean,
            ColumnType::Date | ColumnType::Year | ColumnType::Month => DataType::Date,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SourceDef {
    pub(crate) name: Spanned<String>,
    /// A path or glob, relative to the pipeline file.
    pub(crate) path: Spanned<String>,
    pub(crate) format: SourceFormat,
    /// The columns used, with their types (`sick_hours = "float"`) or a type with checks
    /// (`sick_hours = { type = "float", min = 0 }`). Other columns in the files are ignored.
    pub(crate) columns: Spanned<BTreeMap<String, ColumnDecl>>,
    /// The date that places a row in a month.
    pub(crate) date_column: Spanned<String>,
    /// The column that places a row in the org tree.
    pub(crate) org_column: Spanned<String>,
    #[serde(default)]
    pub(crate) org_codes: OrgCodes,
    /// The code system of the org column (`codes = "kostnadsställe"`), shared by every source
    /// whose codes are the same: the code mapping's `source` column then holds this name, so one
    /// set of mapping rows serves them all. Implies `org_codes = "mapping"`.
    pub(crate) codes: Option<Spanned<String>>,
    /// A file with a header but no rows is an error (a broken export) unless this is true.
    #[serde(default)]
    pub(crate) allow_empty: bool,
    /// For sources that carry their own totals beside breakdowns (Kolada's gender T beside K and
    /// M): an SQL condition picking the rows that form the `total` segment. The other rows form
    /// the breakdown segments.
    pub(crate) total_rows: Option<Spanned<String>>,
    /// Data-quality gate: the largest share of the rows read that may be rejected (default
    /// 0.05). More fails the run before anything is published.
    pub(crate) max_rejected_share: Option<Spanned<f64>>,
    /// Data-quality gate: how many months the latest month with rows may lag the run's last
    /// month. Default 1 when the as-of date is today (live data); no default otherwise.
    pub(crate) max_lag_months: Option<Spanned<u32>>,
    /// What a stale source does: fail the run (default), warn, or nothing.
    #[serde(default = "GateAction::fail")]
    pub(crate) freshness: GateAction,
    /// What a month with fewer than half the median rows of the months before it does: warn
    /// (default), fail the run, or nothing.
    #[serde(default = "GateAction::warn")]
    pub(crate) volume_check: GateAction,
    /// CSV: the field separator, one character (default `,`; Swedish Excel writes `;`, `\t`
    /// for tabs).
    pub(crate) delimiter: Option<Spanned<String>>,
    /// CSV: the decimal mark of numbers, `.` (default) or `,`.
    pub(crate) decimal: Option<Spanned<String>>,
    /// CSV: the file's character encoding, `utf-8` (default), `windows-1252` or `latin-1` (what
    /// older Windows systems write).
    pub(crate) encoding: Option<Spanned<String>>,
    /// CSV: the thousands separator of numbers (`" "` also matches no-break spaces; `.` with a
    /// decimal comma). Default none.
    pub(crate) thousands: Option<Spanned<String>>,
    /// Excel: the sheet to read (default the first).
    pub(crate) sheet: Option<Spanned<String>>,
    /// CSV: a named dialect, in one line. `excel-sv` is what Excel writes on a Swedish Windows:
    /// `;` between fields, decimal comma, space as thousands separator, and Windows-1252 unless
    /// the file is valid UTF-8 ("CSV UTF-8"). Explicit settings above win over it.
    pub(crate) dialect: Option<Spanned<String>>,
}

/// The dialects `dialect = "…"` names.
pub(crate) const DIALECTS: [&str; 1] = ["excel-sv"];

impl SourceDef {
    /// True when the org column holds codes mapped through the code mapping.
    pub(crate) fn uses_mapping(&self) -> bool {
        self.org_codes == OrgCodes::Mapping || self.codes.is_some()
    }

    /// What this source's rows are called in the code mapping's `source` column: its code
    /// system, or its own name.
    pub(crate) fn mapping_key(&self) -> &str {
        self.codes.as_ref().unwrap_or(&self.name).get_ref()
    }

    /// The CSV field separator as a byte (validated to be one ASCII character).
    pub(crate) fn delimiter_byte(&self) -> u8 {
        match self.delimiter.as_ref().map(|d| d.get_ref().as_str()) {
            Some("\\t") | Some("\t") => b'\t',
            Some(d) if d.len() == 1 => d.as_bytes()[0],
            _ if self.excel_sv() => b';',
            _ => b',',
        }
    }

    /// True with `dialect = "excel-sv"`.
    fn excel_sv(&self) -> bool {
        self.dialect
            .as_ref()
            .is_some_and(|d| d.get_ref() == "excel-sv")
    }

    /// The encoding to read a file in when it is not valid UTF-8 (a dialect's default, when no
    /// `encoding` is set).
    pub(crate) fn fallback_encoding(&self) -> Option<&'static encoding_rs::Encoding> {
        (self.encoding.is_none() && self.excel_sv()).then_some(encoding_rs::WINDOWS_1252)
    }

    /// The file encoding when it is not UTF-8 (validated to be one encoding_rs knows).
    pub(crate) fn text_encoding(&self) -> Option<&'static encoding_rs::Encoding> {
        let label = self.encoding.as_ref()?.get_ref();
        encoding_rs::Encoding::for_label(label.as_bytes()).filter(|e| *e != encoding_rs::UTF_8)
    }

    /// How numbers are written in this source's text.
    pub(crate) fn number_format(&self) -> NumberFormat {
        NumberFormat {
            decimal_comma: match &self.decimal {
                Some(d) => d.get_ref() == ",",
                None => self.excel_sv(),
            },
            thousands: match &self.thousands {
                Some(t) => t.get_ref().chars().next(),
                None => self.excel_sv().then_some(' '),
            },
        }
    }
}

/// What a failed data-quality gate does to the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum GateAction {
    Fail,
    Warn,
    Off,
}

impl GateAction {
    fn fail() -> GateAction {
        GateAction::Fail
    }
    fn warn() -> GateAction {
        GateAction::Warn
    }
}

/// A column's type, with optional checks that make a row bad when they fail.
#[derive(Debug, Clone)]
pub(crate) enum ColumnDecl {
    Type(ColumnType),
    Checked(ColumnChecks),
}

/// Either `"float"` or `{ type = "float", min = 0 }`, with serde's own message for what is wrong
/// inside either (an unknown type names the types; an unknown key names the keys) — an
/// untagged enum would only say that nothing matched.
impl<'de> Deserialize<'de> for ColumnDecl {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DeclVisitor;
        impl<'de> serde::de::Visitor<'de> for DeclVisitor {
            type Value = ColumnDecl;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(
                    "a column type (\"string\", \"int\", \"float\", \"bool\", \"date\", \"month\", \"year\") or a table such as { type = \"float\", min = 0 } or { type = \"date\", format = \"%d/%m/%Y\" }",
                )
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ColumnDecl, E> {
                ColumnType::deserialize(serde::de::value::StrDeserializer::<E>::new(v))
                    .map(ColumnDecl::Type)
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<ColumnDecl, A::Error> {
                ColumnChecks::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(ColumnDecl::Checked)
            }
        }
        deserializer.deserialize_any(DeclVisitor)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ColumnChecks {
    #[serde(rename = "type")]
    pub(crate) ty: ColumnType,
    /// Smallest allowed value (numbers).
    pub(crate) min: Option<f64>,
    /// Largest allowed value (numbers).
    pub(crate) max: Option<f64>,
    /// The allowed values (text).
    pub(crate) values: Option<Vec<String>>,
    /// A blank value makes the row bad.
    #[serde(default)]
    pub(crate) required: bool,
    /// How a date is written in a text source, as a chrono format string: `%d/%m/%Y` for
    /// `31/3/2024`, `%Y%m%d` for `20240331`, `%d.%m.%Y` for `01.01.2022`. Default `%Y-%m-%d`.
    pub(crate) format: Option<String>,
}

impl ColumnDecl {
    pub(crate) fn ty(&self) -> ColumnType {
        match self {
            ColumnDecl::Type(t) => *t,
            ColumnDecl::Checked(c) => c.ty,
        }
    }

    /// The declared format of a date column's text, if not the default.
    pub(crate) fn date_format(&self) -> Option<&str> {
        self.checks().and_then(|c| c.format.as_deref())
    }

    pub(crate) fn checks(&self) -> Option<&ColumnChecks> {
        match self {
            ColumnDecl::Type(_) => None,
            ColumnDecl::Checked(c) => Some(c),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum WhenNoRows {
    /// A unit with no rows in a period has a null value: it should have reported.
    #[default]
    NoData,
    /// No rows means zero (counts of events, where no event is a valid outcome).
    Zero,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Polarity {
    HigherIsBetter,
    LowerIsBetter,
    Neutral,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum StockRule {
    /// A coarser period takes its last month's value.
    Last,
    /// A coarser period takes the mean of its months' numerators and denominators.
    Mean,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IndicatorDef {
    pub(crate) id: Spanned<String>,
    pub(crate) name: String,
    /// Unit of measure, e.g. "%", "kr", "dagar".
    #[serde(default)]
    pub(crate) unit: String,
    #[serde(default)]
    pub(crate) description: String,
    /// The source whose rows the expressions aggregate. A cross-source indicator names the
    /// source of each side instead (or of one side, the other taking this one).
    pub(crate) source: Option<Spanned<String>>,
    /// SQL aggregate expression, e.g. `sum(sick_hours)`; or a table naming its own source:
    /// `{ source = "ledger", expr = "sum(outcome)", filter = "account_group = 'personal'" }`.
    pub(crate) numerator: Spanned<Aggregate>,
    /// As the numerator; the value is `scale × numerator / denominator`.
    pub(crate) denominator: Option<Spanned<Aggregate>>,
    /// SQL boolean expression: only rows where it is true count.
    pub(crate) filter: Option<Spanned<String>>,
    #[serde(default = "default_scale")]
    pub(crate) scale: f64,
    pub(crate) grains: Spanned<Vec<Grain>>,
    /// Root(s) of the org subtree(s) that must report; default the whole tree. The units above
    /// a root are reported too, with values from the rows inside the scope only.
    pub(crate) scope: Option<Spanned<Scope>>,
    /// Columns to break the value down by, beside the total (e.g. `["gender"]`).
    #[serde(default)]
    pub(crate) breakdown: Vec<Spanned<String>>,
    #[serde(default)]
    pub(crate) when_no_rows: WhenNoRows,
    pub(crate) polarity: Polarity,
    /// For stock measures (headcount): how coarser periods are formed from months.
    pub(crate) stock: Option<StockRule>,
    /// How a parent's value is formed: from all rows beneath it (`rows`, the default); only a
    /// unit's own rows (`none`, for published values such as Kolada's, which are already
    /// ratios); or the unweighted mean of the values of the leaf units beneath it
    /// (`unweighted_mean`, Kolada's rule for groups), with the number of units in `n_units`.
    #[serde(default)]
    pub(crate) rollup: Rollup,
    /// A default target, used wherever the targets CSV sets none.
    pub(crate) target: Option<super::TargetDefault>,
    /// What the numerator counts, for confidence intervals: `proportion` (members of the
    /// denominator) or `rate` (events per denominator exposure).
    pub(crate) stat_kind: Option<StatKind>,
    /// The grain of the statistical series (SPC, runs); default month, else the finest grain.
    pub(crate) spc_grain: Option<Grain>,
    /// SPC limits from the first N points of each segment only (a fixed baseline; at least 12).
    pub(crate) spc_baseline: Option<usize>,
    /// Months (`YYYY-MM`) where the process changed: SPC limits are recomputed from there on.
    #[serde(default)]
    pub(crate) rebase: Vec<Spanned<String>>,
}

/// An indicator's numerator or denominator: a SQL aggregate over its source's rows, and for a
/// cross-source indicator the source (and row filter) of this side.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Aggregate {
    pub(crate) expr: String,
    pub(crate) source: Option<Spanned<String>>,
    pub(crate) filter: Option<Spanned<String>>,
}

impl Aggregate {
    /// A plain SQL aggregate over the indicator's own source.
    pub(crate) fn sql(expr: impl Into<String>) -> Aggregate {
        Aggregate {
            expr: expr.into(),
            source: None,
            filter: None,
        }
    }

    /// True when this side says where its rows come from (a table with `source` or `filter`).
    pub(crate) fn is_table(&self) -> bool {
        self.source.is_some() || self.filter.is_some()
    }
}

/// The SQL text: what every consumer of a plain expression reads.
impl std::ops::Deref for Aggregate {
    type Target = String;
    fn deref(&self) -> &String {
        &self.expr
    }
}

impl AsRef<str> for Aggregate {
    fn as_ref(&self) -> &str {
        &self.expr
    }
}

impl std::fmt::Display for Aggregate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(source) = &self.source {
            write!(f, "{}: ", source.get_ref())?;
        }
        f.write_str(&self.expr)?;
        if let Some(filter) = &self.filter {
            write!(f, " where {}", filter.get_ref())?;
        }
        Ok(())
    }
}

/// `"sum(x)"` or `{ source = "…", expr = "sum(x)", filter = "…" }`.
impl<'de> Deserialize<'de> for Aggregate {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Side {
            source: Option<Spanned<String>>,
            expr: String,
            filter: Option<Spanned<String>>,
        }
        struct AggregateVisitor;
        impl<'de> serde::de::Visitor<'de> for AggregateVisitor {
            type Value = Aggregate;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(
                    "an SQL aggregate such as \"sum(x)\", or a table such as { source = \"ledger\", expr = \"sum(outcome)\" }",
                )
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Aggregate, E> {
                Ok(Aggregate::sql(v))
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Aggregate, A::Error> {
                let side = Side::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(Aggregate {
                    expr: side.expr,
                    source: side.source,
                    filter: side.filter,
                })
            }
        }
        deserializer.deserialize_any(AggregateVisitor)
    }
}

/// Separates a cross-source indicator's id from the side computed in a source's plan.
pub(crate) const SIDE_SEPARATOR: &str = "::";

impl IndicatorDef {
    /// True when the numerator and the denominator are computed in their own sources' plans
    /// (either side written as a table) and combined per unit, period and segment.
    pub(crate) fn is_cross_source(&self) -> bool {
        self.numerator.get_ref().is_table()
            || self
                .denominator
                .as_ref()
                .is_some_and(|d| d.get_ref().is_table())
    }

    /// The source of a single-source indicator (or of a side), "" when none is named.
    pub(crate) fn source_name(&self) -> &str {
        self.source
            .as_ref()
            .map(|s| s.get_ref().as_str())
            .unwrap_or("")
    }

    /// Sources read by this indicator, in order (one, or a cross-source indicator's two).
    pub(crate) fn source_names(&self) -> Vec<&str> {
        let mut names = Vec::new();
        let sides = std::iter::once(&self.numerator).chain(self.denominator.iter());
        for side in sides {
            let name = side
                .get_ref()
                .source
                .as_ref()
                .map(|s| s.get_ref().as_str())
                .unwrap_or(self.source_name());
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names
    }

    /// A cross-source indicator as the two single-source indicators its sources' plans compute:
    /// `id::numerator` and `id::denominator`, each with its side's aggregate as numerator, its
    /// side's filter, and the indicator's grains, scope, breakdown, stock and roll-up rules.
    pub(crate) fn sides(&self) -> Vec<IndicatorDef> {
        let mut out = Vec::new();
        let sides = [
            ("numerator", Some(&self.numerator)),
            ("denominator", self.denominator.as_ref()),
        ];
        for (name, side) in sides {
            let Some(side) = side else { continue };
            let agg = side.get_ref();
            let mut def = self.clone();
            def.id = Spanned::new(
                self.id.span(),
                format!("{}{SIDE_SEPARATOR}{name}", self.id.get_ref()),
            );
            def.source = agg.source.clone().or_else(|| self.source.clone());
            def.numerator = Spanned::new(side.span(), Aggregate::sql(agg.expr.clone()));
            def.denominator = None;
            def.filter = agg.filter.clone();
            def.target = None;
            def.stat_kind = None;
            out.push(def);
        }
        out
    }

    /// True when only some of the source's rows count: a row filter, or a scope (rows of units
    /// outside the scope count nowhere, not even in the parents reported above it).
    pub(crate) fn selects_rows(&self) -> bool {
        self.filter.is_some() || self.scope.is_some()
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Rollup {
    #[default]
    Rows,
    None,
    UnweightedMean,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum StatKind {
    Proportion,
    Rate,
}

/// One org unit id, or a list of them.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum Scope {
    One(String),
    Many(Vec<String>),
}

impl Scope {
    pub(crate) fn roots(&self) -> Vec<&str> {
        match self {
            Scope::One(id) => vec![id.as_str()],
            Scope::Many(ids) => ids.iter().map(String::as_str).collect(),
        }
    }
}

fn default_scale() -> f64 {
    1.0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Basis {
    /// Kärnuppdrag.
    CoreMission,
    /// Politiskt beslut.
    PoliticalDecision,
    /// Lagar och regler.
    Law,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GoalDef {
    pub(crate) id: Spanned<String>,
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) description: String,
    /// Where the goal is set: e.g. "kf", "namnd", "enhet".
    pub(crate) level: String,
    /// The org unit that owns the goal.
    pub(crate) owner: Spanned<String>,
    pub(crate) parent: Option<Spanned<String>>,
    pub(crate) basis: Basis,
    /// The decision, law or mission text the goal rests on, e.g. "Skollagen 8 kap 14 §".
    pub(crate) reference: String,
    #[serde(default)]
    pub(crate) indicators: Vec<Spanned<String>>,
    /// How the goal's status follows from its indicators' and sub-goals' statuses.
    #[serde(default)]
    pub(crate) rule: RuleName,
    /// With `rule = "share"`: the weighted share of met members that makes the goal met.
    pub(crate) met_share: Option<f64>,
    /// Weights of indicators and sub-goals (by id) in `share_met`; default 1.
    #[serde(default)]
    pub(crate) weights: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RuleName {
    /// All assessed members met → met; none met or partly met → not met; else partly met.
    #[default]
    AllMet,
    /// Weighted share of met members ≥ `met_share` → met; none met or partly met → not met;
    /// else partly met.
    Share,
}

/// A goal's roll-up rule, resolved.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum GoalRule {
    AllMet,
    Share { met_share: f64 },
}

impl GoalDef {
    pub(crate) fn rule(&self) -> GoalRule {
        match self.rule {
            RuleName::AllMet => GoalRule::AllMet,
            RuleName::Share => GoalRule::Share {
                met_share: self.met_share.unwrap_or(0.75),
            },
        }
    }
}

/// How numbers are written in a text source: Swedish exports write `1 234,5` (decimal comma,
/// a space or no-break space between thousands).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct NumberFormat {
    pub(crate) decimal_comma: bool,
    /// The thousands separator; a space stands for every kind of space (U+0020, U+00A0, U+202F).
    pub(crate) thousands: Option<char>,
}
