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
    /// A cache in `dir` (none for `None`), which is created private to this host or, if
    /// it exists, checked to be.
    ///
    /// # Errors
    /// The directory cannot be created, or others than this host's user can write to it:
    /// its files are loaded as native code, so whoever can write there could run code in
    /// the host.
    pub(crate) fn new(dir: Option<PathBuf>, engine: &Engine) -> Result<Self, String> {
        if let Some(dir) = &dir {
            prepare_private_dir(dir)?;
        }
        // DefaultHasher::new() uses fixed keys, so the key is stable across runs of the
        // same build; a different build may hash differently, which only costs a miss.
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(Self { dir, engine_key: format!("{:016x}", hasher.finish()) })
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

/// Creates `dir` (and its missing parents) with mode 0700, or checks that an existing one
/// is owned by this process's user and writable by nobody else.
#[cfg(unix)]
fn prepare_private_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let shown = dir.display();
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("cannot create the compiled-code cache {shown}: {e}"))?;
    }
    let meta = std::fs::metadata(dir).map_err(|e| format!("cannot read the compiled-code cache {shown}: {e}"))?;
    if !meta.is_dir() {
        return Err(format!("the compiled-code cache {shown} is not a directory"));
    }
    // This process's user, without unsafe code: the owner of a file it creates.
    let probe = dir.join(format!(".owner-probe-{}", std::process::id()));
    let me = std::fs::File::create(&probe)
        .and_then(|file| file.metadata())
        .map(|probe| probe.uid())
        .map_err(|e| format!("cannot write to the compiled-code cache {shown}: {e}"));
    let _ = std::fs::remove_file(&probe);
    let me = me?;
    if meta.uid() != me {
        return Err(format!(
            "the compiled-code cache {shown} belongs to user {} but weir runs as user {me}; its files are loaded as \
             native code, so it must be weir's own: remove it or point WEIR_CACHE_DIR elsewhere",
            meta.uid()
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "the compiled-code cache {shown} can be written by others (mode {:o}); its files are loaded as native \
             code: run `chmod go-w {shown}` or point WEIR_CACHE_DIR elsewhere",
            meta.mode() & 0o777
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn prepare_private_dir(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create the compiled-code cache {}: {e}", dir.display()))
}

fn store(dir: &Path, path: &Path, component: &Component) -> std::io::Result<()> {
    let serialized = component.serialize().map_err(|e| std::io::Error::other(e.to_string()))?;
    std::fs::create_dir_all(dir)?;
    // Write then rename, so a crash never leaves a half-written entry under the real name.
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, serialized)?;
    std::fs::rename(&tmp, path)
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_new_cache_directory_is_private_to_the_host() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a").join("code-cache");
        prepare_private_dir(&dir).unwrap();
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "the owner probe is removed");
        prepare_private_dir(&dir).expect("an existing private directory is accepted");
    }

    #[test]
    fn a_cache_directory_others_can_write_to_is_refused() {
        let root = tempfile::tempdir().unwrap();
        for mode in [0o777, 0o775, 0o757] {
            std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(mode)).unwrap();
            let error = prepare_private_dir(root.path()).unwrap_err();
            assert!(error.contains("can be written by others") && error.contains("chmod go-w"), "{error}");
        }
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        prepare_private_dir(root.path()).expect("others may read, not write");
    }
}
