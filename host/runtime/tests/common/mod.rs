//! Shared fixtures: where the built plugin components are, and a log that keeps lines.

#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use weir_runtime::{LogLevel, PluginId, PluginLog};

/// The directory holding the built components: `$WEIR_PLUGIN_DIR`, else
/// `<target>/wasm32-wasip2/plugin`.
pub fn plugin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("WEIR_PLUGIN_DIR") {
        return dir.into();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("wasm32-wasip2/plugin")
}

/// The bytes of a built component, e.g. `component("misbehaving_enricher")`.
pub fn component(name: &str) -> Vec<u8> {
    let path = plugin_dir().join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!("cannot read {} ({e}); build the plugins first: scripts/build-plugins.sh", path.display())
    })
}

/// A plugin log that keeps every line, for assertions.
#[derive(Debug, Default)]
pub struct KeptLog(pub Mutex<Vec<(LogLevel, String)>>);

impl PluginLog for KeptLog {
    fn line(&self, _plugin: &PluginId, level: LogLevel, message: &str) {
        self.0.lock().unwrap().push((level, message.to_owned()));
    }
}

impl KeptLog {
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().iter().map(|(_, l)| l.clone()).collect()
    }
}

pub fn kept_log() -> Arc<KeptLog> {
    Arc::new(KeptLog::default())
}
