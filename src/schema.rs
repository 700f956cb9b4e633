//! The tables' vocabulary: the column lists that several stages, the writers and the readers
//! share, owned here once (as DataFusion carries one schema per plan node) instead of kept by hand
//! in each.

use polars::prelude::{Expr, col};

/// What identifies a cell of `indicator_values` and `deviations`: indicator × unit × grain ×
/// period × segment.
pub(crate) const CELL_KEY: [&str; 5] =
    ["indicator_id", "org_unit_id", "grain", "period", "segment"];

/// The long format phase 2 hands to `finish`: one row per cell with rows.
pub(crate) const RAW_COLUMNS: [&str; 8] = [
    "indicator_id",
    "org_unit_id",
    "grain",
    "period",
    "segment",
    "numerator",
    "denominator",
    "n_rows",
];

/// Output columns of `indicator_values.parquet`, in order.
pub(crate) const VALUE_COLUMNS: [&str; 15] = [
    "indicator_id",
    "org_unit_id",
    "org_level",
    "org_kind",
    "grain",
    "period",
    "period_start",
    "period_end",
    "segment",
    "numerator",
    "denominator",
    "value",
    "n_rows",
    "n_units",
    "org_name",
];

/// Columns of `deviations.parquet`, in order.
pub(crate) const DEVIATION_COLUMNS: [&str; 42] = [
    "indicator_id",
    "org_unit_id",
    "org_level",
    "org_kind",
    "org_name",
    "org_path",
    "grain",
    "period",
    "period_start",
    "period_end",
    "is_latest_period",
    "segment",
    "value",
    "numerator",
    "denominator",
    "n_rows",
    "polarity",
    "goal_ids",
    "status",
    "target_kind",
    "target_value",
    "target_value_high",
    "tolerance",
    "compare_to",
    "gap",
    "gap_pct",
    "previous_value",
    "change",
    "last_year_value",
    "yoy_change",
    "target_origin",
    "target_note",
    "comparison_value",
    "rank",
    "rank_of",
    "last_year_rank",
    "spc_mean",
    "spc_lpl",
    "spc_upl",
    "special_cause",
    "point_type",
    "seasonal_expected",
];

/// Column expressions for `names`, in order.
pub(crate) fn cols(names: &[&str]) -> Vec<Expr> {
    names.iter().map(|n| col(*n)).collect()
}
