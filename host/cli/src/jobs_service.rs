//! The batch layer of `weir serve` as the jobs routes see it ([`weir_api::JobControl`]):
//! the configured jobs with their runs, and on-demand runs started in the background,
//! one at a time per host, audited.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use weir_batch::{JobRunner, Period, RunRequest, Trigger, closed_period, now_micros, parse_time};
use weir_log::BoxFuture;
use weir_pipeline::deployments::{AdminError, Deployments};

/// Completed runs listed per job, the newest.
const LISTED_RUNS: usize = 5;

/// A run this host started on demand, while it goes on.
#[derive(Debug, Clone)]
struct Running {
    job: String,
    run: String,
    period: Period,
    actor: String,
    started: String,
}

#[derive(Debug, Default)]
struct State {
    running: Option<Running>,
    /// How the last on-demand run of each job on this host ended.
    last: BTreeMap<String, Value>,
}

/// On-demand runs and the jobs' state, over the host's job runner.
#[derive(Debug)]
pub(crate) struct JobService {
    runner: Arc<JobRunner>,
    deployments: Arc<Deployments>,
    state: Arc<Mutex<State>>,
}

impl JobService {
    pub(crate) fn new(runner: Arc<JobRunner>, deployments: Arc<Deployments>) -> Self {
        Self { runner, deployments, state: Arc::default() }
    }

    fn refused(status: u16, code: &'static str, message: String) -> AdminError {
        AdminError { status, code, message }
    }

    async fn describe_jobs(&self) -> Result<Vec<Value>, AdminError> {
        let (running, last) = {
            let state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            (state.running.clone(), state.last.clone())
        };
        let mut out = Vec::new();
        for job in &self.runner.config().jobs {
            let lake = self.runner.lake_of(&job.name).map_err(|e| Self::refused(500, "batch_error", e.to_string()))?;
            // The newest runs only: one listing and LISTED_RUNS reads per request, not a
            // read of every manifest the job ever wrote.
            let runs = weir_sinks::RunManifest::latest(lake.as_ref(), &job.name, LISTED_RUNS).await.map_err(|e| {
                Self::refused(500, "batch_error", format!("cannot list the runs of job {}: {e}", job.name))
            })?;
            // The newest run's failure, if it failed: whichever process ran it (this one
            // before a restart, a `weir batch run`); one read.
            let last_failure = weir_sinks::RunFailure::read(lake.as_ref(), &job.name).await.map_err(|e| {
                Self::refused(500, "batch_error", format!("cannot read the failure record of job {}: {e}", job.name))
            })?;
            let running = running.as_ref().filter(|r| r.job == job.name).map(|r| {
                json!({
                    "run": r.run, "period": r.period.describe(), "actor": r.actor, "started": r.started,
                })
            });
            out.push(json!({
                "name": job.name,
                "stream": job.stream,
                "schedule": job.schedule.as_ref().map(|s| s.as_str().to_owned()),
                "period": job.period.to_string(),
                "lateness": job.lateness.to_string(),
                "levels": job.levels.iter().map(|l| l.name.clone()).collect::<Vec<_>>(),
                "running": running,
                "last_outcome": last.get(&job.name),
                "last_failure": last_failure,
                "runs": runs,
            }));
        }
        Ok(out)
    }

    async fn start(&self, job: &str, period: Option<&str>, actor: &str) -> Result<Value, AdminError> {
        let spec = self.runner.job(job).map_err(|e| Self::refused(404, "unknown_job", e.to_string()))?;
        let length = spec.period.micros().max(1);
        let period = match period {
            Some(text) => Period::containing(
                parse_time(text).map_err(|e| {
                    Self::refused(400, "invalid_period", format!("period {text:.40?}: {e}; e.g. \"2026-12-01\""))
                })?,
                length,
            ),
            None => closed_period(now_micros(), length, spec.lateness.micros().max(1)),
        };
        let running = Running {
            job: job.to_owned(),
            run: period.run_id(),
            period,
            actor: actor.to_owned(),
            started: weir_events::time::format_rfc3339(now_micros()),
        };
        {
            let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(busy) = &state.running {
                return Err(Self::refused(
                    409,
                    "run_in_progress",
                    format!(
                        "run {} of job {} ({}) started by {} is in progress; one on-demand run at a time per host: \
                         follow it with GET /v1/jobs/{} and start this one after",
                        busy.run,
                        busy.job,
                        busy.period.describe(),
                        busy.actor,
                        busy.job
                    ),
                ));
            }
            state.running = Some(running.clone());
        }
        let target = format!("{job}@{}", running.run);
        self.deployments.record_action(actor, "run", &target, "ok: started".to_owned()).await;
        let answer = json!({
            "job": job,
            "run": running.run,
            "from": weir_events::time::format_rfc3339(period.from),
            "to": weir_events::time::format_rfc3339(period.to),
            "status": "running",
        });
        let (runner, state, deployments) = (self.runner.clone(), self.state.clone(), self.deployments.clone());
        let request = RunRequest { job: job.to_owned(), period, versions: BTreeMap::new(), trigger: Trigger::OnDemand };
        tokio::spawn(async move {
            let result = runner.run(request).await;
            let finished = weir_events::time::format_rfc3339(now_micros());
            let (outcome, audit) = match &result {
                Ok(manifest) => (
                    json!({
                        "run": manifest.run, "status": "completed", "finished": finished,
                        "records": manifest.records, "events": manifest.events, "dead_letters": manifest.dead_letters,
                    }),
                    format!(
                        "ok: {} records, {} events, {} dead letters",
                        manifest.records, manifest.events, manifest.dead_letters
                    ),
                ),
                Err(e) => {
                    // `stopped` (the host shut down mid-run) or `failed`, as `/metrics` and
                    // the failure record say it.
                    let status = e.run_status();
                    tracing::warn!(job = %running.job, run = %running.run, "the on-demand run {status}: {e}");
                    (
                        json!({ "run": running.run, "status": status, "finished": finished, "error": e.to_string() }),
                        format!("{status}: {e}"),
                    )
                }
            };
            deployments.record_action(&running.actor, "run", &format!("{}@{}", running.job, running.run), audit).await;
            let mut state = state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            state.last.insert(running.job.clone(), outcome);
            state.running = None;
        });
        Ok(answer)
    }
}

impl weir_api::JobControl for JobService {
    fn jobs(&self) -> BoxFuture<'_, Result<Vec<Value>, AdminError>> {
        Box::pin(self.describe_jobs())
    }

    fn start_run<'a>(
        &'a self,
        job: &'a str,
        period: Option<&'a str>,
        actor: &'a str,
    ) -> BoxFuture<'a, Result<Value, AdminError>> {
        Box::pin(self.start(job, period, actor))
    }
}
