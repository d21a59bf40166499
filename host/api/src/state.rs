//! What every route handler sees: the running pipeline and who may call what.

use std::ops::Deref;
use std::sync::Arc;

use weir_pipeline::Pipeline;

use crate::auth::AdminAccess;

/// The routes' state: the pipeline they act on and the access rules they check.
#[derive(Debug)]
pub(crate) struct Api {
    pipeline: Arc<Pipeline>,
    access: AdminAccess,
}

impl Api {
    pub(crate) fn new(pipeline: Arc<Pipeline>, access: AdminAccess) -> Self {
        Self { pipeline, access }
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
