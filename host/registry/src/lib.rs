//! weir's plugin registry: what was uploaded, what is live, and who did what.
//!
//! - [`RegistryStore`]: the storage every registry implements — components stored
//!   content-addressed (by SHA-256), version metadata ([`VersionRecord`]), deployments
//!   ([`Deployment`]: which version of each plugin is live, the previous ones, and a
//!   canary or shadow candidate) and an append-only audit log ([`AuditEntry`]).
//! - [`LocalRegistry`]: the embedded default, a directory of component files and one
//!   [redb](https://docs.rs/redb) file for the rest. A registry shared by several hosts
//!   (S3 + DynamoDB, not built yet) is to implement the same trait.
//!
//! The registry stores and answers; it does not judge. Validation (is it a component of a
//! known world, does it compile), activation and the hot swap belong to the host
//! (`weir-pipeline`'s admin API).

mod local;
mod records;

pub use local::{LocalRegistry, local_component};
pub use records::{
    AuditEntry, Candidate, CandidateMode, CandidateOutcome, Deployment, FixtureFiles, Fixtures, VersionRecord,
};

/// Why the registry failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Reading or writing the storage failed.
    #[error("plugin registry at {location}: {message}")]
    Storage {
        /// The directory, file or bucket.
        location: String,
        /// What failed.
        message: String,
    },
    /// A component's bytes do not hash to the address they are stored under.
    #[error(
        "plugin registry at {location}: component {sha256} is damaged (its bytes hash to {actual}); upload it again"
    )]
    Damaged {
        /// Where.
        location: String,
        /// The address.
        sha256: String,
        /// What the bytes hash to.
        actual: String,
    },
    /// No component is stored under this address.
    #[error("plugin registry at {location}: no component {sha256}")]
    MissingComponent {
        /// Where.
        location: String,
        /// The address.
        sha256: String,
    },
}

/// A boxed future that can be sent between threads.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// The storage of a plugin registry. Every operation is asynchronous (a store on files
/// runs its blocking writes on the blocking pool; a remote store awaits the network) and
/// durable when it returns `Ok`.
pub trait RegistryStore: Send + Sync + std::fmt::Debug + 'static {
    /// Stores `bytes` under their SHA-256 (hex), which it returns. Storing the same bytes
    /// again is a no-op.
    ///
    /// # Errors
    /// When the storage fails.
    fn put_component(&self, bytes: Vec<u8>) -> BoxFuture<'_, Result<String, RegistryError>>;

    /// The component stored under `sha256`, checked against its address.
    ///
    /// # Errors
    /// [`RegistryError::MissingComponent`], [`RegistryError::Damaged`], or a storage error.
    fn component(&self, sha256: String) -> BoxFuture<'_, Result<Vec<u8>, RegistryError>>;

    /// Removes the component stored under `sha256`, if any.
    ///
    /// # Errors
    /// When the storage fails.
    fn remove_component(&self, sha256: String) -> BoxFuture<'_, Result<(), RegistryError>>;

    /// Stores (or replaces) a version's metadata.
    ///
    /// # Errors
    /// When the storage fails.
    fn put_version(&self, version: VersionRecord) -> BoxFuture<'_, Result<(), RegistryError>>;

    /// One version's metadata.
    ///
    /// # Errors
    /// When the storage fails.
    fn version(&self, name: String, version: String) -> BoxFuture<'_, Result<Option<VersionRecord>, RegistryError>>;

    /// Every version of `name` (or of every plugin), by name, then upload order.
    ///
    /// # Errors
    /// When the storage fails.
    fn versions(&self, name: Option<String>) -> BoxFuture<'_, Result<Vec<VersionRecord>, RegistryError>>;

    /// Removes a version's metadata (not its component, which other versions may share).
    ///
    /// # Errors
    /// When the storage fails.
    fn remove_version(&self, name: String, version: String) -> BoxFuture<'_, Result<(), RegistryError>>;

    /// Stores (or replaces) a plugin's deployment.
    ///
    /// # Errors
    /// When the storage fails.
    fn put_deployment(&self, deployment: Deployment) -> BoxFuture<'_, Result<(), RegistryError>>;

    /// Every stored deployment, by plugin name.
    ///
    /// # Errors
    /// When the storage fails.
    fn deployments(&self) -> BoxFuture<'_, Result<Vec<Deployment>, RegistryError>>;

    /// Appends an entry to the audit log, giving it the next sequence number, and returns
    /// it.
    ///
    /// # Errors
    /// When the storage fails.
    fn append_audit(&self, entry: AuditEntry) -> BoxFuture<'_, Result<AuditEntry, RegistryError>>;

    /// Audit entries with a sequence number above `after`, oldest first, at most `limit`.
    ///
    /// # Errors
    /// When the storage fails.
    fn audit(&self, after: u64, limit: usize) -> BoxFuture<'_, Result<Vec<AuditEntry>, RegistryError>>;
}

/// The SHA-256 of `bytes`, lowercase hex: a component's address.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
