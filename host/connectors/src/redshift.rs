//! `type = "redshift"`: the warehouse in Amazon Redshift, or in PostgreSQL
//! (`dialect = "postgres"`), built only with the `aws` feature; its aggregates answer
//! `GET /v1/aggregates/{stream}` like the embedded warehouse's.

use std::sync::Arc;

use weir_aws::{SqlDialect, SqlWarehouseSettings, SqlWarehouseSink};
use weir_config::{OutputKind, SinkConfig, SinkKind, SinkSettings, SinkTable, SinkType, StoreLocation};
use weir_log::BoxFuture;
use weir_sinks::Sink;

use crate::connector::{Connector, SinkContext, settings_of};
use crate::stores::{AggregatesReader, ReadError};

pub(crate) struct Redshift;

const DIALECTS: &[&str] = &["redshift", "postgres"];

/// Rows one `/v1/aggregates` answer holds, at most (the embedded warehouse's bound).
const MAX_ROWS: i64 = 10_000;

impl SinkKind for Redshift {
    fn name(&self) -> &'static str {
        "redshift"
    }

    fn accepts(&self, output: OutputKind) -> bool {
        matches!(output, OutputKind::Events | OutputKind::Aggregates)
    }

    fn keys(&self) -> &'static [&'static str] {
        &["url", "table", "dialect", "staging", "iam_role", "create_table", "region", "endpoint", "path_style"]
    }

    fn read(&self, table: &mut SinkTable<'_, '_, '_, '_>) -> SinkConfig {
        let url = table.string("url").unwrap_or_default();
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            table.problem(
                "url",
                "give the warehouse's url = \"postgres://user@host:5439/database\" (the password from PGPASSWORD)",
            );
        }
        let target = table.string("table").unwrap_or_else(|| "weir_warehouse".to_owned());
        table.claim("warehouse table", &target, "give each redshift sink its own table");
        let dialect = match table.choice("dialect", DIALECTS) {
            "postgres" => SqlDialect::Postgres,
            _ => SqlDialect::Redshift,
        };
        let create_table = table.boolean("create_table", true);
        let iam_role = table.string("iam_role");
        let staging = match table.location("staging", "") {
            StoreLocation::S3(s3) => Some(s3),
            StoreLocation::Directory(_) => None,
        };
        if dialect == SqlDialect::Redshift && (staging.is_none() || iam_role.is_none()) {
            table.problem(
                "staging",
                "Redshift loads each commit from S3: give staging = \"s3://bucket/prefix\" and the iam_role COPY reads it as (or dialect = \"postgres\")",
            );
        }
        SinkConfig::new(RedshiftSettings(SqlWarehouseSettings {
            url,
            table: target,
            dialect,
            staging,
            iam_role,
            create_table,
        }))
    }
}

/// The settings of a `redshift` sink: `url`, `table` (default `weir_warehouse`),
/// `dialect` (`redshift`, the default, or `postgres`), `staging` (an `s3://` URL, with
/// `region`, `endpoint`, `path_style`) and `iam_role` for Redshift, `create_table`
/// (default `true`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedshiftSettings(pub SqlWarehouseSettings);

impl SinkSettings for RedshiftSettings {
    fn sink_type(&self) -> SinkType {
        SinkType::of(&Redshift)
    }
}

impl Connector for Redshift {
    fn build(&self, name: &str, settings: &SinkConfig, context: &mut SinkContext<'_>) -> anyhow::Result<Arc<dyn Sink>> {
        let settings = settings_of::<RedshiftSettings>(name, settings)?;
        let staging = match &settings.0.staging {
            Some(location) => Some(crate::connector::open_store(name, &StoreLocation::S3(location.clone()))?),
            None => None,
        };
        let sink = Arc::new(SqlWarehouseSink::new(name, settings.0.clone(), staging));
        context.stores.add_aggregates_reader(name, Arc::new(SqlAggregates(sink.clone())));
        Ok(sink)
    }
}

/// The aggregates of a SQL warehouse.
#[derive(Debug)]
struct SqlAggregates(Arc<SqlWarehouseSink>);

impl AggregatesReader for SqlAggregates {
    fn aggregates<'a>(
        &'a self,
        stream: &'a str,
        key: Option<&'a str>,
        from: i64,
        to: i64,
    ) -> BoxFuture<'a, Result<Vec<serde_json::Value>, ReadError>> {
        Box::pin(async move { self.0.aggregates(stream, key, from, to, MAX_ROWS).await.map_err(ReadError::Failed) })
    }
}
