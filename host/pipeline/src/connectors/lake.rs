//! `type = "lake"`: the data lake in a local directory — the raw archive as NDJSON,
//! events and aggregates as Parquet.

use std::path::PathBuf;
use std::sync::Arc;

use weir_sinks::{LakeSink, Sink};

use super::{SinkContext, SinkKind, SinkSettings, clean_up};
use crate::config::{OutputKind, SinkConfig, SinkTable, SinkType};

pub(super) struct Lake;

impl SinkKind for Lake {
    fn name(&self) -> &'static str {
        "lake"
    }

    fn accepts(&self, output: OutputKind) -> bool {
        matches!(output, OutputKind::Raw | OutputKind::Events | OutputKind::Aggregates)
    }

    fn keys(&self) -> &'static [&'static str] {
        &["path"]
    }

    fn read(&self, table: &mut SinkTable<'_, '_, '_, '_>) -> SinkConfig {
        SinkConfig::new(LakeSettings { path: table.directory("path", "lake") })
    }
}

/// The settings of a `lake` sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LakeSettings {
    /// `path`: the lake's root directory, resolved against `server.data_dir`. By default
    /// `lake`.
    pub path: PathBuf,
}

impl SinkSettings for LakeSettings {
    fn sink_type(&self) -> SinkType {
        SinkType::of(&Lake)
    }

    fn build(&self, name: &str, _context: &mut SinkContext<'_>) -> anyhow::Result<Arc<dyn Sink>> {
        clean_up(name, &self.path)?;
        Ok(Arc::new(LakeSink::local(name, &self.path)?))
    }
}
