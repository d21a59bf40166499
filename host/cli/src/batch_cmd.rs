//! `weir batch`: run a job over a period now, backfill a range with chosen plugin
//! versions, list a job's completed runs.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Subcommand;
use weir_batch::{
    JobRunner, Period, PluginSource, RunRequest, Trigger, closed_period, now_micros, parse_time, periods_between,
};
use weir_config::PipelineConfig;
use weir_connectors::sink_types;
use weir_runtime::{Runtime, RuntimeConfig};

/// Most periods one backfill runs.
const MAX_BACKFILL_PERIODS: usize = 1000;

#[derive(Debug, Subcommand)]
pub(crate) enum BatchCommand {
    /// Run a job over one period now: by default the newest period closed for the job's
    /// lateness (what its schedule would run).
    Run {
        /// The job (its `name` in [[jobs]]).
        job: String,
        /// The pipeline configuration (TOML), e.g. weir.toml.
        #[arg(long)]
        config: PathBuf,
        /// A time in the period to run: 2026-12-01 or 2026-12-01T06:00:00Z.
        #[arg(long)]
        period: Option<String>,
        /// Run this plugin version from the registry instead of the live one: NAME@VERSION.
        #[arg(long = "plugin", value_name = "NAME@VERSION")]
        plugins: Vec<String>,
        /// Instances of each plugin working at once (default: one per core, at most 8);
        /// with --cluster, the partitions of the plugin step.
        #[arg(long)]
        workers: Option<usize>,
        /// Run the plugin step on the Ballista cluster of this scheduler (df://HOST:PORT,
        /// a `weir batch scheduler` whose executors are `weir batch executor`s).
        #[arg(long, value_name = "df://HOST:PORT")]
        cluster: Option<String>,
        #[command(flatten)]
        tls: ClusterTlsArgs,
    },
    /// Run every job of a stream again over the periods of a range of the raw archive, with
    /// the plugin versions named; each period's outputs replace the earlier run's.
    Backfill {
        /// The pipeline configuration (TOML), e.g. weir.toml.
        #[arg(long)]
        config: PathBuf,
        /// The stream whose jobs run.
        #[arg(long)]
        stream: String,
        /// Only this job of the stream.
        #[arg(long)]
        job: Option<String>,
        /// Start of the range: 2026-12-01 or RFC 3339.
        #[arg(long)]
        from: String,
        /// End of the range (exclusive).
        #[arg(long)]
        to: String,
        /// Plugin versions to run, NAME@VERSION (uploaded to the registry).
        #[arg(long = "plugin", value_name = "NAME@VERSION")]
        plugins: Vec<String>,
        /// Run the plugin steps on this Ballista cluster (df://HOST:PORT).
        #[arg(long, value_name = "df://HOST:PORT")]
        cluster: Option<String>,
        #[command(flatten)]
        tls: ClusterTlsArgs,
    },
    /// Run a Ballista scheduler for `--cluster` runs: it plans weir's plugin step onto
    /// the executors that register with it.
    Scheduler {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:50050")]
        bind: std::net::SocketAddr,
        #[command(flatten)]
        tls: ClusterTlsArgs,
    },
    /// Run a Ballista executor that runs weir's plugin steps: the components come from the
    /// registry of --config (the host's configuration), with its limits.
    Executor {
        /// The pipeline configuration the host runs (its registry, lakes and limits).
        #[arg(long)]
        config: PathBuf,
        /// The scheduler, HOST:PORT.
        #[arg(long, default_value = "127.0.0.1:50050")]
        scheduler: String,
        /// Address of the executor's data service; its gRPC service takes the next port.
        #[arg(long, default_value = "127.0.0.1:50051")]
        bind: std::net::SocketAddr,
        /// Host name others reach this executor by (default: the bind address).
        #[arg(long)]
        external_host: Option<String>,
        /// Tasks at once (default: one per core).
        #[arg(long)]
        tasks: Option<usize>,
        /// Directory for shuffle files (default: a temporary one).
        #[arg(long)]
        work_dir: Option<PathBuf>,
        #[command(flatten)]
        tls: ClusterTlsArgs,
    },
    /// Every job of a configuration with its schedule and newest run: the last completed
    /// one (period, duration, counts, from its manifest) or, when it ended later, the last
    /// failed one (period, duration, the error, from its failure record).
    List {
        /// The pipeline configuration (TOML), e.g. weir.toml.
        #[arg(long)]
        config: PathBuf,
    },
    /// The completed runs of a job, from their manifests.
    Runs {
        /// The job (its `name` in [[jobs]]).
        job: String,
        /// The pipeline configuration (TOML), e.g. weir.toml.
        #[arg(long)]
        config: PathBuf,
    },
}

pub(crate) async fn run(command: BatchCommand) -> ExitCode {
    match execute(command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn execute(command: BatchCommand) -> anyhow::Result<()> {
    match command {
        BatchCommand::Run { job, config, period, plugins, workers, cluster, tls } => {
            let runner = with_cluster(open_runner(&config, workers).await?, cluster, &tls)?;
            let versions = pinned_versions(&plugins)?;
            let spec = runner.job(&job)?;
            let length = spec.period.micros().max(1);
            let period = match period {
                Some(text) => Period::containing(parse_time(&text).map_err(anyhow::Error::msg)?, length),
                None => closed_period(now_micros(), length, spec.lateness.micros().max(1)),
            };
            let manifest = runner.run(RunRequest { job, period, versions, trigger: Trigger::OnDemand }).await?;
            println!("{}", serde_json::to_string_pretty(&manifest)?);
        }
        BatchCommand::Backfill { config, stream, job, from, to, plugins, cluster, tls } => {
            let runner = with_cluster(open_runner(&config, None).await?, cluster, &tls)?;
            let versions = pinned_versions(&plugins)?;
            let jobs: Vec<_> = runner
                .config()
                .jobs
                .iter()
                .filter(|j| j.stream == stream && job.as_ref().is_none_or(|name| *name == j.name))
                .cloned()
                .collect();
            anyhow::ensure!(
                !jobs.is_empty(),
                "no job reads stream {stream:?}{}; add a [[jobs]] table with stream = {stream:?}",
                job.map(|j| format!(" under the name {j:?}")).unwrap_or_default()
            );
            let (from, to) =
                (parse_time(&from).map_err(anyhow::Error::msg)?, parse_time(&to).map_err(anyhow::Error::msg)?);
            for spec in jobs {
                // Only the versions of plugins this job runs.
                let used: Vec<&str> = spec.plugins().map(|(name, _)| name).collect();
                let versions: BTreeMap<String, String> = versions
                    .iter()
                    .filter(|(name, _)| used.contains(&name.as_str()))
                    .map(|(n, v)| (n.clone(), v.clone()))
                    .collect();
                let periods = periods_between(from, to, spec.period.micros().max(1), MAX_BACKFILL_PERIODS)
                    .map_err(anyhow::Error::msg)?;
                for period in periods {
                    let request = RunRequest {
                        job: spec.name.clone(),
                        period,
                        versions: versions.clone(),
                        trigger: Trigger::Backfill,
                    };
                    let manifest = runner
                        .run(request)
                        .await
                        .with_context(|| format!("job {} period {}", spec.name, period.describe()))?;
                    println!(
                        "{} {}: {} records, {} events, {} dead letters, levels {}; plugins {}",
                        spec.name,
                        manifest.run,
                        manifest.records,
                        manifest.events,
                        manifest.dead_letters,
                        manifest.levels.iter().map(|(n, l)| format!("{n}={}", l.rows)).collect::<Vec<_>>().join(" "),
                        manifest.plugins.join(">")
                    );
                }
            }
        }
        BatchCommand::Scheduler { bind, tls } => {
            let tls = tls.load(weir_batch::ClusterRole::Node)?;
            let over = if tls.is_some() { " over mutual TLS" } else { "" };
            eprintln!("weir batch scheduler listening on df://{bind}{over}");
            weir_batch::serve_scheduler(bind, tls).await?;
        }
        BatchCommand::Executor { config, scheduler, bind, external_host, tasks, work_dir, tls } => {
            let (host, port) = scheduler
                .rsplit_once(':')
                .and_then(|(host, port)| Some((host.to_owned(), port.parse::<u16>().ok()?)))
                .with_context(|| format!("--scheduler {scheduler:?}: write HOST:PORT, e.g. 127.0.0.1:50050"))?;
            let parsed = Arc::new(load(&config)?);
            let env = weir_batch::ChainEnv::new(job_lakes(&parsed)?, executor_plugin_source(&parsed).await?);
            eprintln!("weir batch executor on {bind}, scheduler {host}:{port}");
            let options = weir_batch::ExecutorOptions {
                scheduler: (host, port),
                bind,
                external_host,
                concurrent_tasks: tasks,
                work_dir,
                tls: tls.load(weir_batch::ClusterRole::Node)?,
            };
            weir_batch::serve_executor(options, env).await?;
        }
        BatchCommand::List { config } => {
            let parsed = load(&config)?;
            let mut jobs = Vec::new();
            for spec in &parsed.jobs {
                let lake = weir_connectors::lake_store(&parsed, &spec.input)?;
                // The run written last (a backfill may have rerun an old period): one
                // listing and one read, however long the job's history.
                let latest = weir_sinks::RunManifest::latest(lake.as_ref(), &spec.name, 1).await?;
                let failure = weir_sinks::RunFailure::read(lake.as_ref(), &spec.name).await?;
                jobs.push(job_line(spec, latest.first(), failure.as_ref()));
            }
            println!("{}", serde_json::to_string_pretty(&jobs)?);
        }
        BatchCommand::Runs { job, config } => {
            let parsed = load(&config)?;
            let spec = parsed.job(&job).with_context(|| format!("unknown job {job:?}"))?;
            let lake = weir_connectors::lake_store(&parsed, &spec.input)?;
            let manifests = weir_sinks::RunManifest::list(lake.as_ref(), &job).await?;
            println!("{}", serde_json::to_string_pretty(&manifests)?);
        }
    }
    Ok(())
}

/// A job in `weir batch list`: its schedule and its newest run, completed or failed
/// (or stopped), whichever ended last. A run killed with `kill -9` records nothing, so it
/// shows as the run before it.
fn job_line(
    spec: &weir_config::JobConfig,
    last: Option<&weir_sinks::RunManifest>,
    failure: Option<&weir_sinks::RunFailure>,
) -> serde_json::Value {
    let ended = |text: &str| parse_time(text).unwrap_or(i64::MIN);
    let failed_last = failure.filter(|f| last.is_none_or(|m| ended(&f.finished) > ended(&m.finished)));
    let last_run = if let Some(f) = failed_last {
        Some(serde_json::json!({
            "run": f.run,
            "period": {"from": weir_events::time::format_rfc3339(f.from), "to": weir_events::time::format_rfc3339(f.to)},
            "status": f.status,
            "trigger": f.trigger,
            "finished": f.finished,
            "duration_seconds": duration_seconds(&f.started, &f.finished),
            "error": f.error,
        }))
    } else {
        last.map(completed_run)
    };
    serde_json::json!({
        "job": spec.name,
        "stream": spec.stream,
        "schedule": spec.schedule.as_ref().map(ToString::to_string),
        "last_run": last_run,
    })
}

/// A completed run in `weir batch list`.
fn completed_run(m: &weir_sinks::RunManifest) -> serde_json::Value {
    serde_json::json!({
        "run": m.run,
        "period": {"from": weir_events::time::format_rfc3339(m.from), "to": weir_events::time::format_rfc3339(m.to)},
        "status": "completed",
        "trigger": m.trigger,
        "finished": m.finished,
        "duration_seconds": duration_seconds(&m.started, &m.finished),
        "records": m.records,
        "events": m.events,
        "dead_letters": m.dead_letters,
    })
}

/// Seconds from `started` to `ended` (RFC 3339), if both parse.
fn duration_seconds(started: &str, ended: &str) -> Option<f64> {
    Some((parse_time(ended).ok()? - parse_time(started).ok()?) as f64 / 1e6)
}

fn load(config: &PathBuf) -> anyhow::Result<PipelineConfig> {
    PipelineConfig::from_file(config, sink_types()).map_err(|errors| anyhow::anyhow!("{errors}"))
}

/// `NAME@VERSION` arguments by plugin name.
fn pinned_versions(plugins: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut versions = BTreeMap::new();
    for text in plugins {
        let (name, version) = text
            .split_once('@')
            .filter(|(n, v)| !n.is_empty() && !v.is_empty())
            .with_context(|| format!("--plugin {text:?}: write NAME@VERSION, e.g. orders-parser@3"))?;
        anyhow::ensure!(versions.insert(name.to_owned(), version.to_owned()).is_none(), "--plugin names {name} twice");
    }
    Ok(versions)
}

fn with_cluster(runner: JobRunner, cluster: Option<String>, tls: &ClusterTlsArgs) -> anyhow::Result<JobRunner> {
    let tls = tls.load(weir_batch::ClusterRole::Planner)?;
    Ok(match (cluster, tls) {
        (Some(url), Some(tls)) => runner.with_cluster(url).with_cluster_tls(tls),
        (Some(url), None) => runner.with_cluster(url),
        (None, Some(_)) => anyhow::bail!("--tls-ca, --tls-cert and --tls-key are for --cluster runs"),
        (None, None) => runner,
    })
}

/// Mutual TLS on a Ballista cluster's connections: every process of the cluster (the
/// planner of `--cluster` runs, the scheduler, the executors) has a certificate for the
/// name `weir-batch` signed by the cluster's CA, and accepts only peers with one.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ClusterTlsArgs {
    /// The cluster's CA certificate (PEM); with --tls-cert and --tls-key.
    #[arg(long, value_name = "FILE", requires_all = ["tls_cert", "tls_key"])]
    tls_ca: Option<PathBuf>,
    /// This process's certificate (PEM), signed by the CA, for the name weir-batch.
    #[arg(long, value_name = "FILE", requires_all = ["tls_ca", "tls_key"])]
    tls_cert: Option<PathBuf>,
    /// This process's private key (PEM).
    #[arg(long, value_name = "FILE", requires_all = ["tls_ca", "tls_cert"])]
    tls_key: Option<PathBuf>,
}

impl ClusterTlsArgs {
    /// The files, checked as the peers of a process of `role` will check them.
    fn load(&self, role: weir_batch::ClusterRole) -> anyhow::Result<Option<weir_batch::ClusterTls>> {
        match (&self.tls_ca, &self.tls_cert, &self.tls_key) {
            (Some(ca), Some(cert), Some(key)) => Ok(Some(weir_batch::ClusterTls::from_files(ca, cert, key, role)?)),
            _ => Ok(None),
        }
    }
}

/// The plugins of `parsed` as `weir serve` loads them: the data directory's registry
/// (or the shared one), the code cache, the reference tables.
async fn plugin_source(parsed: &Arc<PipelineConfig>) -> anyhow::Result<PluginSource> {
    let data_dir = &parsed.server.data_dir;
    let runtime = Runtime::new(RuntimeConfig { cache_dir: Some(code_cache_dir(data_dir)), ..Default::default() })?;
    let reference = weir_connectors::build_references(parsed).await?;
    let registry: Option<Arc<dyn weir_registry::RegistryStore>> = match &parsed.registry.shared {
        Some(shared) => Some(Arc::new(weir_aws::SharedRegistry::open(shared, None).await?)),
        None if data_dir.join("registry").exists() => {
            Some(Arc::new(weir_registry::LocalRegistry::open(&data_dir.join("registry"))?))
        }
        None => None,
    };
    Ok(PluginSource::new(runtime, parsed.clone(), registry, reference))
}

/// The plugins of `parsed` for a batch executor: the shared registry when there is one,
/// else the components of the data directory's embedded registry read by address (its
/// database stays with the host or the planner that holds it).
async fn executor_plugin_source(parsed: &Arc<PipelineConfig>) -> anyhow::Result<PluginSource> {
    if parsed.registry.shared.is_some() {
        return plugin_source(parsed).await;
    }
    let data_dir = &parsed.server.data_dir;
    let runtime = Runtime::new(RuntimeConfig { cache_dir: Some(code_cache_dir(data_dir)), ..Default::default() })?;
    let reference = weir_connectors::build_references(parsed).await?;
    Ok(PluginSource::with_component_dir(runtime, parsed.clone(), data_dir.join("registry"), reference))
}

fn code_cache_dir(data_dir: &std::path::Path) -> PathBuf {
    std::env::var_os("WEIR_CACHE_DIR")
        .filter(|dir| !dir.is_empty())
        .map_or_else(|| data_dir.join("code-cache"), PathBuf::from)
}

/// The object store of each lake a job of `config` reads, by sink name.
fn job_lakes(config: &PipelineConfig) -> anyhow::Result<BTreeMap<String, Arc<dyn object_store::ObjectStore>>> {
    let mut lakes = BTreeMap::new();
    for job in &config.jobs {
        if !lakes.contains_key(&job.input) {
            lakes.insert(job.input.clone(), weir_connectors::lake_store(config, &job.input)?);
        }
    }
    Ok(lakes)
}

/// A runner of the configuration's jobs in this process: its own sinks (so not while a
/// `weir serve` of the same data directory holds the embedded serving store or search
/// index), the registry of the data directory, the plugins' reference tables.
async fn open_runner(config: &PathBuf, workers: Option<usize>) -> anyhow::Result<JobRunner> {
    let parsed = Arc::new(load(config)?);
    let plugins = plugin_source(&parsed).await?;
    let (sinks, _) = weir_connectors::build_sinks(&parsed).with_context(|| {
        "cannot open the sinks (a running `weir serve` on the same data directory holds the embedded serving store \
         and search index: stop it, or let its schedule run the job)"
    })?;
    for sink in sinks.values() {
        sink.prepare().await?;
    }
    let lakes = job_lakes(&parsed)?;
    let workers = workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()).min(8));
    let runner = JobRunner::new(parsed, sinks, plugins, lakes, workers, tokio::sync::watch::channel(false).1);
    Ok(runner.with_observer(Arc::new(crate::batch_progress::ConsoleProgress::new())))
}

/// A runner over parts already built (by `weir serve`'s pipeline).
pub(crate) fn runner_for(
    config: Arc<PipelineConfig>,
    sinks: weir_connectors::SinksByName,
    runtime: Runtime,
    registry: Option<Arc<dyn weir_registry::RegistryStore>>,
    reference: Arc<dyn weir_runtime::ReferenceData>,
    workers: Option<usize>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<JobRunner> {
    let lakes = job_lakes(&config)?;
    let workers = workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()).min(8));
    let plugins = PluginSource::new(runtime, config.clone(), registry, reference);
    Ok(JobRunner::new(config, sinks, plugins, lakes, workers, shutdown))
}
