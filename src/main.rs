//! The `styrkort` command: parses arguments, calls the library, maps errors to exit codes.

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::NaiveDate;
use clap::{Parser, Subcommand};

const EXIT_CODES: &str =
    "Exit codes: 0 ok, 1 the run failed on data or output, 2 invalid definitions or usage.";

#[derive(Parser)]
#[command(
    name = "styrkort",
    version,
    about = "Computes a municipality's goal indicators for every unit, level and period, as Parquet.",
    long_about = "styrkort reads a pipeline file (pipelines/*.toml) that names the data sources, the org tree, \
the indicators and the goals they measure; it computes every indicator for every org unit, at every level \
and period, and writes Parquet tables and a manifest.\n\nStart with:\n  styrkort validate pipelines/uddevalla.toml\n  \
styrkort run pipelines/uddevalla.toml",
    after_help = EXIT_CODES
)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Compute every indicator and write OUT/<pipeline>/as_of=<date>/ (indicator_values.parquet,
    /// rejected_rows.parquet, manifest.json).
    #[command(after_help = EXIT_CODES)]
    Run {
        /// The pipeline file, e.g. pipelines/uddevalla.toml.
        pipeline: PathBuf,
        /// Report periods up to the last complete month before this date (YYYY-MM-DD).
        /// Default: the pipeline's periods.default_as_of, else today.
        #[arg(long, value_parser = parse_date)]
        as_of: Option<NaiveDate>,
        /// Output directory.
        #[arg(long, default_value = "out")]
        out: PathBuf,
        /// Exit with code 3 when any of these statuses occurs in the latest period of any grain
        /// (e.g. `--fail-on not_met` or `--fail-on not_met,no_data`), for schedulers that alert.
        /// Results are published all the same.
        #[arg(long, value_delimiter = ',', value_parser = parse_status)]
        fail_on: Vec<styrkort::assess::Status>,
    },
    /// Check the definitions, org tree, code mapping and source headers without computing.
    #[command(after_help = EXIT_CODES)]
    Validate {
        /// The pipeline file.
        pipeline: PathBuf,
    },
    /// Show, per source, which indicators are fused into its one plan, and the polars plan.
    #[command(after_help = EXIT_CODES)]
    Explain {
        /// The pipeline file.
        pipeline: PathBuf,
        /// As for `run`: decides which periods the plan covers.
        #[arg(long, value_parser = parse_date)]
        as_of: Option<NaiveDate>,
    },
    /// Write a synthetic municipality's org tree and operational data (the fixtures' generator).
    /// Scale 1 with seed 1 is exactly fixtures/uddevalla; scale 100 gives about 100 times the rows.
    Generate {
        /// Multiplies the number of employees, clients, pupils, cases and contacts.
        #[arg(long, default_value_t = 1)]
        scale: u32,
        /// Random seed; the same scale and seed always give the same files.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Directory to write the CSV files into (created if missing).
        #[arg(long)]
        out: PathBuf,
    },
}

fn parse_status(s: &str) -> Result<styrkort::assess::Status, String> {
    styrkort::assess::Status::parse(s).ok_or_else(|| {
        format!("expected one of met, partly_met, not_met, no_data, no_target, not_assessable; found '{s}'")
    })
}

fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| format!("expected a date as YYYY-MM-DD, found '{s}'"))
}

/// Prints to stdout; a reader that went away (`styrkort explain … | head`) is not an error.
fn print_out(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("STYRKORT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    // Set when `--fail-on` finds a status: the run succeeded, but the scheduler should alert.
    let mut alert = false;
    let result = match cli.command {
        Command::Run {
            pipeline,
            as_of,
            out,
            fail_on,
        } => {
            let options = styrkort::RunOptions {
                fail_on,
                ..styrkort::RunOptions::new(as_of, out)
            };
            styrkort::run(&pipeline, &options).map(|s| {
                print_out(&format!("{}\n", styrkort::report::run_summary(&s)));
                if !s.fail_on_hits.is_empty() {
                    alert = true;
                }
            })
        }
        Command::Validate { pipeline } => {
            styrkort::validate(&pipeline).map(|v| print_out(&styrkort::report::validation(&v)))
        }
        Command::Explain { pipeline, as_of } => {
            styrkort::explain(&pipeline, as_of).map(|e| print_out(&styrkort::report::explained(&e)))
        }
        Command::Generate { scale, seed, out } => {
            styrkort::generate::write_municipality(&out, scale, seed).map(|files| {
                for f in files {
                    print_out(&format!("wrote {}\n", f.display()));
                }
            })
        }
    };
    match result {
        Ok(()) if alert => ExitCode::from(3),
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
