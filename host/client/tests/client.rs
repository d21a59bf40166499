//! The client against real TLS (rustls on the server side, a self-signed certificate
//! made by rcgen) and against servers that stall or answer too much.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use weir_client::{Client, ClientError, ClientOptions};

/// A certificate for `localhost` and `127.0.0.1`, and its PEM.
fn self_signed() -> (CertificateDer<'static>, PrivateKeyDer<'static>, String) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()));
    (certified.cert.der().clone(), key, certified.cert.pem())
}

/// Reads one request head and answers `response`; returns the head it read.
async fn answer_once<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, response: &[u8]) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.unwrap() == 0 {
            break;
        }
        head.push(byte[0]);
    }
    stream.write_all(response).await.unwrap();
    stream.shutdown().await.ok();
    String::from_utf8(head).unwrap()
}

/// An HTTPS server on a loopback port that answers one request; the head it read comes
/// back through the join handle.
async fn tls_server(
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
) -> (u16, tokio::task::JoinHandle<Option<String>>) {
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        // A client that refuses the certificate ends the handshake: no request then.
        let tls = acceptor.accept(tcp).await.ok()?;
        let body = r#"{"plugins":[]}"#;
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        Some(answer_once(tls, response.as_bytes()).await)
    });
    (port, handle)
}

#[tokio::test]
async fn https_with_the_servers_ca_gets_the_answer_and_sends_the_headers() {
    let (cert, key, pem) = self_signed();
    let ca = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca.path(), pem).unwrap();
    let (port, server) = tls_server(cert, key).await;

    let options = ClientOptions { extra_ca: Some(ca.path().to_owned()), ..ClientOptions::default() };
    let client = Client::new(&format!("https://localhost:{port}/"), options).unwrap();
    let response = client.send("GET", "/v1/admin/plugins", &[("Authorization", "Bearer t0ken")], b"").await.unwrap();

    assert_eq!((response.status, response.body.as_str()), (200, r#"{"plugins":[]}"#));
    assert_eq!(response.header("content-type"), Some("application/json"));
    let head = server.await.unwrap().expect("the handshake succeeded");
    assert!(head.starts_with("GET /v1/admin/plugins HTTP/1.1\r\n"), "{head}");
    assert!(head.to_ascii_lowercase().contains("authorization: bearer t0ken\r\n"), "{head}");
    assert!(head.to_ascii_lowercase().contains(&format!("host: localhost:{port}\r\n")), "{head}");
}

#[tokio::test]
async fn https_to_a_certificate_no_trusted_ca_signed_is_refused_and_says_why() {
    let (cert, key, _) = self_signed();
    let (port, server) = tls_server(cert, key).await;

    let client = Client::new(&format!("https://localhost:{port}"), ClientOptions::default()).unwrap();
    let err = client.send("GET", "/healthz", &[], b"").await.unwrap_err();

    assert!(matches!(err, ClientError::Transport(_)), "{err:?}");
    assert!(err.to_string().contains("certificate"), "{err}");
    assert_eq!(server.await.unwrap(), None, "no request was sent over the untrusted connection");
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let _stalling = tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop(socket);
    });
    let options = ClientOptions { timeout: Duration::from_millis(300), ..ClientOptions::default() };
    let client = Client::new(&format!("http://127.0.0.1:{port}"), options).unwrap();

    let started = Instant::now();
    let err = client.send("GET", "/healthz", &[], b"").await.unwrap_err();

    assert!(matches!(err, ClientError::TimedOut(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(30), "the timeout ended the request");
}

#[tokio::test]
async fn an_answer_larger_than_the_bound_is_an_error_not_kept() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        let body = vec![b'x'; 10_000];
        let mut response = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        response.extend_from_slice(&body);
        answer_once(socket, &response).await;
    });
    let options = ClientOptions { max_response_bytes: 1_000, ..ClientOptions::default() };
    let client = Client::new(&format!("http://127.0.0.1:{port}"), options).unwrap();

    let err = client.send("GET", "/metrics", &[], b"").await.unwrap_err();

    assert!(matches!(err, ClientError::TooLarge(1_000)), "{err:?}");
}

#[test]
fn only_http_and_https_base_urls_with_a_host_are_accepted() {
    for url in ["ftp://h", "127.0.0.1:8080", "http://", "https://h/v1", "http://user@h", "http://h:port"] {
        let err = Client::new(url, ClientOptions::default()).unwrap_err();
        assert!(matches!(err, ClientError::BadUrl { .. }), "{url}: {err:?}");
        assert!(err.to_string().contains("http://127.0.0.1:8080"), "{err}");
    }
    for url in ["http://127.0.0.1:8080", "https://weir.internal", "https://[::1]:8443/"] {
        let client = Client::new(url, ClientOptions::default()).unwrap();
        assert_eq!(client.base_url(), url.trim_end_matches('/'));
    }
}

#[test]
fn a_ca_file_without_certificates_is_refused_with_its_path() {
    let ca = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca.path(), "not a certificate").unwrap();
    let options = ClientOptions { extra_ca: Some(ca.path().to_owned()), ..ClientOptions::default() };
    let err = Client::new("https://h", options).unwrap_err();
    assert!(matches!(err, ClientError::BadCa { .. }), "{err:?}");
    assert!(err.to_string().contains(&ca.path().display().to_string()), "{err}");
}
