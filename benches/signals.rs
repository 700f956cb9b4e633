//! The flag's operating characteristics: how often `act` / `watch` / `none` comes up on simulated
//! 36-month series with known truth, before (XmR chart and runs alone) and after the drift
//! reading (season, autocorrelation, EWMA). Fresh seeds every run unless STYRKORT_OC_SEED is set.
//!
//!     cargo bench --bench signals              # 2000 series per class
//!     STYRKORT_OC_N=10000 cargo bench --bench signals

#[path = "oc_series.rs"]
mod oc_series;

fn main() {
    let n: usize = std::env::var("STYRKORT_OC_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let seed: u64 = std::env::var("STYRKORT_OC_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    println!("{n} series per class, seed {seed}; improvement = increase\n");
    println!(
        "| series (known truth) | before: act | watch | none | after: act | watch | none | after: caught / false alarms |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for (k, class) in oc_series::CLASSES.iter().enumerate() {
        let class_seed = seed.wrapping_add(k as u64 * 7919);
        let before = oc_series::rates(class, n, class_seed, true);
        let after = oc_series::rates(class, n, class_seed, false);
        let pct = |x: f64| format!("{:.1} %", 100.0 * x);
        // Act or watch: for a real change the share caught, for a stable series false alarms.
        let spoke = format!(
            "{} {}",
            pct(after[0] + after[1]),
            if class.changed { "caught" } else { "false" }
        );
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {spoke} |",
            class.name,
            pct(before[0]),
            pct(before[1]),
            pct(before[2]),
            pct(after[0]),
            pct(after[1]),
            pct(after[2]),
        );
    }
}
