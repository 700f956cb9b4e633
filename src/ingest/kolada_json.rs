//! The Kolada API v3 `/data` response: `{values: [{kpi, municipality, period, values: [{gender,
//! count, status, value}]}]}`, flattened to Kolada's tidy layout `kpi, municipality, period,
//! gender, value` (all text, like a CSV). A `null` value stays missing.

use std::path::Path;

use polars::prelude::*;
use serde::Deserialize;

#[derive(Deserialize)]
struct Response {
    values: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    kpi: String,
    municipality: String,
    period: serde_json::Value,
    #[serde(default)]
    values: Vec<GenderValue>,
}

#[derive(Deserialize)]
struct GenderValue {
    gender: String,
    value: Option<f64>,
}

/// The flattened rows, with `__row` the 1-based position among them.
pub(crate) fn read(path: &Path) -> Result<DataFrame, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let response: Response = serde_json::from_reader(std::io::BufReader::new(file))
        .map_err(|e| format!("not a Kolada API v3 /data response: {e}"))?;
    let mut cols: [Vec<String>; 4] = Default::default();
    let mut value: Vec<Option<String>> = Vec::new();
    for e in &response.values {
        let period = match &e.period {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        for v in &e.values {
            cols[0].push(e.kpi.clone());
            cols[1].push(e.municipality.clone());
            cols[2].push(period.clone());
            cols[3].push(v.gender.clone());
            value.push(v.value.map(|x| x.to_string()));
        }
    }
    let n = value.len() as u32;
    let [kpi, municipality, period, gender] = cols;
    df!(
        "__row" => (0..n).collect::<Vec<u32>>(),
        "kpi" => kpi,
        "municipality" => municipality,
        "period" => period,
        "gender" => gender,
        "value" => value,
    )
    .map_err(|e| e.to_string())
}
