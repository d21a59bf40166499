//! weir on AWS: [`KinesisLog`], Kinesis as the stream log, with each consumer's
//! checkpoints kept in DynamoDB ([`DynamoCheckpoints`]); S3 as the lake's object store
//! ([`s3_store`]); the raw archive through Firehose ([`FirehoseSink`]); the plugin
//! registry a fleet shares ([`SharedRegistry`]); serving tables in DynamoDB
//! ([`DynamoServingSink`], [`DynamoServingTable`]); the warehouse in Redshift or
//! PostgreSQL ([`SqlWarehouseSink`]); the search index in Elasticsearch
//! ([`ElasticIndex`]). This is the only crate that
//! builds the AWS SDKs, so the rest of the workspace compiles without them.
//!
//! Clients are made by [`AwsSettings::clients`] the way AWS users expect: the standard
//! credential chain (environment, profile, web identity, ECS, instance metadata) and
//! region, with an endpoint per service that tests point at local servers (kinesalite,
//! moto) and production leaves to AWS.

mod checkpoints;
mod elastic;
mod firehose;
mod kinesis_log;
mod leases;
mod reference;
mod registry;
mod s3;
mod serving_table;
mod sql_warehouse;
mod tables;

pub use checkpoints::DynamoCheckpoints;
pub use elastic::{
    API_KEY_ENV, ElasticAnswer, ElasticIndex, ElasticSearchError, ElasticSettings, MAX_BULK_BYTES, MAX_BULK_DOCUMENTS,
    PASSWORD_ENV, USERNAME_ENV, query_dsl,
};
pub use firehose::{FirehoseSettings, FirehoseSink, MAX_BATCH_BYTES, MAX_BATCH_RECORDS, MAX_RECORD_BYTES};
pub use kinesis_log::{KinesisLog, KinesisOptions};
pub use leases::DEFAULT_LEASE_TIME;
pub use reference::{DynamoReferenceTable, MAX_REFERENCE_OBJECT_BYTES, S3ReferenceTable};
pub use registry::SharedRegistry;
pub use s3::s3_store;
pub use serving_table::{
    CONCURRENT_PUTS, DynamoServingSettings, DynamoServingSink, DynamoServingTable, DynamoWriteMode, MAX_BATCH_GET_KEYS,
    MAX_BATCH_WRITE_ITEMS, MAX_ITEM_BYTES, MAX_KEY_BYTES,
};
pub use sql_warehouse::{
    IndexedRows, MergePlan, REDSHIFT_MAX_VARCHAR, SqlDialect, SqlWarehouseSettings, SqlWarehouseSink, StagedCommit,
    WarehouseRow, create_table_sql, csv_of, manifest_of, parquet_of, rows_of,
};
pub use weir_config::KinesisLogSettings;

use aws_config::{BehaviorVersion, Region};

/// Where and as whom to reach AWS.
#[derive(Debug, Clone, Default)]
pub struct AwsSettings {
    /// The region; `None`: the standard chain's (`AWS_REGION`, the profile…).
    pub region: Option<String>,
    /// Kinesis' endpoint, e.g. `http://127.0.0.1:4567`; `None`: AWS's for the region.
    pub kinesis_endpoint: Option<String>,
    /// DynamoDB's endpoint; `None`: AWS's for the region.
    pub dynamodb_endpoint: Option<String>,
    /// Fixed credentials (access key id, secret) instead of the standard chain: for
    /// local servers, which accept any.
    pub static_credentials: Option<(String, String)>,
}

/// The clients of [`AwsSettings::clients`].
#[derive(Debug, Clone)]
pub struct AwsClients {
    pub kinesis: aws_sdk_kinesis::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
}

impl AwsSettings {
    /// Clients for Kinesis and DynamoDB, over HTTPS with rustls (ring) and the system's
    /// root certificates, or plain HTTP for `http://` endpoints.
    pub async fn clients(&self) -> AwsClients {
        let sdk = sdk_config(self.region.as_deref(), self.static_credentials.as_ref()).await;
        let mut kinesis = aws_sdk_kinesis::config::Builder::from(&sdk);
        if let Some(endpoint) = &self.kinesis_endpoint {
            kinesis = kinesis.endpoint_url(endpoint);
        }
        let mut dynamodb = aws_sdk_dynamodb::config::Builder::from(&sdk);
        if let Some(endpoint) = &self.dynamodb_endpoint {
            dynamodb = dynamodb.endpoint_url(endpoint);
        }
        AwsClients {
            kinesis: aws_sdk_kinesis::Client::from_conf(kinesis.build()),
            dynamodb: aws_sdk_dynamodb::Client::from_conf(dynamodb.build()),
        }
    }
}

/// The AWS SDK's configuration: HTTPS with rustls (ring) and the system's root
/// certificates, or plain HTTP for `http://` endpoints; `region` else the standard chain's;
/// `static_credentials` else the standard credential chain.
pub(crate) async fn sdk_config(
    region: Option<&str>,
    static_credentials: Option<&(String, String)>,
) -> aws_config::SdkConfig {
    use aws_smithy_http_client::{Builder, tls};
    let http = Builder::new().tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring)).build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http);
    if let Some(region) = region {
        loader = loader.region(Region::new(region.to_owned()));
    }
    if let Some((key, secret)) = static_credentials {
        loader = loader.credentials_provider(aws_credential_types::Credentials::new(
            key.clone(),
            secret.clone(),
            None,
            None,
            "weir-static",
        ));
    }
    loader.load().await
}

/// The Kinesis log `[log] type = "kinesis"` describes: clients from the standard AWS
/// chain and the section's region and endpoints, and the checkpoint table (created when
/// missing).
///
/// # Errors
/// DynamoDB refused or could not be reached; the table has another key.
pub async fn open_kinesis_log(settings: &KinesisLogSettings) -> Result<KinesisLog, weir_log::LogError> {
    let aws = AwsSettings {
        region: settings.region.clone(),
        kinesis_endpoint: settings.endpoint.clone(),
        dynamodb_endpoint: settings.dynamodb_endpoint.clone(),
        static_credentials: None,
    };
    let clients = aws.clients().await;
    let checkpoints = DynamoCheckpoints::open(clients.dynamodb, &settings.checkpoint_table).await?;
    let options = KinesisOptions {
        stream_prefix: settings.stream_prefix.clone(),
        content_type: settings.content_type.clone(),
        ..KinesisOptions::default()
    };
    Ok(KinesisLog::new(clients.kinesis, checkpoints, options))
}

/// Jittered exponential backoff: a wait between half and all of `base * 2^attempt`,
/// at most `cap`, so retrying clients do not fall into lock-step.
pub(crate) fn backoff(attempt: u32, base: std::time::Duration, cap: std::time::Duration) -> std::time::Duration {
    let full = base.saturating_mul(1 << attempt.min(16)).min(cap);
    full.mul_f64(0.5 + fastrand::f64() / 2.0)
}
