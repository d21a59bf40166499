//! `type = "lake"`: the data lake in a local directory — the raw archive as NDJSON,
//! events and aggregates as Parquet.

use std::sync::Arc;

use weir_sinks::{LakeSink, RollPolicy, Sink};

use weir_config::{
    ByteSize, HumanDuration, OutputKind, SinkConfig, SinkKind, SinkSettings, SinkTable, SinkType, StoreLocation,
};

use crate::connector::{Connector, SinkContext, open_store, settings_of};

pub(crate) struct Lake;

impl SinkKind for Lake {
    fn name(&self) -> &'static str {
        "lake"
    }

    fn accepts(&self, output: OutputKind) -> bool {
        matches!(output, OutputKind::Raw | OutputKind::Events | OutputKind::Aggregates)
    }

    fn keys(&self) -> &'static [&'static str] {
        &["path", "region", "endpoint", "path_style", "roll_size", "roll_interval"]
    }

    fn read(&self, table: &mut SinkTable<'_, '_, '_, '_>) -> SinkConfig {
        let defaults = RollPolicy::default();
        let path = table.location("path", "lake");
        let size = table.byte_size("roll_size", ByteSize(defaults.size as u64));
        let interval = table.duration("roll_interval", HumanDuration(defaults.interval));
        if size.0 == 0 {
            table.problem("roll_size", "roll_size must be more than 0 bytes, e.g. \"64MiB\"");
        }
        let size = usize::try_from(size.0).unwrap_or(usize::MAX);
        let roll = (!interval.0.is_zero()).then_some(RollPolicy { size, interval: interval.0 });
        SinkConfig::new(LakeSettings { path, roll })
    }
}

/// The settings of a `lake` sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LakeSettings {
    /// `path`: the lake's root directory, resolved against `server.data_dir`. By default
    /// `lake`.
    pub path: StoreLocation,
    /// `roll_size` and `roll_interval`: a stream's commits are staged and rolled into one
    /// object per kind, date and shard once they hold `roll_size` bytes (default 64 MiB)
    /// or the oldest is `roll_interval` old (default 60 s); `roll_interval = "0s"`: one
    /// object per commit (`None`).
    pub roll: Option<RollPolicy>,
}

impl LakeSettings {
    /// A lake at `path` with the default rolling.
    pub fn at(path: StoreLocation) -> Self {
        Self { path, roll: Some(RollPolicy::default()) }
    }
}

impl SinkSettings for LakeSettings {
    fn sink_type(&self) -> SinkType {
        SinkType::of(&Lake)
    }
}

impl Connector for Lake {
    fn build(&self, name: &str, settings: &SinkConfig, context: &mut SinkContext<'_>) -> anyhow::Result<Arc<dyn Sink>> {
        let settings = settings_of::<LakeSettings>(name, settings)?;
        let store = open_store(name, &settings.path)?;
        context.stores.add_lake_layout(name, store.clone());
        Ok(Arc::new(match settings.roll {
            Some(policy) => {
                let shared = matches!(settings.path, StoreLocation::S3(_));
                LakeSink::rolling(name, store, policy, shared)
            }
            None => LakeSink::new(name, store),
        }))
    }
}
