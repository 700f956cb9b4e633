//! The `styrkort` command: parses arguments, calls the library, maps errors to exit codes.

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::NaiveDate;
use clap::{Parser, Subcommand};

use styrkort::EXIT_CODES;

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

/// Which published run a reading command reads: a folder, or a pipeline with its as-of date.
#[derive(clap::Args)]
struct RunFolder {
    /// A run folder (OUT/<pipeline>/as_of=<date> or OUT/<pipeline>/latest); or use --pipeline.
    run_dir: Option<PathBuf>,
    /// Find the run folder from this pipeline, --as-of and --out.
    #[arg(long, conflicts_with = "run_dir")]
    pipeline: Option<PathBuf>,
    /// With --pipeline: the run's as-of date (default as for `run`).
    #[arg(long, value_parser = parse_date, requires = "pipeline")]
    as_of: Option<NaiveDate>,
    /// With --pipeline: the output directory the run wrote to.
    #[arg(long, default_value = "out", requires = "pipeline")]
    out: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Compute every indicator and write OUT/<pipeline>/as_of=<date>/ (indicator_values.parquet,
    /// rejected_rows.parquet, manifest.json).
    #[command(after_help = EXIT_CODES)]
    Run(RunArgs),
    /// Check the definitions, org tree, code mapping and source headers without computing.
    #[command(after_help = EXIT_CODES)]
    Validate(ValidateArgs),
    /// Show, per source, which indicators share its one scan and how each is computed in two
    /// phases (partial states per unit and month, then the roll-up).
    #[command(after_help = EXIT_CODES)]
    Explain(ExplainArgs),
    /// Show a run's deviations as a table: by default the latest period of each grain, every
    /// status but no_target, not met first and the worst gap first.
    #[command(
        after_help = "Examples:\n  styrkort inspect out/uddevalla/as_of=2025-01-01 --status not_met\n  \
styrkort inspect --pipeline pipelines/uddevalla.toml --unit SOC --grain year\n  \
styrkort inspect out/uddevalla/as_of=2025-01-01 --goal BUN-2 --period 2024"
    )]
    Inspect(InspectArgs),
    /// Run the SPC, runs and trend analysis on any series in a CSV with the columns
    /// `series, date, value` and optionally `target` (empty cells are missing values).
    #[command(
        after_help = "Example:\n  styrkort spc waits.csv --direction decrease --rebase 2024-01-01 --format json"
    )]
    Spc(SpcArgs),
    /// Write the controller's report of a run: one self-contained HTML file (inline CSS and SVG,
    /// nothing fetched, opens offline, can be e-mailed), Swedish by default — the goal tree with
    /// statuses, each goal's indicators, an SPC chart per indicator and unit, units compared,
    /// actions and data quality.
    #[command(
        after_help = "Examples:\n  styrkort report out/uddevalla/latest -o rapport.html\n  \
styrkort report --pipeline pipelines/uddevalla.toml --unit SN --period 2024-T2 -o sn.html\n  \
styrkort report out/uddevalla/latest --lang en -o report.html"
    )]
    Report(ReportArgs),
    /// Write a run as an Excel workbook: sheets Mål, Nyckeltal (values by period), Avvikelser,
    /// Åtgärder and Signaler, with Swedish headers, numbers as numbers and dates as dates.
    #[command(
        after_help = "Example:\n  styrkort export out/uddevalla/latest --xlsx uppfoljning.xlsx"
    )]
    Export(ExportArgs),
    /// Start a pipeline for your own kommun: writes a commented pipeline.toml (Swedish comments),
    /// org_units.csv with the five-nämnd skeleton, code_mapping.csv, targets.csv, actions.csv and
    /// one example source, into an empty folder. `styrkort run DIR/pipeline.toml` works at once;
    /// then replace the files with your own exports.
    #[command(
        after_help = "Example:\n  styrkort init min-kommun --name min-kommun\n  styrkort run min-kommun/pipeline.toml"
    )]
    Init(InitArgs),
    /// Start a Ballista cluster inside this process — a scheduler and executors on 127.0.0.1 —
    /// to try `run --engine ballista://…` on one machine. Prints the scheduler's address and
    /// runs until stopped (Ctrl-C). Real clusters run Ballista's own binaries.
    #[cfg(feature = "distributed")]
    #[command(after_help = "Example:\n  styrkort cluster --executors 2 &\n  \
styrkort run pipelines/uddevalla.toml --engine ballista://127.0.0.1:PORT")]
    Cluster(ClusterArgs),
    /// Write a synthetic municipality's org tree and operational data (the fixtures' generator),
    /// with targets, actions and a ready-to-run pipeline.toml: `styrkort run OUT/pipeline.toml`.
    /// Scale 1 with seed 1 is exactly fixtures/uddevalla; scale 100 gives about 100 times the rows.
    Generate(GenerateArgs),
}

/// The arguments of `styrkort run`.
#[derive(clap::Args)]
struct RunArgs {
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
    /// `new:STATUS` counts only series whose status became STATUS since the previously
    /// published run (`--fail-on new:not_met`: alert when something newly misses its
    /// target, not every night for the same misses). Results are published all the same.
    #[arg(long, value_delimiter = ',', value_parser = parse_fail_on)]
    fail_on: Vec<styrkort::FailOn>,
    /// Do nothing (exit 0) when the definitions, every input file and the styrkort version
    /// equal those of the run already published for this as-of date.
    #[arg(long)]
    skip_unchanged: bool,
    /// Accept an --as-of more than a month after today (refused by default, as a typo).
    #[arg(long)]
    allow_future: bool,
    /// Where phase 1 (the scan into partial states) runs: polars (default), datafusion
    /// (in-process), or ballista://host:port (a Ballista cluster; Parquet sources only,
    /// the others are read here). Overrides the pipeline's [engine]. Needs a build with
    /// `--features distributed`.
    #[arg(long, value_parser = parse_engine)]
    engine: Option<styrkort::compute::Engine>,
}

/// The arguments of `styrkort validate`.
#[derive(clap::Args)]
struct ValidateArgs {
    /// The pipeline file.
    pipeline: PathBuf,
    /// Where runs are published: the org tree is compared with the latest run there (a
    /// unit whose parent has disappeared is a warning).
    #[arg(long, default_value = "out")]
    out: PathBuf,
}

/// The arguments of `styrkort explain`.
#[derive(clap::Args)]
struct ExplainArgs {
    /// The pipeline file.
    pipeline: PathBuf,
    /// As for `run`: decides which periods the plan covers.
    #[arg(long, value_parser = parse_date)]
    as_of: Option<NaiveDate>,
    /// Where phase 1 would run (as for `run`); SQL engines show their statements with
    /// --verbose.
    #[arg(long, value_parser = parse_engine)]
    engine: Option<styrkort::compute::Engine>,
    /// Also print polars' optimised plan of each source's scan (long), or the SQL.
    #[arg(long)]
    verbose: bool,
}

/// The arguments of `styrkort inspect`.
#[derive(clap::Args)]
struct InspectArgs {
    #[command(flatten)]
    run: RunFolder,
    /// Only these statuses (comma-separated): met, partly_met, not_met, no_data, no_target, not_assessable.
    #[arg(long, value_delimiter = ',', value_parser = parse_status)]
    status: Vec<styrkort::assess::Status>,
    /// Only this org unit and the units beneath it.
    #[arg(long)]
    unit: Option<String>,
    /// Only indicators that measure this goal.
    #[arg(long)]
    goal: Option<String>,
    /// Only this indicator.
    #[arg(long)]
    indicator: Option<String>,
    /// Only this grain: month, quarter, tertial, year or ytd.
    #[arg(long)]
    grain: Option<String>,
    /// This period (e.g. 2024, 2024-T2, 2024-03) instead of the latest of each grain.
    #[arg(long)]
    period: Option<String>,
    /// `total` (default), a breakdown segment such as gender=K, or `all`.
    #[arg(long, default_value = "total")]
    segment: String,
    /// At most this many rows (0 = all).
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// List the series flagged act or watch by the statistical reading, with the reason.
    #[arg(long, conflicts_with = "goals")]
    signals: bool,
    /// The goal view: each goal's status per unit, with names, counts and analysis texts.
    #[arg(long)]
    goals: bool,
    /// table (default), csv or json (every row, for programs; not with --signals).
    #[arg(long, default_value = "table", value_parser = parse_inspect_format)]
    format: styrkort::report::InspectFormat,
}

/// The arguments of `styrkort spc`.
#[derive(clap::Args)]
struct SpcArgs {
    /// The CSV file.
    file: PathBuf,
    /// Which way is better: increase, decrease or neutral.
    #[arg(long, default_value = "neutral", value_parser = parse_direction)]
    direction: styrkort::assess::stats::Direction,
    /// Dates where the process changed: limits are recomputed from the first point on or after each.
    #[arg(long, num_args = 1.., value_parser = parse_date)]
    rebase: Vec<NaiveDate>,
    /// Compute the limits from the first N points of each segment only.
    #[arg(long)]
    fix_after: Option<usize>,
    /// Keep large moving ranges in the limits (as the MDC Excel tool does).
    #[arg(long)]
    no_screen: bool,
    /// Significance level of the trend test.
    #[arg(long, default_value_t = 0.05)]
    alpha: f64,
    /// Output: table, csv or json.
    #[arg(long, default_value = "table", value_parser = parse_format)]
    format: styrkort::report::Format,
}

/// The arguments of `styrkort report`.
#[derive(clap::Args)]
struct ReportArgs {
    #[command(flatten)]
    run: RunFolder,
    /// This unit (e.g. a nämnd, SN) and everything beneath it; default the whole kommun.
    #[arg(long)]
    unit: Option<String>,
    /// The period (2024-T2, 2024, 2024-03); default the latest tertial.
    #[arg(long)]
    period: Option<String>,
    /// sv (default) or en.
    #[arg(long, default_value = "sv", value_parser = parse_lang)]
    lang: styrkort::report::Lang,
    /// The HTML file to write.
    #[arg(short = 'o', long, default_value = "rapport.html")]
    output: PathBuf,
}

/// The arguments of `styrkort export`.
#[derive(clap::Args)]
struct ExportArgs {
    #[command(flatten)]
    run: RunFolder,
    /// The workbook to write.
    #[arg(long)]
    xlsx: PathBuf,
}

/// The arguments of `styrkort init`.
#[derive(clap::Args)]
struct InitArgs {
    /// The folder to write (new or empty).
    dir: PathBuf,
    /// The pipeline's name (names its output folder).
    #[arg(long, default_value = "min-kommun")]
    name: String,
}

#[cfg(feature = "distributed")]
/// The arguments of `styrkort cluster`.
#[derive(clap::Args)]
struct ClusterArgs {
    /// Executors to start.
    #[arg(long, default_value_t = 2)]
    executors: usize,
    /// Task slots (parallel tasks) per executor.
    #[arg(long, default_value_t = 1)]
    slots: usize,
}

/// The arguments of `styrkort generate`.
#[derive(clap::Args)]
struct GenerateArgs {
    /// Multiplies the number of employees, clients, pupils, cases and contacts.
    #[arg(long, default_value_t = 1)]
    scale: u32,
    /// Random seed; the same scale and seed always give the same files.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Directory to write into (created if missing): the sources, org units, code mapping,
    /// targets, actions and a ready-to-run `pipeline.toml`.
    #[arg(long)]
    out: PathBuf,
    /// File format of the generated sources.
    #[arg(long, value_enum, default_value_t = styrkort::generate::DataFormat::Csv)]
    format: styrkort::generate::DataFormat,
    /// Plant a sick-leave step (×1.5 from January of the last year) in about a third of the
    /// units, chosen by the seed, and write `truth.csv` saying which: for measuring how
    /// often the flag catches a real change and how often it cries wolf.
    #[arg(long)]
    known_truth: bool,
}

/// The run folder `inspect` reads: given, or found from the pipeline's name and as-of date.
fn inspect_run_dir(run: RunFolder) -> Result<PathBuf, styrkort::Error> {
    let RunFolder {
        run_dir,
        pipeline,
        as_of,
        out,
    } = run;
    match (run_dir, pipeline) {
        (Some(dir), _) => Ok(dir),
        (None, Some(p)) => {
            let pipeline =
                styrkort::definitions::Pipeline::load(&p).map_err(styrkort::Error::Definitions)?;
            let as_of = styrkort::resolve_as_of(&pipeline, as_of);
            Ok(styrkort::publish::run_dir(&out, pipeline.name(), as_of))
        }
        (None, None) => Err(styrkort::Error::Usage(
            "give a run folder or --pipeline (see --help)".into(),
        )),
    }
}

fn parse_status(s: &str) -> Result<styrkort::assess::Status, String> {
    styrkort::assess::Status::parse(s).ok_or_else(|| {
        format!("expected one of met, partly_met, not_met, no_data, no_target, not_assessable; found '{s}'")
    })
}

fn parse_inspect_format(s: &str) -> Result<styrkort::report::InspectFormat, String> {
    styrkort::report::InspectFormat::parse(s)
        .ok_or_else(|| format!("expected table, csv or json; found '{s}'"))
}

fn parse_lang(s: &str) -> Result<styrkort::report::Lang, String> {
    styrkort::report::Lang::parse(s).ok_or_else(|| format!("expected sv or en; found '{s}'"))
}

fn parse_fail_on(s: &str) -> Result<styrkort::FailOn, String> {
    styrkort::FailOn::parse(s).ok_or_else(|| {
        format!("expected a status (met, partly_met, not_met, no_data, no_target, not_assessable), optionally as new:STATUS; found '{s}'")
    })
}

fn parse_direction(s: &str) -> Result<styrkort::assess::stats::Direction, String> {
    styrkort::assess::stats::Direction::parse(s)
        .ok_or_else(|| format!("expected increase, decrease or neutral; found '{s}'"))
}

fn parse_format(s: &str) -> Result<styrkort::report::Format, String> {
    match s {
        "table" => Ok(styrkort::report::Format::Table),
        "csv" => Ok(styrkort::report::Format::Csv),
        "json" => Ok(styrkort::report::Format::Json),
        _ => Err(format!("expected table, csv or json; found '{s}'")),
    }
}

fn parse_engine(s: &str) -> Result<styrkort::compute::Engine, String> {
    styrkort::compute::Engine::parse(s)
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
    // JSON is for schedulers, which want the run's events (info); people want warnings only.
    let default = match format {
        LogFormat::Human => "warn",
        LogFormat::Json => "info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("STYRKORT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colour codes only on a terminal: a log file or journal gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> ExitCode {
    // Local files are read by polars in buffered chunks rather than memory-mapped: a mapped 800 MB
    // CSV counts whole in the process's resident memory (scale 1000: 2.6 GB peak instead of
    // 1.2 GB, for 6 % more time). A user may still set POLARS_FORCE_ASYNC=0.
    if std::env::var_os("POLARS_FORCE_ASYNC").is_none() {
        // SAFETY: the first statement of main, before any other thread exists.
        unsafe { std::env::set_var("POLARS_FORCE_ASYNC", "1") };
    }
    tune_malloc();
    let cli = Cli::parse();
    let json_logs = matches!(cli.log_format, LogFormat::Json);
    init_logging(cli.log_format);
    // Set when `--fail-on` finds a status: the run succeeded, but the scheduler should alert.
    let mut alert = false;
    match execute(cli.command, &mut alert) {
        Ok(()) if alert => ExitCode::from(3),
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => failed(&e, json_logs),
    }
}

/// As many malloc arenas as cores. glibc gives each thread that allocates its own arena (up to
/// eight per core), and memory freed in one is not reused by another: polars' reader threads,
/// its pipeline's workers and rayon's each kept their own high-water mark. Measured side by
/// side (benches/HISTORY.md, session 16): scale 1000 peaks at about 0.75 GB instead of
/// 1.05 GB, in the same time or a little less. One arena saves a little more memory but slows
/// the fixtures by 10 %; larger mmap and trim thresholds on top cut the kernel's time but not
/// the run's. A user's own `GLIBC_TUNABLES` or `MALLOC_*` settings are left to act instead.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_malloc() {
    let set_by_user = std::env::vars_os().any(|(name, _)| {
        let name = name.to_string_lossy();
        name == "GLIBC_TUNABLES" || name.starts_with("MALLOC_")
    });
    if set_by_user {
        return;
    }
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    // SAFETY: called from main before any other thread exists; `mallopt` only sets a limit
    // for arenas created from now on.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, cores.min(64) as libc::c_int) };
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_malloc() {}

/// Runs one command, printing what it made. `alert` is set when a run's `--fail-on` found a
/// status.
fn execute(command: Command, alert: &mut bool) -> Result<(), styrkort::Error> {
    match command {
        Command::Run(args) => run(args, alert),
        Command::Validate(ValidateArgs { pipeline, out }) => {
            styrkort::validate_against(&pipeline, Some(&out)).map(|v| print_out(&v.to_string()))
        }
        Command::Explain(ExplainArgs {
            pipeline,
            as_of,
            engine,
            verbose,
        }) => styrkort::explain(&pipeline, as_of, engine, verbose)
            .map(|e| print_out(&styrkort::report::explained(&e))),
        Command::Inspect(args) => inspect(args),
        Command::Spc(args) => spc(args),
        Command::Report(args) => report(args),
        Command::Export(ExportArgs { run, xlsx }) => inspect_run_dir(run).and_then(|dir| {
            styrkort::report::export_xlsx(&dir, &xlsx)?;
            print_out(&format!("wrote {}\n", xlsx.display()));
            Ok(())
        }),
        Command::Init(InitArgs { dir, name }) => {
            let files = styrkort::generate::write_starter(&dir, &name)?;
            print_wrote(&files);
            print_out(&format!(
                "next: styrkort run {}\n",
                dir.join("pipeline.toml").display()
            ));
            Ok(())
        }
        #[cfg(feature = "distributed")]
        Command::Cluster(ClusterArgs { executors, slots }) => {
            let cluster = styrkort::compute::cluster::LocalCluster::start(executors, slots)
                .map_err(styrkort::Error::Usage)?;
            print_out(&format!("{}\n", cluster.url()));
            loop {
                std::thread::park();
            }
        }
        Command::Generate(GenerateArgs {
            scale,
            seed,
            out,
            format,
            known_truth,
        }) => {
            let files =
                styrkort::generate::write_pipeline_dir(&out, scale, seed, format, known_truth)?;
            print_wrote(&files);
            Ok(())
        }
    }
}

/// `styrkort run`: publishes a run (or says why nothing was done).
fn run(args: RunArgs, alert: &mut bool) -> Result<(), styrkort::Error> {
    let options = styrkort::RunOptions {
        fail_on: args.fail_on,
        skip_unchanged: args.skip_unchanged,
        allow_future: args.allow_future,
        engine: args.engine,
        ..styrkort::RunOptions::new(args.as_of, args.out)
    };
    match styrkort::run_or_skip(&args.pipeline, &options)? {
        styrkort::RunOutcome::Published(summary) => {
            print_out(&format!("{summary}\n"));
            *alert = !summary.fail_on_hits.is_empty();
        }
        styrkort::RunOutcome::Unchanged { run_dir } => print_out(&format!(
            "unchanged: definitions and inputs equal those of the published run {}; nothing to do\n",
            run_dir.display()
        )),
    }
    Ok(())
}

/// `styrkort spc`: the statistical reading of the series in a CSV file.
fn spc(args: SpcArgs) -> Result<(), styrkort::Error> {
    let options = styrkort::report::AdhocOptions {
        direction: args.direction,
        rebase: args.rebase,
        fix_after: args.fix_after,
        screen_outliers: !args.no_screen,
        alpha: args.alpha,
        format: args.format,
    };
    print_out(&styrkort::report::spc_report(&args.file, &options)?);
    Ok(())
}

/// `styrkort report`: the controller's HTML report of a run.
fn report(args: ReportArgs) -> Result<(), styrkort::Error> {
    let ReportArgs {
        run,
        unit,
        period,
        lang,
        output,
    } = args;
    let options = styrkort::report::ReportOptions { unit, period, lang };
    let dir = inspect_run_dir(run)?;
    let page = styrkort::report::html_report(&dir, &options)?;
    std::fs::write(&output, page).map_err(styrkort::Error::io("write", &output))?;
    print_out(&format!("wrote {}\n", output.display()));
    Ok(())
}

fn print_wrote(files: &[PathBuf]) {
    for f in files {
        print_out(&format!("wrote {}\n", f.display()));
    }
}

/// `styrkort inspect`: the deviations, goals or signals of a run, as a table for a person or
/// as CSV/JSON for a program.
fn inspect(args: InspectArgs) -> Result<(), styrkort::Error> {
    use std::io::IsTerminal;
    let (signals, goals, format) = (args.signals, args.goals, args.format);
    let filter = &styrkort::report::InspectFilter {
        statuses: args.status,
        unit: args.unit,
        goal: args.goal,
        indicator: args.indicator,
        grain: args.grain,
        period: args.period,
        segment: args.segment,
        limit: args.limit,
    };
    let dir = inspect_run_dir(args.run)?;
    let dir = dir.as_path();
    let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let text = if goals {
        styrkort::report::render_goals(dir, filter, format, color)?
    } else if signals {
        styrkort::report::render_signals(dir, filter, color)?
    } else if format != styrkort::report::InspectFormat::Table {
        styrkort::report::deviations_for_programs(dir, filter, format)?
    } else {
        styrkort::report::inspect(dir, filter, color)?
    };
    print_out(&text);
    Ok(())
}

/// Reports a failed command on stderr and gives its exit code.
fn failed(e: &styrkort::Error, json_logs: bool) -> ExitCode {
    if json_logs {
        // Only JSON lines on stderr, the error included, with the run id and the stage
        // that failed when a run failed.
        match e {
            styrkort::Error::InRun {
                run_id,
                stage,
                inner,
            } => tracing::error!(
                run_id = %run_id,
                stage = *stage,
                exit_code = e.exit_code(),
                error = %inner,
                "run failed"
            ),
            _ => tracing::error!(exit_code = e.exit_code(), error = %e, "styrkort failed"),
        }
    } else {
        eprintln!("error: {e}");
    }
    ExitCode::from(e.exit_code() as u8)
}
