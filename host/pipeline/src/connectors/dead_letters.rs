//! `type = "dead-letters"`: records a plugin could not process, with the reason, as
//! NDJSON in a local directory (under `dead-letters/`, so it may share the lake's root).

use std::path::PathBuf;
use std::sync::Arc;

use weir_sinks::{DeadLetterSink, Sink};

use super::{SinkContext, SinkKind, SinkSettings, clean_up};
use crate::config::{OutputKind, SinkConfig, SinkTable, SinkType};

pub(super) struct DeadLetters;

impl SinkKind for DeadLetters {
    fn name(&self) -> &'static str {
        "dead-letters"
    }

    fn accepts(&self, output: OutputKind) -> bool {
        output == OutputKind::DeadLetters
    }

    fn keys(&self) -> &'static [&'static str] {
        &["path"]
    }

    fn read(&self, table: &mut SinkTable<'_, '_, '_, '_>) -> SinkConfig {
        SinkConfig::new(DeadLetterSettings { path: table.directory("path", "lake") })
    }
}

/// The settings of a `dead-letters` sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterSettings {
    /// `path`: the root directory, resolved against `server.data_dir`. By default `lake`.
    pub path: PathBuf,
}

impl SinkSettings for DeadLetterSettings {
    fn sink_type(&self) -> SinkType {
        SinkType::of(&DeadLetters)
    }

    fn build(&self, name: &str, _context: &mut SinkContext<'_>) -> anyhow::Result<Arc<dyn Sink>> {
        clean_up(name, &self.path)?;
        Ok(Arc::new(DeadLetterSink::local(name, &self.path)?))
    }
}
