//! Compiled code cached on disk, keyed by the component's SHA-256 and the engine's
//! compatibility hash (wasmtime version and every setting that affects code), so a
//! restart or a second load of the same component does not recompile.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

#[derive(Debug)]
pub(crate) struct CodeCache {
    dir: Option<PathBuf>,
    engine_key: String,
}

/// Whether a load came from the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CacheOutcome {
    Hit,
    Miss,
    Disabled,
}

impl CodeCache {
    pub(crate) fn new(dir: Option<PathBuf>, engine: &Engine) -> Self {
        // DefaultHasher::new() uses fixed keys, so the key is stable across runs of the
        // same build; a different build may hash differently, which only costs a miss.
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Self { dir, engine_key: format!("{:016x}", hasher.finish()) }
    }

    fn path(&self, dir: &Path, sha256: &str) -> PathBuf {
        dir.join(format!("{sha256}-{}.cwasm", self.engine_key))
    }

    /// The compiled component, from the cache when present, else compiled and stored.
    pub(crate) fn load_or_compile(
        &self,
        engine: &Engine,
        bytes: &[u8],
        sha256: &str,
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        let Some(dir) = &self.dir else {
            return Ok((Component::new(engine, bytes)?, CacheOutcome::Disabled));
        };
        let path = self.path(dir, sha256);
        if path.exists() {
            // SAFETY: the file was written by `Component::serialize` of an engine with the
            // same compatibility hash (it is in the file name), in a directory owned by
            // this host; wasmtime checks the header and engine settings again on load.
            #[allow(unsafe_code)]
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => return Ok((component, CacheOutcome::Hit)),
                Err(err) => {
                    tracing::warn!(path = %path.display(), "ignoring unreadable compiled-code cache entry: {err}")
                }
            }
        }
        let component = Component::new(engine, bytes)?;
        if let Err(err) = store(dir, &path, &component) {
            tracing::warn!(path = %path.display(), "could not write the compiled-code cache: {err}");
        }
        Ok((component, CacheOutcome::Miss))
    }
}

fn store(dir: &Path, path: &Path, component: &Component) -> std::io::Result<()> {
    let serialized = component.serialize().map_err(|e| std::io::Error::other(e.to_string()))?;
    std::fs::create_dir_all(dir)?;
    // Write then rename, so a crash never leaves a half-written entry under the real name.
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, serialized)?;
    std::fs::rename(&tmp, path)
}
