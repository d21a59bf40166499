//! `type = "firehose"`: the raw archive through an Amazon Data Firehose delivery stream
//! (built only with the `aws` feature).

use std::sync::Arc;

use weir_aws::{FirehoseSettings, FirehoseSink};
use weir_config::{OutputKind, SinkConfig, SinkKind, SinkSettings, SinkTable, SinkType};
use weir_sinks::Sink;

use crate::connector::{Connector, SinkContext, settings_of};

pub(crate) struct Firehose;

impl SinkKind for Firehose {
    fn name(&self) -> &'static str {
        "firehose"
    }

    fn accepts(&self, output: OutputKind) -> bool {
        output == OutputKind::Raw
    }

    fn keys(&self) -> &'static [&'static str] {
        &["delivery_stream", "region", "endpoint"]
    }

    fn read(&self, table: &mut SinkTable<'_, '_, '_, '_>) -> SinkConfig {
        let delivery_stream = table.name_or_sink_name("delivery_stream", "delivery stream");
        table.claim("delivery stream", &delivery_stream, "give each firehose sink its own delivery_stream");
        let region = table.string("region");
        let endpoint = table.endpoint("endpoint");
        SinkConfig::new(FirehoseSinkSettings(FirehoseSettings { delivery_stream, region, endpoint }))
    }
}

/// The settings of a `firehose` sink: `delivery_stream` (by default the sink's name),
/// `region` and `endpoint` (by default the standard AWS chain's region and AWS's
/// endpoint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirehoseSinkSettings(pub FirehoseSettings);

impl SinkSettings for FirehoseSinkSettings {
    fn sink_type(&self) -> SinkType {
        SinkType::of(&Firehose)
    }
}

impl Connector for Firehose {
    fn build(
        &self,
        name: &str,
        settings: &SinkConfig,
        _context: &mut SinkContext<'_>,
    ) -> anyhow::Result<Arc<dyn Sink>> {
        let settings = settings_of::<FirehoseSinkSettings>(name, settings)?;
        Ok(Arc::new(FirehoseSink::new(name, settings.0.clone(), None)))
    }
}
