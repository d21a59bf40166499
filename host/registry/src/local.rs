//! The embedded registry: component files in a directory, the rest in one redb file.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::records::{AuditEntry, Deployment, VersionRecord};
use crate::{BoxFuture, RegistryError, RegistryStore, sha256_hex};

const VERSIONS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("versions");
const DEPLOYMENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("deployments");
const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");

/// The embedded registry in a directory: `components/<sha256>.wasm` and `registry.redb`.
/// Its operations block (file writes and redb commits, each fsynced), so each runs on
/// the blocking thread pool, never on an async worker.
#[derive(Debug, Clone)]
pub struct LocalRegistry(Arc<LocalStore>);

impl LocalRegistry {
    /// Opens (or creates) the registry in `root`.
    ///
    /// # Errors
    /// When the directory or the database cannot be created or opened.
    pub fn open(root: &Path) -> Result<Self, RegistryError> {
        LocalStore::open(root).map(|store| Self(Arc::new(store)))
    }

    /// Runs `operation` on the store on the blocking thread pool.
    fn blocking<T: Send + 'static>(
        &self,
        operation: impl FnOnce(&LocalStore) -> Result<T, RegistryError> + Send + 'static,
    ) -> BoxFuture<'_, Result<T, RegistryError>> {
        let store = Arc::clone(&self.0);
        Box::pin(async move {
            let location = store.root.display().to_string();
            tokio::task::spawn_blocking(move || operation(&store)).await.map_err(|e| RegistryError::Storage {
                location,
                message: format!("the registry operation did not complete: {e}"),
            })?
        })
    }
}

impl RegistryStore for LocalRegistry {
    fn put_component(&self, bytes: Vec<u8>) -> BoxFuture<'_, Result<String, RegistryError>> {
        self.blocking(move |store| store.put_component(&bytes))
    }

    fn component(&self, sha256: String) -> BoxFuture<'_, Result<Vec<u8>, RegistryError>> {
        self.blocking(move |store| store.component(&sha256))
    }

    fn remove_component(&self, sha256: String) -> BoxFuture<'_, Result<(), RegistryError>> {
        self.blocking(move |store| store.remove_component(&sha256))
    }

    fn put_version(&self, version: VersionRecord) -> BoxFuture<'_, Result<(), RegistryError>> {
        self.blocking(move |store| store.put_version(&version))
    }

    fn version(&self, name: String, version: String) -> BoxFuture<'_, Result<Option<VersionRecord>, RegistryError>> {
        self.blocking(move |store| store.version(&name, &version))
    }

    fn versions(&self, name: Option<String>) -> BoxFuture<'_, Result<Vec<VersionRecord>, RegistryError>> {
        self.blocking(move |store| store.versions(name.as_deref()))
    }

    fn remove_version(&self, name: String, version: String) -> BoxFuture<'_, Result<(), RegistryError>> {
        self.blocking(move |store| store.remove_version(&name, &version))
    }

    fn put_deployment(&self, deployment: Deployment) -> BoxFuture<'_, Result<(), RegistryError>> {
        self.blocking(move |store| store.put_deployment(&deployment))
    }

    fn deployments(&self) -> BoxFuture<'_, Result<Vec<Deployment>, RegistryError>> {
        self.blocking(|store| store.deployments())
    }

    fn append_audit(&self, entry: AuditEntry) -> BoxFuture<'_, Result<AuditEntry, RegistryError>> {
        self.blocking(move |store| store.append_audit(entry))
    }

    fn audit(&self, after: u64, limit: usize) -> BoxFuture<'_, Result<Vec<AuditEntry>, RegistryError>> {
        self.blocking(move |store| store.audit(after, limit))
    }
}

/// The registry's files, with blocking operations.
#[derive(Debug)]
pub(crate) struct LocalStore {
    root: PathBuf,
    db: Database,
}

impl LocalStore {
    pub(crate) fn open(root: &Path) -> Result<Self, RegistryError> {
        let storage = |message: String| RegistryError::Storage { location: root.display().to_string(), message };
        std::fs::create_dir_all(root.join("components")).map_err(|e| storage(e.to_string()))?;
        let db = Database::create(root.join("registry.redb")).map_err(|e| storage(e.to_string()))?;
        let txn = db.begin_write().map_err(|e| storage(e.to_string()))?;
        txn.open_table(VERSIONS).map_err(|e| storage(e.to_string()))?;
        txn.open_table(DEPLOYMENTS).map_err(|e| storage(e.to_string()))?;
        txn.open_table(AUDIT).map_err(|e| storage(e.to_string()))?;
        txn.commit().map_err(|e| storage(e.to_string()))?;
        Ok(Self { root: root.to_owned(), db })
    }

    fn error(&self, message: impl std::fmt::Display) -> RegistryError {
        RegistryError::Storage { location: self.root.display().to_string(), message: message.to_string() }
    }

    fn component_path(&self, sha256: &str) -> PathBuf {
        self.root.join("components").join(format!("{sha256}.wasm"))
    }

    fn encode<T: Serialize>(&self, value: &T) -> Result<Vec<u8>, RegistryError> {
        serde_json::to_vec(value).map_err(|e| self.error(e))
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, RegistryError> {
        serde_json::from_slice(bytes).map_err(|e| self.error(format!("a stored record is unreadable: {e}")))
    }
}

impl LocalStore {
    fn put_component(&self, bytes: &[u8]) -> Result<String, RegistryError> {
        let sha256 = sha256_hex(bytes);
        let path = self.component_path(&sha256);
        if path.is_file() {
            return Ok(sha256);
        }
        // Written beside, fsynced, then renamed into place: a crash never leaves a half
        // component under its address.
        let temp = path.with_extension(format!("wasm.partial-{}", std::process::id()));
        let mut file = std::fs::File::create(&temp).map_err(|e| self.error(e))?;
        file.write_all(bytes).and_then(|()| file.sync_all()).map_err(|e| self.error(e))?;
        std::fs::rename(&temp, &path).map_err(|e| self.error(e))?;
        if let Some(dir) = path.parent()
            && let Ok(dir) = std::fs::File::open(dir)
        {
            let _ = dir.sync_all();
        }
        Ok(sha256)
    }

    fn component(&self, sha256: &str) -> Result<Vec<u8>, RegistryError> {
        local_component(&self.root, sha256)
    }

    fn remove_component(&self, sha256: &str) -> Result<(), RegistryError> {
        match std::fs::remove_file(self.component_path(sha256)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(self.error(e)),
            _ => Ok(()),
        }
    }

    fn put_version(&self, version: &VersionRecord) -> Result<(), RegistryError> {
        let bytes = self.encode(version)?;
        let txn = self.db.begin_write().map_err(|e| self.error(e))?;
        txn.open_table(VERSIONS)
            .map_err(|e| self.error(e))?
            .insert((version.name.as_str(), version.version.as_str()), bytes.as_slice())
            .map_err(|e| self.error(e))?;
        txn.commit().map_err(|e| self.error(e))
    }

    fn version(&self, name: &str, version: &str) -> Result<Option<VersionRecord>, RegistryError> {
        let txn = self.db.begin_read().map_err(|e| self.error(e))?;
        let table = txn.open_table(VERSIONS).map_err(|e| self.error(e))?;
        let found = table.get((name, version)).map_err(|e| self.error(e))?;
        found.map(|value| self.decode(value.value())).transpose()
    }

    fn versions(&self, name: Option<&str>) -> Result<Vec<VersionRecord>, RegistryError> {
        let txn = self.db.begin_read().map_err(|e| self.error(e))?;
        let table = txn.open_table(VERSIONS).map_err(|e| self.error(e))?;
        let mut out: Vec<VersionRecord> = Vec::new();
        for entry in table.iter().map_err(|e| self.error(e))? {
            let (key, value) = entry.map_err(|e| self.error(e))?;
            if name.is_none_or(|n| key.value().0 == n) {
                out.push(self.decode(value.value())?);
            }
        }
        out.sort_by(|a, b| (&a.name, &a.uploaded_at, &a.version).cmp(&(&b.name, &b.uploaded_at, &b.version)));
        Ok(out)
    }

    fn remove_version(&self, name: &str, version: &str) -> Result<(), RegistryError> {
        let txn = self.db.begin_write().map_err(|e| self.error(e))?;
        txn.open_table(VERSIONS).map_err(|e| self.error(e))?.remove((name, version)).map_err(|e| self.error(e))?;
        txn.commit().map_err(|e| self.error(e))
    }

    fn put_deployment(&self, deployment: &Deployment) -> Result<(), RegistryError> {
        let bytes = self.encode(deployment)?;
        let txn = self.db.begin_write().map_err(|e| self.error(e))?;
        txn.open_table(DEPLOYMENTS)
            .map_err(|e| self.error(e))?
            .insert(deployment.plugin.as_str(), bytes.as_slice())
            .map_err(|e| self.error(e))?;
        txn.commit().map_err(|e| self.error(e))
    }

    fn deployments(&self) -> Result<Vec<Deployment>, RegistryError> {
        let txn = self.db.begin_read().map_err(|e| self.error(e))?;
        let table = txn.open_table(DEPLOYMENTS).map_err(|e| self.error(e))?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(|e| self.error(e))? {
            let (_, value) = entry.map_err(|e| self.error(e))?;
            out.push(self.decode(value.value())?);
        }
        Ok(out)
    }

    fn append_audit(&self, mut entry: AuditEntry) -> Result<AuditEntry, RegistryError> {
        let txn = self.db.begin_write().map_err(|e| self.error(e))?;
        {
            let mut table = txn.open_table(AUDIT).map_err(|e| self.error(e))?;
            let last = table.last().map_err(|e| self.error(e))?.map_or(0, |(key, _)| key.value());
            entry.seq = last + 1;
            let bytes = self.encode(&entry)?;
            table.insert(entry.seq, bytes.as_slice()).map_err(|e| self.error(e))?;
        }
        txn.commit().map_err(|e| self.error(e))?;
        Ok(entry)
    }

    fn audit(&self, after: u64, limit: usize) -> Result<Vec<AuditEntry>, RegistryError> {
        let txn = self.db.begin_read().map_err(|e| self.error(e))?;
        let table = txn.open_table(AUDIT).map_err(|e| self.error(e))?;
        let mut out = Vec::new();
        for entry in table.range(after.saturating_add(1)..).map_err(|e| self.error(e))?.take(limit) {
            let (_, value) = entry.map_err(|e| self.error(e))?;
            out.push(self.decode(value.value())?);
        }
        Ok(out)
    }
}

/// The component `sha256` of the embedded registry in `root`, read from its
/// content-addressed file without opening the database (which one process holds): what
/// a batch executor beside the host reads. Checked against its address.
///
/// # Errors
/// No such component, an unreadable file, or bytes that are not the address's.
pub fn local_component(root: &Path, sha256: &str) -> Result<Vec<u8>, RegistryError> {
    let location = || root.display().to_string();
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(RegistryError::MissingComponent { location: location(), sha256: sha256.to_owned() });
    }
    let bytes = match std::fs::read(root.join("components").join(format!("{sha256}.wasm"))) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(RegistryError::MissingComponent { location: location(), sha256: sha256.to_owned() });
        }
        Err(e) => return Err(RegistryError::Storage { location: location(), message: e.to_string() }),
    };
    let actual = sha256_hex(&bytes);
    if actual != sha256 {
        return Err(RegistryError::Damaged { location: location(), sha256: sha256.to_owned(), actual });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{Candidate, CandidateMode};

    fn version(name: &str, version: &str, sha256: &str, at: &str) -> VersionRecord {
        VersionRecord {
            name: name.into(),
            version: version.into(),
            sha256: sha256.into(),
            world: "enricher".into(),
            wit_version: "0.3.0".into(),
            size: 3,
            imports: vec!["weir:plugin/host@0.3.0".into()],
            description: String::new(),
            uploaded_by: "ci".into(),
            uploaded_at: at.into(),
            fixtures: None,
            config: None,
        }
    }

    #[test]
    fn components_are_content_addressed_and_checked_on_read() {
        let dir = tempfile::tempdir().unwrap();
        let registry = LocalStore::open(dir.path()).unwrap();
        let sha = registry.put_component(b"\0asm component").unwrap();
        assert_eq!(sha, sha256_hex(b"\0asm component"));
        assert_eq!(registry.put_component(b"\0asm component").unwrap(), sha, "idempotent");
        assert_eq!(registry.component(&sha).unwrap(), b"\0asm component");
        std::fs::write(dir.path().join("components").join(format!("{sha}.wasm")), b"tampered").unwrap();
        assert!(matches!(registry.component(&sha), Err(RegistryError::Damaged { .. })));
        registry.remove_component(&sha).unwrap();
        assert!(matches!(registry.component(&sha), Err(RegistryError::MissingComponent { .. })));
    }

    #[test]
    fn versions_deployments_and_audit_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let registry = LocalStore::open(dir.path()).unwrap();
            registry.put_version(&version("enricher", "2", "bb", "2026-11-26T10:00:01Z")).unwrap();
            registry.put_version(&version("enricher", "10", "aa", "2026-11-26T10:00:02Z")).unwrap();
            registry.put_version(&version("parser", "1", "cc", "2026-11-26T09:00:00Z")).unwrap();
            let candidate = Candidate {
                version: "10".into(),
                mode: CandidateMode::Canary { percent: 10 },
                max_error_rate: 0.1,
                min_inputs: 20,
                since: "2026-11-26T10:00:03Z".into(),
            };
            let deployment = Deployment {
                plugin: "enricher".into(),
                live: "2".into(),
                previous: vec!["1".into()],
                candidate: Some(candidate),
                last_candidate: None,
            };
            registry.put_deployment(&deployment).unwrap();
            for action in ["upload", "activate"] {
                let entry = AuditEntry {
                    seq: 0,
                    at: "2026-11-26T10:00:00Z".into(),
                    actor: "ci".into(),
                    action: action.into(),
                    target: "enricher@2".into(),
                    result: "ok".into(),
                };
                registry.append_audit(entry).unwrap();
            }
        }
        let registry = LocalStore::open(dir.path()).unwrap();
        let versions: Vec<String> =
            registry.versions(Some("enricher")).unwrap().into_iter().map(|v| v.version).collect();
        assert_eq!(versions, ["2", "10"], "upload order, not text order");
        assert_eq!(registry.versions(None).unwrap().len(), 3);
        assert_eq!(registry.version("parser", "1").unwrap().unwrap().sha256, "cc");
        assert_eq!(registry.version("parser", "2").unwrap(), None);
        let deployments = registry.deployments().unwrap();
        assert_eq!(deployments.len(), 1);
        assert_eq!(deployments[0].candidate.as_ref().unwrap().mode, CandidateMode::Canary { percent: 10 });
        let audit = registry.audit(0, 10).unwrap();
        assert_eq!(
            audit.iter().map(|e| (e.seq, e.action.as_str())).collect::<Vec<_>>(),
            [(1, "upload"), (2, "activate")]
        );
        assert_eq!(registry.audit(1, 10).unwrap().len(), 1);
        registry.remove_version("enricher", "2").unwrap();
        assert_eq!(registry.versions(Some("enricher")).unwrap().len(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn the_async_store_runs_each_operation_on_the_blocking_pool_and_keeps_what_it_stored() {
        let dir = tempfile::tempdir().unwrap();
        let registry: Arc<dyn RegistryStore> = Arc::new(LocalRegistry::open(dir.path()).unwrap());
        let sha = registry.put_component(b"\0asm component".to_vec()).await.unwrap();
        assert_eq!(registry.component(sha.clone()).await.unwrap(), b"\0asm component");
        registry.put_version(version("parser", "1", &sha, "2026-11-26T09:00:00Z")).await.unwrap();
        let found = registry.version("parser".into(), "1".into()).await.unwrap();
        assert_eq!(found.map(|v| v.sha256), Some(sha.clone()));
        registry.remove_component(sha.clone()).await.unwrap();
        assert!(matches!(registry.component(sha).await, Err(RegistryError::MissingComponent { .. })));
    }
}
