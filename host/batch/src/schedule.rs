//! Running jobs on their schedules inside `weir serve`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::period::{closed_period, now_micros};
use crate::run::{JobRunner, RunRequest, Trigger};

/// Runs every job that has a schedule when it fires, one run at a time (a run competes
/// with the stream for the host's cores), until `shutdown`. A scheduled run covers the
/// newest period closed for the job's lateness; a failed run is logged and its period
/// is run again at the next firing only if it is still the newest — run it with
/// `weir batch run JOB --period …` otherwise.
pub async fn run_schedules(runner: Arc<JobRunner>, mut shutdown: watch::Receiver<bool>) {
    let jobs: Vec<_> = runner.config().jobs.iter().filter(|j| j.schedule.is_some()).cloned().collect();
    if jobs.is_empty() {
        return;
    }
    loop {
        let now = now_micros();
        let next = jobs
            .iter()
            .filter_map(|job| job.schedule.as_ref().and_then(|s| s.next_after(now)).map(|at| (at, job)))
            .min_by_key(|(at, _)| *at);
        let Some((at, job)) = next else { return };
        let wait = Duration::from_micros(u64::try_from(at - now).unwrap_or(0));
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        let length = job.period.micros().max(1);
        let lateness = job.lateness.micros();
        let period = closed_period(at, length, lateness);
        let request =
            RunRequest { job: job.name.clone(), period, versions: Default::default(), trigger: Trigger::Schedule };
        match runner.run(request).await {
            Ok(manifest) => tracing::info!(
                job = %job.name,
                run = %manifest.run,
                "scheduled run completed: {} records, {} events, {} dead letters",
                manifest.records,
                manifest.events,
                manifest.dead_letters
            ),
            Err(e) => tracing::warn!(
                job = %job.name,
                "the scheduled run of {} failed: {e}; run it again with `weir batch run {} --period {}`",
                period.describe(),
                job.name,
                weir_events::time::format_rfc3339(period.from)
            ),
        }
    }
}
