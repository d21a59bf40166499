//! What a component is: checks of its bytes, the world it exports, the WIT version it
//! was built against, and whether the host provides everything it imports.

use std::fmt;

use wasmtime::Engine;
use wasmtime::component::Component;

use crate::error::LoadError;

/// The version of the `weir:plugin` package this host implements. Components built
/// against any `0.3.x` are accepted (before 1.0 a minor version is a breaking change).
pub const SUPPORTED_WIT_VERSION: &str = "0.3.0";
const SUPPORTED_PREFIX: &str = "0.3.";

/// Whether this host runs components built against `weir:plugin@VERSION`.
pub fn supports_wit_version(version: &str) -> bool {
    version.starts_with(SUPPORTED_PREFIX)
}

/// The kind of plugin, one per WIT world.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum World {
    Parser,
    Enricher,
    Aggregator,
}

impl World {
    /// All worlds, in pipeline order.
    pub const ALL: [World; 3] = [World::Parser, World::Enricher, World::Aggregator];

    /// The world's name in the WIT (`parser`, `enricher`, `aggregator`).
    pub fn as_str(self) -> &'static str {
        match self {
            World::Parser => "parser",
            World::Enricher => "enricher",
            World::Aggregator => "aggregator",
        }
    }

    /// The interface the world exports, without version (`weir:plugin/parse`).
    pub fn export_interface(self) -> &'static str {
        match self {
            World::Parser => "weir:plugin/parse",
            World::Enricher => "weir:plugin/enrich",
            World::Aggregator => "weir:plugin/aggregate",
        }
    }

    fn describe(self) -> String {
        format!("world {} (exports {}@{SUPPORTED_WIT_VERSION})", self.as_str(), self.export_interface())
    }
}

impl fmt::Display for World {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for World {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        World::ALL
            .into_iter()
            .find(|w| w.as_str() == s)
            .ok_or_else(|| format!("unknown world {s:?}: expected parser, enricher or aggregator"))
    }
}

/// What `weir plugin inspect` shows, and what the registry stores about a component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    pub world: World,
    /// The `weir:plugin` version the component was built against.
    pub wit_version: String,
    /// Every import, fully qualified (`wasi:cli/environment@0.2.3`).
    pub imports: Vec<String>,
    /// Every export.
    pub exports: Vec<String>,
    /// Size of the component in bytes.
    pub size: usize,
    /// SHA-256 of the component, hex.
    pub sha256: String,
}

/// WASI 0.2 interfaces the host links, all with nothing granted.
const WASI_INTERFACES: &[&str] = &[
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:clocks/monotonic-clock",
    "wasi:clocks/wall-clock",
    "wasi:filesystem/types",
    "wasi:filesystem/preopens",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:sockets/network",
    "wasi:sockets/instance-network",
    "wasi:sockets/tcp",
    "wasi:sockets/tcp-create-socket",
    "wasi:sockets/udp",
    "wasi:sockets/udp-create-socket",
    "wasi:sockets/ip-name-lookup",
];

/// Plain-language checks of the first bytes, before any decoding: each way a file can be
/// wrong gets its own message.
pub(crate) fn check_header(label: &str, bytes: &[u8]) -> Result<(), LoadError> {
    if bytes.len() < 8 {
        return Err(LoadError::Truncated(label.to_owned(), bytes.len()));
    }
    if &bytes[..4] != b"\0asm" {
        let start: String = bytes[..8.min(bytes.len())]
            .iter()
            .map(|&b| if b.is_ascii_graphic() || b == b' ' { (b as char).to_string() } else { format!("\\x{b:02x}") })
            .collect();
        return Err(LoadError::NotWasm(label.to_owned(), format!("\"{start}\"")));
    }
    // Bytes 4..8: version (u16) and layer (u16); layer 0 is a core module, 1 a component.
    if bytes[6..8] == [0, 0] {
        return Err(LoadError::CoreModule(label.to_owned()));
    }
    Ok(())
}

fn split_version(name: &str) -> (&str, Option<&str>) {
    match name.split_once('@') {
        Some((iface, version)) => (iface, Some(version)),
        None => (name, None),
    }
}

/// Finds the world and version, and every reason to refuse the component.
pub(crate) fn describe(
    label: &str,
    engine: &Engine,
    component: &Component,
    bytes: &[u8],
    expected: Option<World>,
) -> Result<PluginInfo, LoadError> {
    let ty = component.component_type();
    let imports: Vec<String> = ty.imports(engine).map(|(name, _)| name.to_owned()).collect();
    let exports: Vec<String> = ty.exports(engine).map(|(name, _)| name.to_owned()).collect();
    let mut reasons = Vec::new();

    let mut found: Vec<(World, &str)> = Vec::new();
    for name in &exports {
        let (iface, version) = split_version(name);
        if let Some(world) = World::ALL.into_iter().find(|w| w.export_interface() == iface) {
            found.push((world, version.unwrap_or("(no version)")));
        }
    }
    let expected_text = match expected {
        Some(world) => world.describe(),
        None => World::ALL.map(World::describe).join(", or "),
    };
    let (world, wit_version) = match found.as_slice() {
        [] => {
            let what = if exports.iter().any(|e| e.starts_with("wasi:cli/run")) {
                "it is a command (exports wasi:cli/run), not a weir plugin".to_owned()
            } else {
                format!("it exports {}", if exports.is_empty() { "nothing".to_owned() } else { exports.join(", ") })
            };
            reasons.push(format!("exports no weir:plugin interface: {what}; expected {expected_text}"));
            (expected.unwrap_or(World::Parser), String::new())
        }
        [(world, version)] => (*world, (*version).to_owned()),
        several => {
            let names: Vec<_> = several.iter().map(|(w, v)| format!("{}@{v}", w.export_interface())).collect();
            reasons.push(format!(
                "exports several plugin interfaces ({}); a plugin is exactly one world",
                names.join(", ")
            ));
            (several[0].0, several[0].1.to_owned())
        }
    };
    if !found.is_empty() && !supports_wit_version(&wit_version) {
        reasons.push(format!(
            "was built against weir:plugin@{wit_version}, but this host implements weir:plugin@{SUPPORTED_WIT_VERSION}; rebuild it against this weir's wit/ as {}",
            expected.unwrap_or(world).describe()
        ));
    }
    if let Some(expected) = expected
        && found.len() == 1
        && world != expected
    {
        reasons.push(format!(
            "is a {world} plugin ({}), but a {} is expected here",
            world.export_interface(),
            expected.describe()
        ));
    }
    for name in &imports {
        let (iface, version) = split_version(name);
        let known = match iface {
            "weir:plugin/host" | "weir:plugin/types" => {
                if !version.is_some_and(supports_wit_version) {
                    reasons.push(format!(
                        "imports {name}, but this host implements weir:plugin@{SUPPORTED_WIT_VERSION}; rebuild it against this weir's wit/"
                    ));
                }
                true
            }
            _ => WASI_INTERFACES.contains(&iface) && version.is_some_and(|v| v.starts_with("0.2.")),
        };
        if !known {
            reasons.push(format!(
                "imports {name}, which the host does not provide (plugins may import weir:plugin/host and the WASI 0.2 interfaces, which are linked with nothing granted)"
            ));
        }
    }
    if !reasons.is_empty() {
        return Err(LoadError::Refused(label.to_owned(), reasons));
    }
    Ok(PluginInfo { world, wit_version, imports, exports, size: bytes.len(), sha256: sha256_hex(bytes) })
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_supports_its_own_version_and_its_patches_but_no_other_minor() {
        assert!(supports_wit_version(SUPPORTED_WIT_VERSION));
        let (major_minor, _) = SUPPORTED_WIT_VERSION.rsplit_once('.').unwrap();
        assert!(supports_wit_version(&format!("{major_minor}.7")));
        assert!(!supports_wit_version("0.2.0"));
        assert!(!supports_wit_version("0.9.0"));
    }
}
