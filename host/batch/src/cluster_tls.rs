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

/// What a process is to the other processes of a cluster, which decides how its own
/// certificate is used and so how it is checked at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterRole {
    /// The planner of `--cluster` runs: it only connects, so its certificate only needs
    /// to be a client's (the servers check its CA and client use, not its name).
    Planner,
    /// The scheduler and the executors: servers that also connect to each other.
    Node,
}

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
    /// name [`CLUSTER_TLS_NAME`]) and its private key, all PEM, and checks them as the
    /// peers of a process of `role` will.
    ///
    /// # Errors
    /// A file that cannot be read or does not hold PEM, or a certificate a peer would
    /// refuse, named, with what to do.
    pub fn from_files(ca: &Path, cert: &Path, key: &Path, role: ClusterRole) -> Result<Self, BatchError> {
        let read = |what: &str, path: &Path| {
            let bytes = std::fs::read(path)
                .map_err(|e| BatchError::Invalid(format!("cluster TLS {what} {}: {e}", path.display())))?;
            if !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
                return Err(BatchError::Invalid(format!("cluster TLS {what} {} is not PEM", path.display())));
            }
            Ok(bytes)
        };
        let (ca_pem, cert_pem, key_pem) = (read("CA certificate", ca)?, read("certificate", cert)?, read("key", key)?);
        check_certificate(&ca_pem, &cert_pem, &key_pem, role).map_err(|problem| {
            BatchError::Invalid(format!(
                "cluster TLS certificate {} (CA {}, key {}): {problem}",
                cert.display(),
                ca.display(),
                key.display()
            ))
        })?;
        let ca_certificate = Certificate::from_pem(ca_pem);
        let identity = Identity::from_pem(cert_pem, key_pem);
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

/// Checks at start what a peer would otherwise refuse at its first connection, with what
/// to do about it: the key is the certificate's, and the certificate is signed by the CA,
/// valid now and usable as a client's; for a [`ClusterRole::Node`] also as a server's,
/// for the name [`CLUSTER_TLS_NAME`]. The same checks as the peers' (rustls's WebPKI
/// verifiers, as tonic's servers and clients run them, with the CA file read as they
/// read it: certificates that cannot be trust anchors are skipped).
fn check_certificate(ca_pem: &[u8], cert_pem: &[u8], key_pem: &[u8], role: ClusterRole) -> Result<(), String> {
    use rustls::client::danger::ServerCertVerifier as _;
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    let cas = CertificateDer::pem_slice_iter(ca_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the CA file does not hold PEM certificates: {e}"))?;
    roots.add_parsable_certificates(cas);
    if roots.is_empty() {
        return Err("the CA file holds no certificate usable as a CA".into());
    }
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the certificate file does not hold PEM certificates: {e}"))?;
    let Some((end_entity, intermediates)) = chain.split_first() else {
        return Err("the certificate file holds no certificate".into());
    };
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| format!("the key file holds no private key: {e}"))?;
    rustls::sign::CertifiedKey::from_der(chain.clone(), key, &provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => "the key is not the certificate's key".to_owned(),
        other => format!("the key cannot be used: {other}"),
    })?;
    let roots = Arc::new(roots);
    let now = UnixTime::now();
    if role == ClusterRole::Node {
        let name = ServerName::try_from(CLUSTER_TLS_NAME).map_err(|e| e.to_string())?;
        let as_server = rustls::client::WebPkiServerVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| e.to_string())?;
        as_server
            .verify_server_cert(end_entity, intermediates, &name, &[], now)
            .map_err(|e| explain(&e, "a server"))?;
    }
    let as_client = rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider)
        .build()
        .map_err(|e| e.to_string())?;
    as_client.verify_client_cert(end_entity, intermediates, now).map_err(|e| explain(&e, "a client"))?;
    Ok(())
}

/// A peer's refusal of the certificate `as_what` (a server or a client), with what to do.
fn explain(error: &rustls::Error, as_what: &str) -> String {
    use rustls::CertificateError as C;
    let hint = match error {
        rustls::Error::InvalidCertificate(problem) => match problem {
            C::UnknownIssuer | C::BadSignature => "it is not signed by this CA (or the certificate file leaves out \
                 the intermediate certificates up to it): every process of a cluster needs a certificate signed by \
                 the cluster's CA"
                .to_owned(),
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                format!("give it the subject alternative name DNS:{CLUSTER_TLS_NAME}")
            }
            C::Expired | C::ExpiredContext { .. } | C::NotValidYet | C::NotValidYetContext { .. } => {
                "issue a certificate valid now".to_owned()
            }
            C::InvalidPurpose | C::InvalidPurposeContext { .. } => "each process is both a server and a client: \
                 give it the extended key usages serverAuth and clientAuth, or none"
                .to_owned(),
            _ => String::new(),
        },
        _ => String::new(),
    };
    let hint = if hint.is_empty() { hint } else { format!("; {hint}") };
    format!("a peer would refuse it as {as_what}'s: {error}{hint} (docs/batch.md shows how to make one)")
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
        let err = ClusterTls::from_files(&missing, &junk, &junk, ClusterRole::Node).unwrap_err().to_string();
        assert!(err.contains("CA certificate") && err.contains("missing.pem"), "{err}");
        let err = ClusterTls::from_files(&junk, &junk, &junk, ClusterRole::Node).unwrap_err().to_string();
        assert!(err.contains("junk.pem is not PEM"), "{err}");
    }

    /// A CA and a certificate it signed for `names`, as PEM files in `dir`: (ca, cert, key).
    fn certified(dir: &Path, names: &[&str]) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
        certified_with(dir, names, |_| {})
    }

    /// [`certified`], the certificate's parameters changed by `change` before it is signed.
    fn certified_with(
        dir: &Path,
        names: &[&str],
        change: impl FnOnce(&mut rcgen::CertificateParams),
    ) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        std::fs::create_dir_all(dir).unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        change(&mut params);
        let cert = params.signed_by(&key, &Issuer::new(ca_params, ca_key)).unwrap();
        let paths = (dir.join("ca.pem"), dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&paths.0, ca.pem()).unwrap();
        std::fs::write(&paths.1, cert.pem()).unwrap();
        std::fs::write(&paths.2, key.serialize_pem()).unwrap();
        paths
    }

    /// What `from_files` says of these files (it must refuse them).
    fn refusal(ca: &Path, cert: &Path, key: &Path) -> String {
        ClusterTls::from_files(ca, cert, key, ClusterRole::Node).unwrap_err().to_string()
    }

    #[test]
    fn a_certificate_its_peers_would_refuse_is_refused_at_start_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let (ca, cert, key) = certified(&dir.path().join("good"), &[CLUSTER_TLS_NAME]);
        assert!(ClusterTls::from_files(&ca, &cert, &key, ClusterRole::Node).is_ok());

        let (other_ca, other_cert, other_key) = certified(&dir.path().join("other"), &[CLUSTER_TLS_NAME]);
        let err = refusal(&ca, &other_cert, &other_key);
        assert!(err.contains("not signed by this CA") && err.contains("other/cert.pem"), "{err}");
        let err = refusal(&other_ca, &other_cert, &key);
        assert!(err.contains("the key is not the certificate's key") && err.contains("good/key.pem"), "{err}");

        // A planner only connects: its certificate needs no name and no server use.
        let (ca, cert, key) = certified(&dir.path().join("named"), &["scheduler.internal"]);
        let err = refusal(&ca, &cert, &key);
        assert!(err.contains("DNS:weir-batch") && err.contains("as a server's"), "{err}");
        assert!(ClusterTls::from_files(&ca, &cert, &key, ClusterRole::Planner).is_ok());
        let (ca, cert, key) = certified_with(&dir.path().join("client-only"), &["planner"], |params| {
            params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        });
        assert!(refusal(&ca, &cert, &key).contains("as a server's"));
        assert!(ClusterTls::from_files(&ca, &cert, &key, ClusterRole::Planner).is_ok());

        let (ca, cert, key) = certified_with(&dir.path().join("server-only"), &[CLUSTER_TLS_NAME], |params| {
            params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        });
        let err = refusal(&ca, &cert, &key);
        assert!(err.contains("as a client's") && err.contains("serverAuth and clientAuth"), "{err}");
        let planner = ClusterTls::from_files(&ca, &cert, &key, ClusterRole::Planner).unwrap_err().to_string();
        assert!(planner.contains("as a client's"), "{planner}");

        // A CA file with a certificate that cannot be a trust anchor beside the CA, read
        // as tonic reads it: the CA is still trusted.
        let (ca, cert, key) = certified(&dir.path().join("bundle"), &[CLUSTER_TLS_NAME]);
        let bundle = dir.path().join("bundle/bundle.pem");
        let junk_certificate = "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n";
        std::fs::write(&bundle, format!("{junk_certificate}{}", std::fs::read_to_string(&ca).unwrap())).unwrap();
        assert!(ClusterTls::from_files(&bundle, &cert, &key, ClusterRole::Node).is_ok());

        let (ca, cert, key) = certified_with(&dir.path().join("expired"), &[CLUSTER_TLS_NAME], |params| {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        });
        let err = refusal(&ca, &cert, &key);
        assert!(err.contains("valid now"), "{err}");
    }

    #[test]
    fn the_override_turns_ballistas_http_addresses_into_https() {
        let dir = tempfile::tempdir().unwrap();
        let (ca, cert, key) = certified(dir.path(), &[CLUSTER_TLS_NAME]);
        let tls = ClusterTls::from_files(&ca, &cert, &key, ClusterRole::Node).unwrap();
        let endpoint = (tls.endpoint_override())(Endpoint::from_static("http://10.0.0.7:50051")).unwrap();
        assert_eq!(endpoint.uri().to_string(), "https://10.0.0.7:50051/");
    }

    #[test]
    fn a_key_that_is_not_a_key_is_refused_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let (ca, cert, _) = certified(dir.path(), &[CLUSTER_TLS_NAME]);
        let err = ClusterTls::from_files(&ca, &cert, &cert, ClusterRole::Node).unwrap_err().to_string();
        assert!(err.contains("holds no private key") && err.contains("cert.pem"), "{err}");
    }
}
