//! weir's HTTP client: `http://` and `https://` base URLs (TLS by rustls, Mozilla's root
//! certificates plus an optional private CA), a connect timeout and a whole-request
//! timeout, and a bound on the response it reads. The CLI's admin commands, the demo and
//! the end-to-end tests all send their requests through it.
//!
//! Built on hyper's client (the server side is hyper too, through axum): this crate
//! writes no HTTP itself.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::Request;
use hyper::header::{CONTENT_LENGTH, HOST, HeaderName, HeaderValue};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::pem::PemObject as _;

/// A response: status, headers (lowercased names) and body.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    /// The first header named `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Why a request got no response.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The base URL is not `http://host[:port]` or `https://host[:port]`.
    #[error("{url:?} is not an http:// or https:// address ({why}); give one like http://127.0.0.1:8080")]
    BadUrl { url: String, why: String },
    /// The private CA file cannot be read or holds no certificate.
    #[error("CA certificates {path}: {why}")]
    BadCa { path: PathBuf, why: String },
    /// A header name or value that HTTP does not allow.
    #[error("header {name:?}: {why}")]
    BadHeader { name: String, why: String },
    /// No connection, a TLS failure (e.g. a certificate no trusted CA signed), or the
    /// server broke the protocol.
    #[error("{0}")]
    Transport(String),
    /// The whole request took longer than the timeout.
    #[error("no complete answer within {0:?}")]
    TimedOut(Duration),
    /// The response body is larger than [`ClientOptions::max_response_bytes`].
    #[error("the answer is larger than {0} bytes")]
    TooLarge(usize),
}

impl From<ClientError> for std::io::Error {
    fn from(err: ClientError) -> Self {
        match err {
            ClientError::TimedOut(_) => std::io::Error::new(std::io::ErrorKind::TimedOut, err.to_string()),
            other => std::io::Error::other(other.to_string()),
        }
    }
}

/// How a [`Client`] connects.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Time to establish the TCP connection.
    pub connect_timeout: Duration,
    /// Time for the whole request: connect, TLS, send, and read the whole answer.
    pub timeout: Duration,
    /// A PEM file of CA certificates trusted besides the public roots (a private CA, or
    /// the admin API's self-signed certificate).
    pub extra_ca: Option<PathBuf>,
    /// The most response body read; a larger answer is an error, never kept.
    pub max_response_bytes: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(120),
            extra_ca: None,
            max_response_bytes: 256 << 20,
        }
    }
}

/// A client for one base URL (`http://127.0.0.1:8080`, `https://weir.internal`).
#[derive(Clone)]
pub struct Client {
    inner: HyperClient<HttpsConnector<HttpConnector>, Full<Bytes>>,
    scheme: &'static str,
    authority: String,
    options: ClientOptions,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Client({}://{})", self.scheme, self.authority)
    }
}

impl Client {
    /// A client for `base_url`: `http://` or `https://`, a host and an optional port, and
    /// nothing after them but an optional `/`.
    ///
    /// # Errors
    /// [`ClientError::BadUrl`] for anything else, [`ClientError::BadCa`] when
    /// `options.extra_ca` cannot be used.
    pub fn new(base_url: &str, options: ClientOptions) -> Result<Self, ClientError> {
        let bad = |why: &str| ClientError::BadUrl { url: base_url.to_owned(), why: why.to_owned() };
        let (scheme, rest) = if let Some(rest) = base_url.strip_prefix("http://") {
            ("http", rest)
        } else if let Some(rest) = base_url.strip_prefix("https://") {
            ("https", rest)
        } else {
            return Err(bad("the scheme must be http or https"));
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.is_empty() {
            return Err(bad("no host"));
        }
        if authority.contains(['/', '?', '#', '@', ' ']) {
            return Err(bad("only a host and a port may follow the scheme"));
        }
        authority.parse::<hyper::http::uri::Authority>().map_err(|e| bad(&e.to_string()))?;
        let after_host = authority.rsplit_once(']').map_or(authority, |(_, rest)| rest);
        if let Some((_, port)) = after_host.rsplit_once(':')
            && port.parse::<u16>().is_err()
        {
            return Err(bad(&format!("port {port:?} is not a number from 0 to 65535")));
        }
        let tls = match &options.extra_ca {
            None => default_tls(),
            Some(path) => Arc::new(tls_config(Some(path))?),
        };
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(options.connect_timeout));
        http.set_nodelay(true);
        http.enforce_http(false);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*tls).clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let inner = HyperClient::builder(TokioExecutor::new()).build(https);
        Ok(Self { inner, scheme, authority: authority.to_owned(), options })
    }

    /// The base URL, e.g. `https://weir.internal:8443`.
    pub fn base_url(&self) -> String {
        format!("{}://{}", self.scheme, self.authority)
    }

    /// Sends `method path` with `headers` and `body`, and reads the whole answer.
    ///
    /// # Errors
    /// See [`ClientError`]; an answer with any status is `Ok`.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<HttpResponse, ClientError> {
        let timeout = self.options.timeout;
        tokio::time::timeout(timeout, self.send_untimed(method, path, headers, body))
            .await
            .map_err(|_| ClientError::TimedOut(timeout))?
    }

    async fn send_untimed(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<HttpResponse, ClientError> {
        let uri = format!("{}://{}{path}", self.scheme, self.authority);
        let mut request = Request::builder()
            .method(method)
            .uri(&uri)
            .body(Full::new(Bytes::copy_from_slice(body)))
            .map_err(|e| ClientError::BadUrl { url: uri.clone(), why: e.to_string() })?;
        let request_headers = request.headers_mut();
        request_headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        request_headers.insert(
            HOST,
            HeaderValue::from_str(&self.authority).map_err(|e| ClientError::BadUrl { url: uri, why: e.to_string() })?,
        );
        for (name, value) in headers {
            let bad = |why: String| ClientError::BadHeader { name: (*name).to_owned(), why };
            let header_name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| bad(e.to_string()))?;
            let header_value = HeaderValue::from_bytes(value.as_bytes()).map_err(|e| bad(e.to_string()))?;
            request_headers.append(header_name, header_value);
        }
        let response = self.inner.request(request).await.map_err(|e| ClientError::Transport(describe(&e)))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        let limit = self.options.max_response_bytes;
        let collected = Limited::new(response.into_body(), limit).collect().await.map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                ClientError::TooLarge(limit)
            } else {
                ClientError::Transport(format!("reading the answer failed: {e}"))
            }
        })?;
        let body = String::from_utf8_lossy(&collected.to_bytes()).into_owned();
        Ok(HttpResponse { status, headers, body })
    }
}

/// An error with its causes, `outer: inner: innermost`: hyper's own message alone
/// ("client error (Connect)") does not say that a certificate was refused.
fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The TLS configuration with only the public roots, built once per process.
fn default_tls() -> Arc<rustls::ClientConfig> {
    static DEFAULT: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    DEFAULT.get_or_init(|| Arc::new(tls_config(None).expect("no CA file to read"))).clone()
}

fn tls_config(extra_ca: Option<&Path>) -> Result<rustls::ClientConfig, ClientError> {
    let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    if let Some(path) = extra_ca {
        let bad = |why: String| ClientError::BadCa { path: path.to_owned(), why };
        let pem = std::fs::read(path).map_err(|e| bad(format!("cannot be read: {e}")))?;
        let mut added = 0;
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| bad(format!("not PEM certificates: {e}")))?;
            roots.add(cert).map_err(|e| bad(format!("a certificate cannot be used: {e}")))?;
            added += 1;
        }
        if added == 0 {
            return Err(bad("holds no PEM certificate (-----BEGIN CERTIFICATE-----)".to_owned()));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Transport(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Sends one plain-HTTP request to `addr` and reads the whole response.
///
/// # Errors
/// Connection or protocol errors.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> std::io::Result<HttpResponse> {
    let headers: Vec<(&str, &str)> = content_type.map(|ct| ("Content-Type", ct)).into_iter().collect();
    request_with_headers(addr, method, path, &headers, body).await
}

/// Sends one plain-HTTP request with extra `headers` to `addr` and reads the whole
/// response.
///
/// # Errors
/// Connection or protocol errors.
pub async fn request_with_headers(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<HttpResponse> {
    let client = Client::new(&format!("http://{addr}"), ClientOptions::default())?;
    Ok(client.send(method, path, headers, body).await?)
}

/// `text` percent-encoded for a URL path segment or query value (every byte but
/// RFC 3986's unreserved characters).
pub fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
