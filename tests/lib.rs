//! Fixtures for the end-to-end tests: where the `weir` binary, the built components and
//! the plugin sources are, and a helper to run the binary.

pub mod aws_servers;
pub mod ballista_cluster;
pub mod elastic_standin;
pub mod fault_proxy;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The build directory: `$CARGO_TARGET_DIR`, else `target/` of the repository.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| repo_root().join("target"))
}

/// Where scripts/test-tools.sh and scripts/build-foreign-plugins.sh install their tools:
/// `$WEIR_TOOLS_DIR`, else `/var/tmp/weir-tools`.
pub fn tools_dir() -> PathBuf {
    std::env::var_os("WEIR_TOOLS_DIR").map_or_else(|| PathBuf::from("/var/tmp/weir-tools"), PathBuf::from)
}

/// Every Parquet file under `dir`, at any depth (the lake's partition directories).
pub fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                files.push(path);
            }
        }
    }
    files
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `weir` binary: `$WEIR_BIN`, else `<target>/debug/weir` (built by scripts/test.sh).
pub fn weir_bin() -> PathBuf {
    let bin = std::env::var_os("WEIR_BIN").map(PathBuf::from).unwrap_or_else(|| target_dir().join("debug/weir"));
    assert!(bin.exists(), "{} is missing: run `cargo build -p weir` (scripts/test.sh does)", bin.display());
    bin
}

/// A built component: `$WEIR_PLUGIN_DIR/<name>.wasm` (scripts/build-plugins.sh builds them).
pub fn component(name: &str) -> PathBuf {
    let dir = std::env::var_os("WEIR_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("wasm32-wasip2/plugin"));
    let path = dir.join(format!("{name}.wasm"));
    assert!(path.exists(), "{} is missing: run scripts/build-plugins.sh", path.display());
    path
}

/// Whether a component was compiled ahead of time by weval (componentize-js `--aot`):
/// weval marks the code it compiled with `weval.is.wevaled`; an interpreted build has none.
pub fn compiled_ahead_of_time(component: &Path) -> bool {
    const MARK: &[u8] = b"weval.is.wevaled";
    std::fs::read(component).unwrap().windows(MARK.len()).any(|w| w == MARK)
}

/// A file under `plugins/`.
pub fn plugin_file(relative: &str) -> PathBuf {
    repo_root().join("plugins").join(relative)
}

/// What a run of the binary printed and returned.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// stdout and stderr together, for messages in assertions.
    pub fn all(&self) -> String {
        format!("exit {}\n--- stdout\n{}--- stderr\n{}", self.code, self.stdout, self.stderr)
    }
}

/// Runs `weir ARGS...` with a private compiled-code cache.
pub fn weir(args: &[&dyn AsRef<std::ffi::OsStr>], cache: &Path) -> Run {
    let Output { status, stdout, stderr } = Command::new(weir_bin())
        .args(args.iter().map(|a| a.as_ref()))
        .env("WEIR_CACHE_DIR", cache)
        .output()
        .expect("the weir binary runs");
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// A `weir serve` process, killed when dropped.
#[derive(Debug)]
pub struct Server {
    pub child: std::process::Child,
    pub addr: std::net::SocketAddr,
}

impl Server {
    /// Starts `weir serve --config CONFIG` and waits for its "listening" line.
    pub fn start(config: &Path) -> Server {
        Self::start_with_env(config, &[])
    }

    /// Starts `weir serve --config CONFIG` with `env` added to its environment.
    pub fn start_with_env(config: &Path, env: &[(&str, &str)]) -> Server {
        Self::start_logging_to(config, env, None)
    }

    /// Starts `weir serve --config CONFIG` with `env` added, its stderr (the log, at the
    /// default level) written to `stderr` when given.
    pub fn start_logging_to(config: &Path, env: &[(&str, &str)], stderr: Option<&Path>) -> Server {
        use std::io::BufRead;
        let stderr = match stderr {
            Some(path) => std::process::Stdio::from(std::fs::File::create(path).expect("the stderr file")),
            None => std::process::Stdio::inherit(),
        };
        let mut child = Command::new(weir_bin())
            .args(["serve", "--config"])
            .arg(config)
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("weir serve starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = std::io::BufReader::new(stdout).lines();
        let line = lines.next().expect("weir serve prints its address").expect("readable stdout");
        let addr = line
            .strip_prefix("weir listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line: {line}"))
            .parse()
            .expect("an address");
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server { child, addr }
    }

    /// Kills the process with SIGKILL, as a crash would.
    pub fn kill_9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the process with SIGTERM (graceful) and waits for it.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        self.child.wait().expect("weir serve exits")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A commit of `items` from `stream`'s shard `shard`, at positions `first_seq`,
/// `first_seq + 1`…, each record with the id a stage would give it.
pub fn commit_of(
    stream: &str,
    shard: &str,
    first_seq: u64,
    items: Vec<weir_sinks::SinkItem>,
) -> weir_sinks::SinkCommit {
    let last = first_seq + items.len().max(1) as u64 - 1;
    let id = weir_sinks::CommitId::log_range(stream, shard, &first_seq.to_string(), &last.to_string());
    let records = items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let seq = (first_seq + i as u64).to_string();
            weir_sinks::SinkRecord { id: id.record_id(&seq, 0), position: seq, item }
        })
        .collect();
    weir_sinks::SinkCommit { id, arrival_time: 0, records }
}

/// `commit` through `sink` as a stage delivers it (`weir_sinks::deliver`: failed records
/// again, a retryable whole-call error again), with short waits and at most 60 attempts.
///
/// # Panics
/// When delivery gives up: the records were never all written.
pub async fn deliver_all(sink: &dyn weir_sinks::Sink, commit: &weir_sinks::SinkCommit) -> weir_sinks::DeliveryStats {
    let policy = weir_sinks::RetryPolicy {
        initial_backoff: std::time::Duration::from_millis(20),
        max_backoff: std::time::Duration::from_millis(250),
        max_attempts: Some(60),
    };
    let (_keep, shutdown) = tokio::sync::watch::channel(false);
    weir_sinks::deliver(sink, commit.clone(), &policy, &shutdown)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", sink.name()))
}
