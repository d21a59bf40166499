//! Mutual TLS on every leg of a Ballista cluster: the planner, the scheduler and the
//! executors each hold a certificate signed by the cluster's CA and accept only peers that
//! present one. Without it anyone who reaches a port can submit plans to the scheduler,
//! register as an executor or read shuffle data, so a cluster without TLS belongs on a
//! trusted network only.
//!
//! Ballista 55 builds `http://` addresses and has no hook on its own servers but the
//! executor's Flight service, so:
//! - every outgoing connection goes through an endpoint override that rewrites the scheme
//!   to `https` and adds the client certificate ([`ClusterTls::endpoint_override`]);
//! - the scheduler's gRPC service is served by weir with a server certificate that
//!   requires client certificates (`serve_scheduler`), and the executors' Flight service
//!   likewise (`serve_executor`);
//! - scheduling is pull-based: executors poll the scheduler, which then never connects
//!   to an executor's gRPC service (which has no hook).
//!
//! Every certificate is checked against the name [`CLUSTER_TLS_NAME`], not the peer's
//! address, so executors reached by IP need no certificate of their own name.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ballista_core::extension::EndpointOverrideFn;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity, ServerTlsConfig, Uri};

use crate::error::BatchError;

/// The DNS name (subject alternative name) every certificate of a cluster carries.
pub const CLUSTER_TLS_NAME: &str = "weir-batch";

/// The CA of a cluster and this process's certificate and key, PEM.
#[derive(Clone)]
pub struct ClusterTls {
    ca: Certificate,
    identity: Identity,
}

impl std::fmt::Debug for ClusterTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterTls").finish_non_exhaustive()
    }
}

impl ClusterTls {
    /// Reads the CA certificate, this process's certificate (signed by the CA, for the
    /// name [`CLUSTER_TLS_NAME`]) and its private key, all PEM.
    ///
    /// # Errors
    /// A file that cannot be read or does not hold PEM, named.
    pub fn from_files(ca: &Path, cert: &Path, key: &Path) -> Result<Self, BatchError> {
        let read = |what: &str, path: &Path| {
            let bytes = std::fs::read(path)
                .map_err(|e| BatchError::Invalid(format!("cluster TLS {what} {}: {e}", path.display())))?;
            if !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
                return Err(BatchError::Invalid(format!("cluster TLS {what} {} is not PEM", path.display())));
            }
            Ok(bytes)
        };
        let ca_certificate = Certificate::from_pem(read("CA certificate", ca)?);
        let identity = Identity::from_pem(read("certificate", cert)?, read("key", key)?);
        let tls = Self { ca: ca_certificate, identity };
        // Parsed now, so that a bad file stops the process at start with its names
        // rather than failing every connection later.
        let named = |e: &dyn std::fmt::Display| {
            BatchError::Invalid(format!(
                "cluster TLS files {}, {} and {}: {e}",
                ca.display(),
                cert.display(),
                key.display()
            ))
        };
        (tls.endpoint_override())(Endpoint::from_static("http://127.0.0.1:1")).map_err(|e| named(&e))?;
        tonic::transport::Server::builder().tls_config(tls.server_config()).map_err(|e| named(&e))?;
        Ok(tls)
    }

    /// The override for every connection Ballista opens: `https` with this process's
    /// certificate, the peer checked against the CA under [`CLUSTER_TLS_NAME`]. tonic
    /// cannot change an endpoint's address, so the endpoint is built again, with
    /// Ballista's default client settings (timeouts, keep-alives, the flow-control
    /// windows of shuffle reads).
    pub(crate) fn endpoint_override(&self) -> EndpointOverrideFn {
        use ballista_core::utils::{GrpcClientConfig, create_grpc_client_endpoint};
        let tls = ClientTlsConfig::new()
            .ca_certificate(self.ca.clone())
            .identity(self.identity.clone())
            .domain_name(CLUSTER_TLS_NAME);
        Arc::new(move |endpoint: Endpoint| {
            let uri = endpoint.uri();
            let authority = uri.authority().ok_or_else(|| format!("cluster address {uri} has no host"))?;
            let path = uri.path_and_query().map_or("", |p| p.as_str());
            let https: Uri = format!("https://{authority}{path}").parse()?;
            Ok(create_grpc_client_endpoint(https, Some(&GrpcClientConfig::default()))?.tls_config(tls.clone())?)
        })
    }

    /// A server's TLS: this process's certificate, and client certificates required and
    /// checked against the CA.
    pub(crate) fn server_config(&self) -> ServerTlsConfig {
        ServerTlsConfig::new()
            .identity(self.identity.clone())
            .client_ca_root(self.ca.clone())
            // A peer that opens a connection and never finishes its handshake is dropped.
            .timeout(Duration::from_secs(10))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_non_pem_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, b"not a certificate").unwrap();
        let missing = dir.path().join("missing.pem");
        let err = ClusterTls::from_files(&missing, &junk, &junk).unwrap_err().to_string();
        assert!(err.contains("CA certificate") && err.contains("missing.pem"), "{err}");
        let err = ClusterTls::from_files(&junk, &junk, &junk).unwrap_err().to_string();
        assert!(err.contains("junk.pem is not PEM"), "{err}");
    }

    /// A CA and a certificate it signed for `names`, as PEM files in `dir`: (ca, cert, key).
    fn certified(dir: &Path, names: &[&str]) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let cert = CertificateParams::new(names).unwrap().signed_by(&key, &Issuer::new(ca_params, ca_key)).unwrap();
        let paths = (dir.join("ca.pem"), dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&paths.0, ca.pem()).unwrap();
        std::fs::write(&paths.1, cert.pem()).unwrap();
        std::fs::write(&paths.2, key.serialize_pem()).unwrap();
        paths
    }

    #[test]
    fn the_override_turns_ballistas_http_addresses_into_https() {
        let dir = tempfile::tempdir().unwrap();
        let (ca, cert, key) = certified(dir.path(), &[CLUSTER_TLS_NAME]);
        let tls = ClusterTls::from_files(&ca, &cert, &key).unwrap();
        let endpoint = (tls.endpoint_override())(Endpoint::from_static("http://10.0.0.7:50051")).unwrap();
        assert_eq!(endpoint.uri().to_string(), "https://10.0.0.7:50051/");
    }

    #[test]
    fn a_key_that_is_not_a_key_is_refused_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let (ca, cert, _) = certified(dir.path(), &[CLUSTER_TLS_NAME]);
        let err = ClusterTls::from_files(&ca, &cert, &cert).unwrap_err().to_string();
        assert!(err.contains("cluster TLS files") && err.contains("cert.pem"), "{err}");
    }
}
