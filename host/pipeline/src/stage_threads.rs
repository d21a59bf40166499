//! The stages' own threads, at a lower CPU priority than ingest and the API.
//!
//! On a machine with few cores the stages (plugins, sinks, checkpoints) and the ingest
//! route compete for the same CPU. A stage that cannot keep up must show as lag (records
//! waiting in the log, `weir_shard_lag_records`, backpressure once `max_pending_records`
//! is reached), not as ingest latency: a producer's request waits for its records to be
//! durable, never for the stages. So every shard's stage runs on one process-wide tokio
//! runtime whose worker and blocking threads (`weir-stage`) run [`STAGE_NICE`] above the
//! host's nice value: when both want the cores, the scheduler gives ingest and the API
//! (nice 0) about nine times the stages' share; when ingest is idle, the stages have
//! every core. Lowering a thread's own priority needs no privilege.
//!
//! The runtime lives as long as the process (pipelines come and go in tests; a runtime
//! cannot be dropped from async code). Where it cannot be built, the stages run on the
//! host's runtime, with a warning; where a thread's priority cannot be lowered (a system
//! other than Linux), they run on it at the host's priority.

use std::sync::OnceLock;

use tokio::runtime::{Builder, Handle, Runtime};

/// How much the stages' threads add to the host's nice value (0 is normal, 19 the
/// lowest priority).
pub const STAGE_NICE: i32 = 10;

/// The name of the stages' threads, as `/proc/<pid>/task/*/comm` shows it.
pub const STAGE_THREAD_NAME: &str = "weir-stage";

static STAGES: OnceLock<Option<Runtime>> = OnceLock::new();

/// Where stages run: the low-priority stage runtime, or `None` for the caller's runtime
/// when it could not be built.
pub(crate) fn stage_runtime() -> Option<Handle> {
    STAGES
        .get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
            // Relative to the host's nice value, fixed here: a thread inherits the nice
            // value of the thread that starts it, and blocking threads are started by
            // stage threads.
            let nice = (current_nice() + STAGE_NICE).min(19);
            match Builder::new_multi_thread()
                .worker_threads(cores)
                .thread_name(STAGE_THREAD_NAME)
                .on_thread_start(move || set_this_threads_nice(nice))
                .enable_all()
                .build()
            {
                Ok(runtime) => Some(runtime),
                Err(e) => {
                    tracing::warn!("cannot start the stages' runtime ({e}); stages share the host's threads");
                    None
                }
            }
        })
        .as_ref()
        .map(|runtime| runtime.handle().clone())
}

/// The calling thread's nice value (0 where it cannot be read).
fn current_nice() -> i32 {
    #[cfg(target_os = "linux")]
    {
        rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap_or(0)
    }
    #[cfg(not(target_os = "linux"))]
    {
        0
    }
}

fn set_this_threads_nice(nice: i32) {
    #[cfg(target_os = "linux")]
    {
        // On Linux a "process" priority set on a thread id is that thread's alone.
        if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), nice) {
            tracing::warn!("cannot lower a stage thread's priority ({e}); stages compete with ingest for the cores");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The current thread's name and nice value.
    fn probe() -> (Option<String>, i32) {
        let nice = rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap();
        (std::thread::current().name().map(str::to_owned), nice)
    }

    #[test]
    fn stages_and_their_blocking_work_run_on_threads_of_lower_priority_than_the_callers() {
        let runtime = stage_runtime().expect("the stages' runtime starts");
        let (sent, received) = std::sync::mpsc::channel();
        runtime.spawn(async move {
            let worker = probe();
            let blocking = tokio::task::spawn_blocking(probe).await.unwrap();
            sent.send((worker, blocking)).unwrap();
        });
        let (worker, blocking) = received.recv().unwrap();
        let caller = probe().1;
        let stage = Some(STAGE_THREAD_NAME.to_owned());
        let lowered = (caller + STAGE_NICE).min(19);
        assert_eq!(worker, (stage.clone(), lowered), "a stage's async work");
        assert_eq!(blocking, (stage, lowered), "its blocking work (log reads, sink writes)");
    }
}
