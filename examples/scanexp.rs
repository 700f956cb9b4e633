use polars::prelude::*;
use std::time::Instant;

fn t(name: &str, lf: LazyFrame) {
    let s = Instant::now();
    let df = LazyFrame::collect_all_with_engine(vec![lf.logical_plan], Engine::Streaming, OptFlags::default()).unwrap();
    println!("{name}: {:.2}s {:?}", s.elapsed().as_secs_f64(), df[0].shape());
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let pipeline = std::path::Path::new(&args[1]);
    let loaded = styrkort::load(pipeline).unwrap();
    let p = &loaded.pipeline;
    let months = styrkort::period::RunMonths::new(
        styrkort::period::Month::new(2022, 1),
        chrono::NaiveDate::from_ymd_opt(2025, 1, 1).unwrap(),
    )
    .unwrap();
    let inputs = styrkort::expand_inputs(p).unwrap();
    for source in &p.def.sources {
        let files = inputs[source.name.get_ref()].clone();
        let path = files[0].path.to_string_lossy().to_string();
        let raw = LazyCsvReader::new(PlRefPath::new(path.clone()))
            .with_has_header(true)
            .with_infer_schema_length(Some(0))
            .finish()
            .unwrap();
        t("raw strings len", raw.clone().select([len()]));
        t("raw strings all count", raw.clone().select([all().as_expr().count()]));
        let strip = |c: &str| col(c).str().strip_chars(lit(NULL).cast(DataType::String));
        t("strip all", raw.clone().select([strip("contact_id").count(), strip("unit_id").count(), strip("channel").count()]));
        t("int", raw.clone().select([strip("handling_minutes").cast(DataType::Int64).sum()]));
        t("date", raw.clone().select([strip("date").str().to_date(StrptimeOptions { format: Some("%Y-%m-%d".into()), strict: false, exact: true, cache: true }).count()]));
        t("date nocache", raw.clone().select([col("date").str().to_date(StrptimeOptions { format: Some("%Y-%m-%d".into()), strict: false, exact: true, cache: false }).count()]));
        let low = strip("answered_within_target").str().to_lowercase();
        t("bool", raw.clone().select([when(low.clone().eq(lit("true")).or(low.clone().eq(lit("1"))).or(low.clone().eq(lit("yes"))).or(low.clone().eq(lit("ja"))).or(low.clone().eq(lit("t")))).then(lit(true)).otherwise(lit(false)).sum()]));
        t("typed_column all", raw.clone().select(source.columns.get_ref().iter().map(|(n, d)| styrkort::ingest::typed_column(col(n.as_str()), &DataType::String, d.ty()).unwrap().count()).collect::<Vec<_>>()));
        let rows =
            styrkort::ingest::scan_source(source, &loaded.tree, &loaded.mapping, months, files)
                .unwrap();
        t("usable len", rows.usable.clone().select([len()]));
        t("usable count all", rows.usable.clone().select([all().as_expr().count()]));
        t("rejected", rows.rejected.clone());
        for (name, flags) in [("default", OptFlags::default()), ("no projection pushdown", OptFlags::default() & !OptFlags::PROJECTION_PUSHDOWN)] {
        let s = Instant::now();
        LazyFrame::collect_all_with_engine(
            vec![
                rows.usable.clone().select([len()]).logical_plan,
                rows.rejected.clone().logical_plan,
            ],
            Engine::Streaming,
            flags,
        )
        .unwrap();
        println!("usable+rejected together, {name}: {:.2}s", s.elapsed().as_secs_f64());
        }
    }
}
