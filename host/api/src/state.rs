//! What every route handler sees: the running pipeline and who may call what.

use std::ops::Deref;
use std::sync::Arc;

use weir_pipeline::Pipeline;

use crate::auth::AdminAccess;
use crate::jobs_api::JobControl;
use crate::metrics_history::MetricsHistory;

/// The routes' state: the pipeline they act on and the access rules they check.
#[derive(Debug)]
pub(crate) struct Api {
    pipeline: Arc<Pipeline>,
    access: AdminAccess,
    jobs: Option<Arc<dyn JobControl>>,
    history: Arc<MetricsHistory>,
}

impl Api {
    /// The routes' state; starts sampling the metrics for `/v1/metrics/history` when
    /// called inside a Tokio runtime.
    pub(crate) fn new(pipeline: Arc<Pipeline>, access: AdminAccess, jobs: Option<Arc<dyn JobControl>>) -> Self {
        let history = Arc::new(MetricsHistory::default());
        history.start(Arc::downgrade(&pipeline));
        Self { pipeline, access, jobs, history }
    }

    /// The last hour of metrics.
    pub(crate) fn history(&self) -> &MetricsHistory {
        &self.history
    }

    /// The batch layer the jobs routes drive, when the host runs jobs.
    pub(crate) fn jobs(&self) -> Option<&Arc<dyn JobControl>> {
        self.jobs.as_ref()
    }

    /// Who may use the admin API (and, with `server.require_token`, the data routes).
    pub(crate) fn admin(&self) -> &AdminAccess {
        &self.access
    }
}

impl Deref for Api {
    type Target = Pipeline;

    fn deref(&self) -> &Pipeline {
        &self.pipeline
    }
}
