//! Servers in their own processes, so a benchmark's load comes from a second process.

use std::io::BufRead as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A child process that prints `<prefix><address>` on its first line.
#[derive(Debug)]
pub struct ChildServer {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl ChildServer {
    /// Spawns `command` and waits for its address line.
    ///
    /// # Errors
    /// When it cannot start or prints something else first.
    pub fn start(mut command: Command, prefix: &str) -> anyhow::Result<ChildServer> {
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::null()).spawn()?;
        let mut lines = std::io::BufReader::new(child.stdout.take().expect("piped")).lines();
        let line = lines.next().ok_or_else(|| anyhow::anyhow!("the server printed nothing"))??;
        let addr = line.strip_prefix(prefix).ok_or_else(|| anyhow::anyhow!("unexpected line {line:?}"))?.parse()?;
        std::thread::spawn(move || for _ in lines {});
        Ok(ChildServer { child, addr })
    }

    /// `weir serve --config CONFIG` (the binary at `WEIR_BIN`, else the release build)
    /// with `env` added.
    ///
    /// # Errors
    /// When it cannot start.
    pub fn weir(config: &Path, env: &[(&str, &str)]) -> anyhow::Result<ChildServer> {
        let mut command = Command::new(weir_bin());
        command.arg("serve").arg("--config").arg(config).envs(env.iter().copied());
        Self::start(command, "weir listening on http://")
    }

    /// This benchmark binary again, with `arg` (its bare-server mode).
    ///
    /// # Errors
    /// When it cannot start.
    pub fn this_binary(arg: &str, prefix: &str) -> anyhow::Result<ChildServer> {
        let mut command = Command::new(std::env::current_exe()?);
        command.arg(arg);
        Self::start(command, prefix)
    }

    /// Stops it with SIGTERM and waits.
    pub fn stop(mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `weir` binary: `WEIR_BIN`, else `$CARGO_TARGET_DIR/release/weir`.
pub fn weir_bin() -> PathBuf {
    std::env::var_os("WEIR_BIN").map(PathBuf::from).unwrap_or_else(|| {
        let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
        target.join("release/weir")
    })
}

/// The `p`-quantile of `latencies` (sorted in place).
pub fn percentile(latencies: &mut [Duration], p: f64) -> Duration {
    latencies.sort();
    latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)]
}
