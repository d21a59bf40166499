//! `weir serve`, `weir validate` and `weir demo`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use weir_config::PipelineConfig;
use weir_connectors::sink_types;
use weir_pipeline::Pipeline;

/// `weir validate --config FILE`: every problem of the file, each with its line and key;
/// then what `weir serve` would find: each plugin's component loaded and checked against
/// the role the streams and jobs use it in (as `weir plugin inspect` does, compiled code
/// cached where serve caches it), and — when the local registry can be read (the host is
/// stopped) — each plugin whose registry version is not the configured file, saying which
/// a start will run.
pub(crate) async fn validate(config: &PathBuf) -> ExitCode {
    let parsed = match weir_config::validate_file(config, sink_types()) {
        Ok(parsed) => parsed,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::from(2);
        }
    };
    let mut problems = Vec::new();
    let code_cache = std::env::var_os("WEIR_CACHE_DIR")
        .filter(|dir| !dir.is_empty())
        .map_or_else(|| parsed.server.data_dir.join("code-cache"), PathBuf::from);
    let runtime = match weir_runtime::Runtime::new(weir_runtime::RuntimeConfig {
        cache_dir: Some(code_cache),
        ..Default::default()
    }) {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the plugin runtime: {e:#}");
            return ExitCode::from(2);
        }
    };
    let mut files = BTreeMap::new();
    for (name, plugin) in &parsed.plugins {
        let bytes = match std::fs::read(&plugin.path) {
            Ok(bytes) => bytes,
            Err(e) => {
                problems.push(format!("plugins.{name}: cannot read {}: {e}", plugin.path.display()));
                continue;
            }
        };
        match runtime.inspect(&plugin.path.display().to_string(), &bytes) {
            Ok(info) => match parsed.plugin_world(name) {
                Some(world) if world != info.world => problems.push(format!(
                    "plugins.{name}: {} is a component of world {}, but the pipeline uses {name} as world {world}; \
                     point path at a {world} component",
                    plugin.path.display(),
                    info.world
                )),
                Some(_) => {}
                None => eprintln!("note: plugins.{name} is used by no stream or job"),
            },
            Err(e) => problems.push(format!("plugins.{name}: {e}")),
        }
        files.insert(name.clone(), weir_registry::sha256_hex(&bytes));
    }
    if !problems.is_empty() {
        for problem in &problems {
            eprintln!("{}: {problem}", config.display());
        }
        return ExitCode::from(2);
    }
    for note in registry_notes(&parsed, &files).await {
        eprintln!("warning: {note}");
    }
    println!(
        "{}: valid ({} streams, {} jobs, {} plugins checked, {} sinks)",
        config.display(),
        parsed.streams.len(),
        parsed.jobs.len(),
        parsed.plugins.len(),
        parsed.sinks.len()
    );
    ExitCode::SUCCESS
}

/// Each plugin whose live version in the local registry is not the configured file
/// (`files`: SHA-256 by plugin), with what a start will do about it.
async fn registry_notes(parsed: &PipelineConfig, files: &BTreeMap<String, String>) -> Vec<String> {
    if parsed.registry.shared.is_some() {
        return vec!["the shared registry's deployments are compared with the files at start, not here".to_owned()];
    }
    let root = parsed.server.data_dir.join("registry");
    if !root.join("registry.redb").exists() {
        return Vec::new();
    }
    let registry = match weir_registry::LocalRegistry::open(&root) {
        Ok(registry) => registry,
        Err(e) => {
            return vec![format!(
                "cannot read the registry at {} ({e}); a running host holds it: its deployments are compared with \
                 the files at start",
                root.display()
            )];
        }
    };
    use weir_registry::RegistryStore as _;
    let deployments = match registry.deployments().await {
        Ok(deployments) => deployments,
        Err(e) => return vec![format!("cannot read the registry's deployments: {e}")],
    };
    let file_wins = parsed.registry.precedence == weir_config::Precedence::File;
    let mut notes = Vec::new();
    for deployment in deployments {
        let (Some(plugin), Some(file_sha)) = (parsed.plugins.get(&deployment.plugin), files.get(&deployment.plugin))
        else {
            continue;
        };
        // A canary or shadow built against a WIT this weir cannot run is ended at start.
        if let Some(candidate) = &deployment.candidate
            && let Ok(Some(record)) = registry.version(deployment.plugin.clone(), candidate.version.clone()).await
            && !weir_runtime::supports_wit_version(&record.wit_version)
        {
            let (name, version, live) = (&deployment.plugin, &candidate.version, &deployment.live);
            notes.push(format!(
                "{name}: the registry's candidate {name}@{version} was built against weir:plugin@{}, which this weir \
                 (weir:plugin@{}) cannot run: a start ends it and keeps {name}@{live} live. Rebuild it against this \
                 weir's SDK, upload it as a new version and start the canary or shadow again",
                record.wit_version,
                weir_runtime::SUPPORTED_WIT_VERSION
            ));
        }
        let record = match registry.version(deployment.plugin.clone(), deployment.live.clone()).await {
            Ok(Some(record)) => record,
            _ => continue,
        };
        let same_version =
            deployment.live == plugin.version || deployment.live.starts_with(&format!("{}+", plugin.version));
        if record.sha256 == *file_sha && same_version {
            continue;
        }
        let (name, live, version, path) =
            (&deployment.plugin, &deployment.live, &plugin.version, plugin.path.display());
        let supported = weir_runtime::SUPPORTED_WIT_VERSION;
        notes.push(if !weir_runtime::supports_wit_version(&record.wit_version) {
            format!(
                "{name}: the registry's live {name}@{live} was built against weir:plugin@{}, which this weir \
                 (weir:plugin@{supported}) cannot run: a start makes the configured file live ({name}@{version}, \
                 {path}) and keeps {name}@{live} for the record. Rebuild it against this weir's SDK, upload it \
                 as a new version and activate it",
                record.wit_version
            )
        } else if file_wins {
            format!(
                "{name}: the registry runs {name}@{live}, not the configured file ({name}@{version}, {path}); \
                 [registry] precedence = \"file\": a start makes the file live ({name}@{live} stays for rollback)"
            )
        } else {
            format!(
                "{name}: the registry runs {name}@{live}, not the configured file ({name}@{version}, {path}); a start \
                 keeps running {name}@{live}. To run the file: weir plugin upload {path} --name {name} --version \
                 {version} && weir plugin activate {name} {version}, or set [registry] precedence = \"file\""
            )
        });
    }
    notes
}

/// `weir serve --config FILE`: ingest API, stages, sinks, until Ctrl-C or SIGTERM; then
/// finishes in-flight requests and stops the stages (unacknowledged batches are redone
/// at the next start).
pub(crate) async fn serve(config: &PathBuf) -> ExitCode {
    let parsed = match PipelineConfig::from_file(config, sink_types()) {
        Ok(p) => p,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::from(2);
        }
    };
    let access = match weir_api::AdminAccess::from_config(&parsed.admin, parsed.server.require_token) {
        Ok(access) => access,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    // `[log] type = "kinesis"`: the streams are Kinesis streams, checkpoints in DynamoDB.
    let log: Option<std::sync::Arc<dyn weir_log::StreamLog>> = match &parsed.log.kinesis {
        Some(kinesis) => match weir_aws::open_kinesis_log(kinesis).await {
            Ok(log) => Some(Arc::new(log)),
            Err(e) => {
                eprintln!("error: cannot open the Kinesis log: {e}");
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    // `[registry] type = "aws"`: the registry the fleet shares, components in S3.
    let registry: Option<std::sync::Arc<dyn weir_registry::RegistryStore>> = match &parsed.registry.shared {
        Some(shared) => match weir_aws::SharedRegistry::open(shared, None).await {
            Ok(registry) => Some(Arc::new(registry)),
            Err(e) => {
                eprintln!("error: cannot open the shared registry: {e}");
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    let pipeline = match Pipeline::start_shared(&parsed, log, registry).await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: cannot start the pipeline: {e:#}");
            return ExitCode::from(2);
        }
    };
    // The batch layer's jobs, on the pipeline's sinks and plugins: on their schedules, and
    // on demand through the jobs routes.
    let mut jobs: Option<Arc<dyn weir_api::JobControl>> = None;
    if !parsed.jobs.is_empty() {
        let parts = pipeline.parts().clone();
        match crate::batch_cmd::runner_for(
            Arc::new(parsed.clone()),
            parts.sinks,
            parts.runtime,
            Some(parts.registry),
            parts.reference,
            None,
            pipeline.shutdown_receiver(),
        ) {
            Ok(runner) => {
                let runner = Arc::new(runner.with_observer(Arc::new(JobMetrics(pipeline.clone()))));
                if parsed.jobs.iter().any(|job| job.schedule.is_some()) {
                    tokio::spawn(weir_batch::run_schedules(runner.clone(), pipeline.shutdown_receiver()));
                }
                let service = crate::jobs_service::JobService::new(runner, pipeline.deployments().clone());
                jobs = Some(Arc::new(service));
            }
            Err(e) => {
                eprintln!("error: cannot start the batch jobs: {e:#}");
                return ExitCode::from(2);
            }
        }
    }
    let listener = match tokio::net::TcpListener::bind(parsed.server.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {}: {e}", parsed.server.listen);
            return ExitCode::from(2);
        }
    };
    let addr = listener.local_addr().map_or_else(|_| parsed.server.listen.to_string(), |a| a.to_string());
    // One line on stdout that scripts and tests wait for.
    println!("weir listening on http://{addr}");
    if !parsed.server.listen.ip().is_loopback() && !access.requires_data_tokens() {
        tracing::warn!(
            "listening on {addr} without tokens on the ingest route and the read API: anyone who can reach \
             it can send and read data; set `require_token = true` under [server] (with WEIR_INGEST_TOKEN and \
             WEIR_READ_TOKEN), or keep it behind an authenticating proxy"
        );
    }
    let app = weir_api::app_with_jobs(Arc::clone(&pipeline), access, jobs);
    let limits = weir_api::ConnectionLimits {
        max_connections: usize::try_from(parsed.server.max_connections).unwrap_or(usize::MAX),
        header_timeout: parsed.server.header_timeout.0,
    };
    weir_api::serve(listener, app, limits, shutdown_signal()).await;
    pipeline.shutdown().await;
    ExitCode::SUCCESS
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// `weir demo`.
pub(crate) async fn demo(plugin_dir: Option<PathBuf>, data_dir: PathBuf, events: usize, seed: u64) -> ExitCode {
    let plugin_dir = plugin_dir.unwrap_or_else(|| {
        std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| PathBuf::from("target"), PathBuf::from)
            .join("wasm32-wasip2/plugin")
    });
    if !plugin_dir.join("orders_parser.wasm").exists() {
        eprintln!(
            "error: the example plugins are not built in {}; run scripts/build-plugins.sh (scripts/demo.sh does it for you)",
            plugin_dir.display()
        );
        return ExitCode::from(2);
    }
    let plugin_dir = plugin_dir.canonicalize().unwrap_or(plugin_dir);
    let options = weir_cli::demo::DemoOptions { plugin_dir, data_dir, events, seed };
    match weir_cli::demo::run(&options).await {
        Ok(report) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: the demo failed: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Counts the batch jobs' runs in the pipeline's `/metrics`.
struct JobMetrics(Arc<Pipeline>);

impl weir_batch::RunObserver for JobMetrics {
    fn finished(&self, finished: &weir_batch::RunFinished<'_>) {
        let metrics = self.0.metrics();
        let job = finished.job;
        let status = finished.outcome.map_or_else(weir_batch::BatchError::run_status, |_| "completed");
        let labels = [("job", job), ("trigger", finished.trigger.as_str()), ("status", status)];
        metrics.add("weir_job_runs_total", &labels, 1);
        let millis = i64::try_from(finished.elapsed.as_millis()).unwrap_or(i64::MAX);
        metrics.set("weir_job_last_run_milliseconds", &[("job", job)], millis);
        if let Ok(manifest) = finished.outcome {
            metrics.add("weir_job_records_total", &[("job", job)], manifest.records);
            metrics.add("weir_job_dead_letters_total", &[("job", job)], manifest.dead_letters);
            let now = weir_batch::now_micros() / 1_000_000;
            metrics.set("weir_job_last_completed_timestamp_seconds", &[("job", job)], now);
        }
    }
}
