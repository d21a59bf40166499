//! A Ballista cluster of `weir` processes on loopback, as `weir batch run --cluster`
//! uses one: a `weir batch scheduler` and executors (`weir batch executor`) of one task
//! each, started with a pipeline's configuration. The end-to-end tests and the batch
//! benchmark start it the same way.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::weir_bin;

/// The cluster's processes, killed when it is dropped.
#[derive(Debug)]
pub struct LocalCluster {
    children: Vec<std::process::Child>,
    logs: Vec<PathBuf>,
    /// `df://127.0.0.1:PORT`, the scheduler, for `--cluster`.
    pub url: String,
    /// Each executor's work directory, where it keeps the output of its tasks.
    pub work_dirs: Vec<PathBuf>,
}

impl LocalCluster {
    /// A scheduler and `executors` executors started with `config`, their compile cache
    /// in `cache`, their logs and work directories under `dir`; returns once each listens
    /// (at most 30 s each).
    ///
    /// # Errors
    /// A process that cannot start, exits or does not listen in time, with its log.
    pub fn start(dir: &Path, config: &Path, cache: &Path, executors: usize) -> Result<Self, String> {
        Self::start_with_tls(dir, config, cache, executors, None)
    }

    /// [`LocalCluster::start`], every process with `tls` when given.
    ///
    /// # Errors
    /// As [`LocalCluster::start`].
    pub fn start_with_tls(
        dir: &Path,
        config: &Path,
        cache: &Path,
        executors: usize,
        tls: Option<&ClusterCerts>,
    ) -> Result<Self, String> {
        let mut cluster = Self { children: Vec::new(), logs: Vec::new(), url: String::new(), work_dirs: Vec::new() };
        let tls_args = tls.map(ClusterCerts::args).unwrap_or_default();
        let tls_args: Vec<&str> = tls_args.iter().map(String::as_str).collect();
        let scheduler = format!("127.0.0.1:{}", free_port_pair());
        let args = [&["batch", "scheduler", "--bind", &scheduler][..], &tls_args].concat();
        cluster.spawn(dir, cache, &args, "scheduler")?;
        let config = config.display().to_string();
        for n in 0..executors {
            let port = free_port_pair();
            let work = dir.join(format!("executor-{n}"));
            std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
            let (bind, work_dir) = (format!("127.0.0.1:{port}"), work.display().to_string());
            let args = [
                "batch",
                "executor",
                "--config",
                &config,
                "--scheduler",
                &scheduler,
                "--bind",
                &bind,
                "--tasks",
                "1",
                "--work-dir",
                &work_dir,
            ];
            let args = [&args[..], &tls_args].concat();
            cluster.spawn(dir, cache, &args, &format!("executor-{n}"))?;
            cluster.work_dirs.push(work);
        }
        cluster.url = format!("df://{scheduler}");
        Ok(cluster)
    }

    /// Spawns `weir ARGS` logging to `DIR/NAME.log`, and waits until it listens on the
    /// address after `--bind`.
    fn spawn(&mut self, dir: &Path, cache: &Path, args: &[&str], name: &str) -> Result<(), String> {
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let stderr = file.try_clone().map_err(|e| e.to_string())?;
        let child = std::process::Command::new(weir_bin())
            .args(args)
            .env("WEIR_CACHE_DIR", cache)
            // Ballista's own log of executors registering, beside weir's warnings.
            .env("WEIR_LOG", "warn,ballista_scheduler::scheduler_server::grpc=info")
            .stdout(file)
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        self.children.push(child);
        self.logs.push(log);
        let bind = args.iter().skip_while(|a| **a != "--bind").nth(1).copied().unwrap_or_default();
        for _ in 0..600 {
            if std::net::TcpStream::connect(bind).is_ok() {
                return Ok(());
            }
            let child = self.children.last_mut().expect("just pushed");
            if child.try_wait().map_err(|e| e.to_string())?.is_some() {
                return Err(format!("{name} exited before it listened:\n{}", self.logs()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!("{name} does not listen on {bind}:\n{}", self.logs()))
    }

    /// Every process's log, each under its name.
    pub fn logs(&self) -> String {
        self.logs
            .iter()
            .map(|log| format!("--- {}\n{}", log.display(), std::fs::read_to_string(log).unwrap_or_default()))
            .collect()
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A cluster CA and one certificate it signed for the name every process of a cluster
/// is checked against (`weir-batch`), with its key: PEM files, as `--tls-ca`,
/// `--tls-cert` and `--tls-key` take them.
#[derive(Debug, Clone)]
pub struct ClusterCerts {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl ClusterCerts {
    /// A new CA and certificate under `dir/NAME-*.pem`.
    pub fn generate(dir: &Path, name: &str) -> Self {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().expect("a key");
        let mut ca_params = CertificateParams::new(Vec::new()).expect("no names");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).expect("a CA");
        let key = KeyPair::generate().expect("a key");
        let cert = CertificateParams::new(vec!["weir-batch".to_owned()])
            .expect("a valid name")
            .signed_by(&key, &Issuer::new(ca_params, ca_key))
            .expect("a certificate");
        let certs = Self {
            ca: dir.join(format!("{name}-ca.pem")),
            cert: dir.join(format!("{name}-cert.pem")),
            key: dir.join(format!("{name}-key.pem")),
        };
        std::fs::write(&certs.ca, ca.pem()).expect("written");
        std::fs::write(&certs.cert, cert.pem()).expect("written");
        std::fs::write(&certs.key, key.serialize_pem()).expect("written");
        certs
    }

    /// The CA and certificate made in `dir` by the `openssl` lines of docs/batch.md's
    /// cluster TLS example (`ca.pem`, `node.pem`, `node.key`), so that what the docs tell
    /// an operator to run is what the test runs.
    ///
    /// # Panics
    /// When the docs have no such lines or `openssl` fails.
    pub fn from_docs(dir: &Path) -> Self {
        let docs = std::fs::read_to_string(crate::repo_root().join("docs/batch.md")).expect("docs/batch.md");
        let script = docs
            .split("# A CA and one certificate for the name weir-batch")
            .nth(1)
            .and_then(|rest| rest.split("\nTLS=").next())
            .expect("docs/batch.md's openssl lines");
        let script: String = script.lines().skip(1).collect::<Vec<_>>().join("\n");
        assert!(script.contains("openssl req -x509"), "{script}");
        let out = std::process::Command::new("sh").args(["-ec", &script]).current_dir(dir).output().expect("sh runs");
        assert!(out.status.success(), "{script}\n{}", String::from_utf8_lossy(&out.stderr));
        Self { ca: dir.join("ca.pem"), cert: dir.join("node.pem"), key: dir.join("node.key") }
    }

    /// The command-line arguments that use these files.
    pub fn args(&self) -> Vec<String> {
        [("--tls-ca", &self.ca), ("--tls-cert", &self.cert), ("--tls-key", &self.key)]
            .into_iter()
            .flat_map(|(flag, path)| [flag.to_owned(), path.display().to_string()])
            .collect()
    }
}

/// Opens a TLS connection to `addr` as a cluster peer would — trusting `ca` for the name
/// `weir-batch`, presenting `cert` and `key` — starts HTTP/2 and waits up to 10 s for
/// the server's first bytes. Returns how many came, or why none did: under TLS 1.3 a
/// server that refuses the client's certificate says so after the client's side of the
/// handshake is done, so a refusal shows when reading.
///
/// # Errors
/// The files cannot be read, the handshake fails, or the server closes or refuses the
/// connection before answering.
pub async fn tls_answer(addr: &str, ca: &Path, cert: &Path, key: &Path) -> Result<usize, String> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(ca).map_err(|e| e.to_string())? {
        roots.add(ca.map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    }
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| e.to_string())?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| e.to_string())?;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| e.to_string())?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr).await.map_err(|e| format!("connect: {e}"))?;
    let name = ServerName::try_from("weir-batch").map_err(|e| e.to_string())?;
    let mut tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    // The HTTP/2 preface and an empty SETTINGS frame; a gRPC server answers with its own.
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
    tls.write_all(&hello).await.map_err(|e| format!("write: {e}"))?;
    let mut answer = [0u8; 64];
    match tokio::time::timeout(Duration::from_secs(10), tls.read(&mut answer)).await {
        Ok(Ok(0)) => Err("closed without an answer".into()),
        Ok(Ok(n)) => Ok(n),
        Ok(Err(e)) => Err(format!("read: {e}")),
        Err(_) => Err("no answer in 10 s".into()),
    }
}

/// A loopback port nothing listens on, with the next one free too (an executor's Flight
/// and gRPC services).
fn free_port_pair() -> u16 {
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_or(0, |a| a.port());
        if port != 0 && port < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}
