//! What the registry stores, as JSON documents.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One uploaded version of a plugin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionRecord {
    /// The plugin's name, e.g. `restaurant-enricher`.
    pub name: String,
    /// The version, e.g. `2.1.0`; unique per name.
    pub version: String,
    /// The component's address: SHA-256 of its bytes, hex.
    pub sha256: String,
    /// `parser`, `enricher` or `aggregator`.
    pub world: String,
    /// The `weir:plugin` version it was built against, e.g. `0.3.0`.
    pub wit_version: String,
    /// Component size in bytes.
    pub size: u64,
    /// Every interface it imports.
    pub imports: Vec<String>,
    /// What the uploader said it does.
    #[serde(default)]
    pub description: String,
    /// Who uploaded it (the token's name).
    pub uploaded_by: String,
    /// When, RFC 3339.
    pub uploaded_at: String,
    /// Test inputs and expected outputs run before the version may go live.
    #[serde(default)]
    pub fixtures: Option<Fixtures>,
    /// The configuration this version runs with (its `configure` pairs), in place of the
    /// plugin's `config` from the pipeline configuration; `None`: the plugin's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<BTreeMap<String, String>>,
}

/// A version's gate: the harness runs `input` and must produce `expected`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fixtures {
    /// The input file's text: raw lines for a parser, NDJSON events otherwise.
    pub input: String,
    /// The expected output, NDJSON events as `weir plugin test` writes them.
    pub expected: String,
    /// Content type of a parser's input lines. By default `application/json`.
    #[serde(default)]
    pub content_type: Option<String>,
    /// Reference data for `lookup`: `{"table": {"key": value}}`.
    #[serde(default)]
    pub lookup: Option<serde_json::Value>,
    /// Configuration passed to `configure`. By default the pipeline's for that plugin.
    #[serde(default)]
    pub config: Option<BTreeMap<String, String>>,
    /// An aggregator's window, e.g. `15m`. By default `1h`.
    #[serde(default)]
    pub window: Option<String>,
    /// The names of the files the input, the expected output and the lookup data came
    /// from, as the uploader gave them: messages name these, not the host's copies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<FixtureFiles>,
}

/// Where a version's fixtures came from, for messages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixtureFiles {
    /// The input file, e.g. `fixtures/input.txt`.
    #[serde(default)]
    pub input: Option<String>,
    /// The expected output file.
    #[serde(default)]
    pub expected: Option<String>,
    /// The lookup data file.
    #[serde(default)]
    pub lookup: Option<String>,
}

/// How a candidate version takes traffic.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum CandidateMode {
    /// Records whose partition key falls in the first `percent` of 100 buckets go through
    /// the candidate; its outputs are delivered.
    Canary {
        /// 0 to 100.
        percent: u8,
    },
    /// Every record also goes through the candidate; its outputs are compared with the
    /// live version's and discarded.
    Shadow,
}

/// A version being tried beside the live one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// The version.
    pub version: String,
    /// Canary or shadow.
    #[serde(flatten)]
    pub mode: CandidateMode,
    /// The candidate is rolled back automatically when more than this share of its inputs
    /// fail (record errors, traps, limits), once it has seen `min_inputs`.
    pub max_error_rate: f64,
    /// Inputs seen before the error rate is judged.
    pub min_inputs: u64,
    /// When it started, RFC 3339.
    pub since: String,
}

/// Which version of a plugin is live, and what else is going on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    /// The plugin's name.
    pub plugin: String,
    /// The live version.
    pub live: String,
    /// Versions live before, most recent last: what rollback returns to.
    #[serde(default)]
    pub previous: Vec<String>,
    /// A canary or shadow version, if any.
    #[serde(default)]
    pub candidate: Option<Candidate>,
    /// How the last candidate ended (kept until the next one ends).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_candidate: Option<CandidateOutcome>,
}

/// How a candidate ended, with its counters then: what `weir plugin status` says after a
/// canary or shadow is over.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CandidateOutcome {
    /// The candidate's version.
    pub version: String,
    /// Canary or shadow.
    #[serde(flatten)]
    pub mode: CandidateMode,
    /// `promoted`, `aborted`, `rolled_back` (automatically, over its error threshold), or
    /// `replaced` (an activation or rollback ended it).
    pub outcome: String,
    /// When, RFC 3339.
    pub at: String,
    /// Who: the token's name, `weir` for an automatic rollback, `config` for a start.
    pub actor: String,
    /// Why, when the host ended it (the error rate over how many inputs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Inputs it processed on this host.
    #[serde(default)]
    pub inputs: u64,
    /// Inputs it failed on.
    #[serde(default)]
    pub failed: u64,
    /// Shadow: inputs compared with the live version's outputs.
    #[serde(default)]
    pub compared: u64,
    /// Shadow: inputs whose outputs differed.
    #[serde(default)]
    pub differing: u64,
}

/// One admin action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Sequence number, from 1; given by the store.
    #[serde(default)]
    pub seq: u64,
    /// When, RFC 3339.
    pub at: String,
    /// Who: the token's name, or `weir` for the host's own actions (auto-rollback).
    pub actor: String,
    /// What: `upload`, `activate`, `rollback`, `canary`, `shadow`, `promote`, `abort`,
    /// `auto-rollback`, `delete`, `fixtures`.
    pub action: String,
    /// On what: `restaurant-enricher@2.1.0`.
    pub target: String,
    /// `ok`, or why it was refused or failed.
    pub result: String,
}
