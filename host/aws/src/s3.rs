//! S3 as an object store for the lake, the dead letters and the warehouse:
//! `object_store`'s S3 client, signing with credentials from the standard AWS chain.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use object_store::ObjectStore;
use object_store::aws::{AmazonS3Builder, AwsCredential};
use object_store::prefix::PrefixStore;
use tokio::sync::Mutex;
use weir_config::S3Location;

/// The object store of `location`: its bucket, under its prefix, in its region (else
/// `AWS_REGION`, `AWS_DEFAULT_REGION`, `us-east-1`), at its endpoint (else AWS's),
/// path-style when asked. Requests are signed with `static_credentials` when given (local
/// servers accept any), else with the standard AWS credential chain, resolved on the
/// first request and refreshed before the credentials expire.
///
/// # Errors
/// `object_store` refused the settings.
pub fn s3_store(
    location: &S3Location,
    static_credentials: Option<(String, String)>,
) -> Result<Arc<dyn ObjectStore>, object_store::Error> {
    // ring serves reqwest (object_store's HTTP client), the AWS SDK and the PostgreSQL
    // client, so aws-lc (a C build) stays out; installing it twice is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let region = location
        .region
        .clone()
        .or_else(|| std::env::var("AWS_REGION").ok())
        .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
        .unwrap_or_else(|| "us-east-1".to_owned());
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(&location.bucket)
        .with_region(region)
        .with_virtual_hosted_style_request(!location.path_style)
        .with_credentials(Arc::new(ChainCredentials::new(static_credentials)));
    if let Some(endpoint) = &location.endpoint {
        // object_store takes a virtual-hosted endpoint as given: the bucket goes into
        // the host name here (`https://bucket.host`), as the documentation promises.
        let endpoint = match endpoint.split_once("://") {
            Some((scheme, host)) if !location.path_style => format!("{scheme}://{}.{host}", location.bucket),
            _ => endpoint.clone(),
        };
        builder = builder.with_allow_http(endpoint.starts_with("http://")).with_endpoint(endpoint);
    }
    let store: Arc<dyn ObjectStore> = Arc::new(builder.build()?);
    if location.prefix.is_empty() { Ok(store) } else { Ok(Arc::new(PrefixStore::new(store, location.prefix.as_str()))) }
}

/// How long before they expire credentials are fetched again.
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(300);

/// `object_store`'s credential provider over the AWS SDK's default chain (environment,
/// profile, web identity, ECS, instance metadata), cached until shortly before expiry so
/// that signing a request does not call the chain each time.
#[derive(Debug)]
struct ChainCredentials {
    fixed: Option<Arc<AwsCredential>>,
    state: Mutex<ChainState>,
}

#[derive(Debug, Default)]
struct ChainState {
    provider: Option<SharedCredentialsProvider>,
    cached: Option<(Arc<AwsCredential>, Option<SystemTime>)>,
}

impl ChainCredentials {
    fn new(static_credentials: Option<(String, String)>) -> Self {
        let fixed =
            static_credentials.map(|(key_id, secret_key)| Arc::new(AwsCredential { key_id, secret_key, token: None }));
        Self { fixed, state: Mutex::new(ChainState::default()) }
    }
}

#[async_trait::async_trait]
impl object_store::CredentialProvider for ChainCredentials {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        if let Some(fixed) = &self.fixed {
            return Ok(fixed.clone());
        }
        let mut state = self.state.lock().await;
        if let Some((credential, expiry)) = &state.cached
            && expiry.is_none_or(|at| SystemTime::now() + REFRESH_BEFORE_EXPIRY < at)
        {
            return Ok(credential.clone());
        }
        if state.provider.is_none() {
            let sdk = crate::sdk_config(None, None).await;
            state.provider = sdk.credentials_provider();
        }
        let provider = state.provider.clone().ok_or_else(|| no_credentials("the AWS credential chain is empty"))?;
        let credentials = provider.provide_credentials().await.map_err(|e| no_credentials(&e.to_string()))?;
        let credential = Arc::new(AwsCredential {
            key_id: credentials.access_key_id().to_owned(),
            secret_key: credentials.secret_access_key().to_owned(),
            token: credentials.session_token().map(str::to_owned),
        });
        state.cached = Some((credential.clone(), credentials.expiry()));
        Ok(credential)
    }
}

fn no_credentials(why: &str) -> object_store::Error {
    object_store::Error::Generic {
        store: "S3",
        source: format!(
            "no AWS credentials: {why}; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or give the host a role"
        )
        .into(),
    }
}
