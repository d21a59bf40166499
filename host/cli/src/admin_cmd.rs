//! `weir plugin upload|list|status|activate|rollback|canary|shadow|promote|abort`: a client
//! of a running host's admin API.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::{Value, json};
use weir_client::{ClientOptions, HttpResponse};

/// Where the admin API is and who is asking.
#[derive(Debug, Args)]
pub(crate) struct AdminArgs {
    /// The host's admin URL: http://HOST:PORT, or https://HOST:PORT behind a TLS proxy.
    #[arg(long, env = "WEIR_ADMIN_URL", default_value = "http://127.0.0.1:8080")]
    admin: String,
    /// A PEM file of CA certificates to trust for an https:// admin URL, besides the
    /// public roots (a private CA or a self-signed certificate).
    #[arg(long, env = "WEIR_ADMIN_CA")]
    admin_ca: Option<PathBuf>,
    /// Seconds to wait for the admin API's whole answer.
    #[arg(long, env = "WEIR_ADMIN_TIMEOUT", default_value_t = 120)]
    admin_timeout: u64,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AdminCommand {
    /// Upload a component to the registry (validated by the host).
    Upload {
        /// The component (.wasm).
        component: PathBuf,
        /// The plugin's name, e.g. restaurant-enricher.
        #[arg(long)]
        name: String,
        /// Its version (default: the next integer).
        #[arg(long)]
        version: Option<String>,
        /// What it does.
        #[arg(long, default_value = "")]
        description: String,
        /// Fixtures gating activation: the input file …
        #[arg(long, requires = "expect")]
        input: Option<PathBuf>,
        /// … and the expected output (NDJSON).
        #[arg(long, requires = "input")]
        expect: Option<PathBuf>,
        /// Reference data for the fixtures' lookups: {"table": {"key": value}}.
        #[arg(long, requires = "input")]
        lookup: Option<PathBuf>,
        /// Configuration this version runs with instead of the plugin's, KEY=VALUE
        /// (repeat for several keys).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// List the uploaded plugins, their versions and what is live.
    List {
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Show a plugin's deployment: live, previous, candidate with its counters and the
    /// differences a shadow found.
    Status {
        /// The plugin's name, as in [plugins.NAME] of the configuration.
        name: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Make a version live (after its fixtures pass).
    Activate {
        /// The plugin's name, as in [plugins.NAME] of the configuration.
        name: String,
        /// The version, as uploaded (see `weir plugin list`).
        version: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Make the previous version live again.
    Rollback {
        /// The plugin's name, as in [plugins.NAME] of the configuration.
        name: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Route a percentage of partition keys to a version.
    Canary {
        /// The plugin's name, as in [plugins.NAME] of the configuration.
        name: String,
        /// The version, as uploaded (see `weir plugin list`).
        version: String,
        /// Share of partition keys, 0 to 100.
        #[arg(long)]
        percent: u8,
        /// Roll back automatically above this share of failed inputs (0 to 1).
        #[arg(long)]
        max_error_rate: Option<f64>,
        /// Inputs the candidate must have seen before its error rate can roll it back
        /// (default: the host's [admin] auto_rollback_min_inputs, 50).
        #[arg(long)]
        min_inputs: Option<u64>,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Run a version on a copy of the traffic and compare its outputs with the live ones.
    Shadow {
        /// The plugin's name, as in [plugins.NAME] of the configuration.
        name: String,
        /// The version, as uploaded (see `weir plugin list`).
        version: String,
        /// Roll back automatically above this share of failed inputs (0 to 1).
        #[arg(long)]
        max_error_rate: Option<f64>,
        /// Inputs the candidate must have seen before its error rate can roll it back
        /// (default: the host's [admin] auto_rollback_min_inputs, 50).
        #[arg(long)]
        min_inputs: Option<u64>,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Make the canary or shadow version live.
    Promote {
        /// The plugin's name, as in [plugins.NAME] of the configuration.
        name: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Stop the canary or shadow.
    Abort {
        /// The plugin's name, as in [plugins.NAME] of the configuration.
        name: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Delete a version from the registry (refused while it is live, a candidate, or
    /// what a rollback returns to).
    Delete {
        /// The plugin's name, as in [plugins.NAME] of the configuration.
        name: String,
        /// The version, as uploaded (see `weir plugin list`).
        version: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// The audit log: who did what, when, with what result (of one plugin with NAME).
    Audit {
        /// Only the entries of this plugin.
        name: Option<String>,
        /// Most entries shown, the newest.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[command(flatten)]
        admin: AdminArgs,
    },
}

struct Client {
    http: weir_client::Client,
    token: String,
}

impl Client {
    fn new(args: &AdminArgs) -> Result<Self, String> {
        let options = ClientOptions {
            extra_ca: args.admin_ca.clone(),
            timeout: std::time::Duration::from_secs(args.admin_timeout.max(1)),
            ..ClientOptions::default()
        };
        let http = weir_client::Client::new(&args.admin, options).map_err(|e| format!("--admin: {e}"))?;
        let token = std::env::var("WEIR_ADMIN_TOKEN").unwrap_or_default();
        if token.is_empty() {
            return Err("set WEIR_ADMIN_TOKEN to an admin (or, for list and status, read) token".to_owned());
        }
        Ok(Self { http, token })
    }

    async fn call(&self, method: &str, path: &str, content_type: &str, body: &[u8]) -> Result<Value, String> {
        self.call_with_status(method, path, content_type, body).await.map(|(_, value)| value)
    }

    async fn call_with_status(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<(u16, Value), String> {
        let auth = format!("Bearer {}", self.token);
        let headers = [("Authorization", auth.as_str()), ("Content-Type", content_type)];
        let response: HttpResponse = self
            .http
            .send(method, path, &headers, body)
            .await
            .map_err(|e| format!("cannot reach the admin API at {}: {e}", self.http.base_url()))?;
        let value: Value = serde_json::from_str(&response.body).unwrap_or(Value::Null);
        if response.status >= 400 {
            let message = value["error"].as_str().unwrap_or(&response.body);
            let code = value["code"].as_str().unwrap_or("error");
            return Err(format!("{message} ({} {code})", response.status));
        }
        Ok((response.status, value))
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value, String> {
        self.call("POST", path, "application/json", body.to_string().as_bytes()).await
    }

    async fn get(&self, path: &str) -> Result<Value, String> {
        self.call("GET", path, "application/json", b"").await
    }

    /// Every audit entry, oldest first, read a page at a time.
    async fn audit(&self) -> Result<Vec<Value>, String> {
        let mut entries = Vec::new();
        let mut after = 0;
        loop {
            let page = self.get(&format!("/v1/audit?after={after}&limit=1000")).await?;
            let page = page["entries"].as_array().cloned().unwrap_or_default();
            let Some(last) = page.last().and_then(|e| e["seq"].as_u64()) else { break };
            after = last;
            let full = page.len() == 1000;
            entries.extend(page);
            if !full {
                break;
            }
        }
        Ok(entries)
    }
}

fn describe_deployment(d: &Value) -> String {
    let previous: Vec<&str> = d["previous"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    let mut line = format!("{}: {} is live", d["plugin"].as_str().unwrap_or("?"), d["live"].as_str().unwrap_or("?"));
    if let Some(last) = previous.last() {
        line.push_str(&format!(" (rollback returns to {last})"));
    }
    let c = &d["candidate"];
    if !c.is_null() {
        line.push_str(&format!("; {} is the {}", c["version"].as_str().unwrap_or("?"), mode_text(c)));
        let stats = &c["stats"];
        if !stats.is_null() {
            let (inputs, failed) = (stats["inputs"].as_u64().unwrap_or(0), stats["failed"].as_u64().unwrap_or(0));
            let rate =
                if inputs > 0 { format!(" ({:.1}%)", failed as f64 * 100.0 / inputs as f64) } else { String::new() };
            let threshold = format!(
                "rolled back above {:.1}% once it has seen {} inputs",
                c["max_error_rate"].as_f64().unwrap_or(0.0) * 100.0,
                c["min_inputs"]
            );
            match c["mode"].as_str() {
                Some("canary") => line.push_str(&format!("\n  canary: {inputs} inputs, {failed} failed{rate}; {threshold}")),
                _ => line.push_str(&format!(
                    "\n  shadow: {inputs} inputs, {failed} failed{rate}; {} compared with the live outputs, {} differ; {threshold}",
                    stats["compared"], stats["differing"]
                )),
            }
            for sample in stats["samples"].as_array().into_iter().flatten().take(5) {
                line.push_str(&format!("\n  record {}:", sample["record"].as_str().unwrap_or("?")));
                for change in sample["changes"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                    line.push_str(&format!("\n    {change}"));
                }
            }
        }
    }
    let last = &d["last_candidate"];
    if !last.is_null() {
        let outcome = match last["outcome"].as_str() {
            Some("rolled_back") => "rolled back automatically",
            Some("replaced") => "ended",
            Some(other) => other,
            None => "ended",
        };
        line.push_str(&format!(
            "\n  last candidate: {} ({}) {outcome} at {} by {}",
            last["version"].as_str().unwrap_or("?"),
            mode_text(last),
            last["at"].as_str().unwrap_or("?"),
            last["actor"].as_str().unwrap_or("?")
        ));
        if let Some(reason) = last["reason"].as_str() {
            line.push_str(&format!(": {reason}"));
        }
        line.push_str(&format!(" [{} inputs, {} failed", last["inputs"], last["failed"]));
        if last["mode"] == "shadow" {
            line.push_str(&format!(", {} compared, {} differ", last["compared"], last["differing"]));
        }
        line.push(']');
    }
    line
}

/// `canary on 10% of keys` or `shadow`, of a candidate or its outcome.
fn mode_text(candidate: &Value) -> String {
    match candidate["mode"].as_str() {
        Some("canary") => format!("canary on {}% of keys", candidate["percent"]),
        _ => "shadow".to_owned(),
    }
}

async fn run_command(cmd: AdminCommand) -> Result<String, String> {
    match cmd {
        AdminCommand::Delete { name, version, admin } => {
            let path = format!("/v1/plugins/{name}/versions/{}", weir_client::percent_encode(&version));
            Client::new(&admin)?.call("DELETE", &path, "application/json", b"").await?;
            Ok(format!("{name}@{version} deleted"))
        }
        AdminCommand::Audit { name, limit, admin } => {
            let entries = Client::new(&admin)?.audit().await?;
            let of_plugin = |e: &&Value| {
                let target = e["target"].as_str().unwrap_or_default();
                name.as_ref().is_none_or(|n| target == n || target.starts_with(&format!("{n}@")))
            };
            let shown: Vec<&Value> = entries.iter().filter(of_plugin).collect();
            let lines: Vec<String> = shown[shown.len().saturating_sub(limit)..]
                .iter()
                .map(|e| {
                    format!(
                        "{} {} {} {}: {}",
                        e["at"].as_str().unwrap_or("?"),
                        e["actor"].as_str().unwrap_or("?"),
                        e["action"].as_str().unwrap_or("?"),
                        e["target"].as_str().unwrap_or("?"),
                        // One line per entry: a refusal's full report is in the API's answer.
                        e["result"].as_str().unwrap_or("?").lines().next().unwrap_or_default()
                    )
                })
                .collect();
            Ok(if lines.is_empty() { "no audit entries".to_owned() } else { lines.join("\n") })
        }
        AdminCommand::Upload { component, name, version, description, input, expect, lookup, set, admin } => {
            let client = Client::new(&admin)?;
            let mut config = serde_json::Map::new();
            for pair in &set {
                let (key, value) = pair
                    .split_once('=')
                    .filter(|(key, _)| !key.is_empty())
                    .ok_or_else(|| format!("--set {pair:?}: expected KEY=VALUE, e.g. --set drop_test_orders=false"))?;
                config.insert(key.to_owned(), json!(value));
            }
            let bytes = std::fs::read(&component).map_err(|e| format!("cannot read {}: {e}", component.display()))?;
            let mut path =
                format!("/v1/plugins/{name}/versions?description={}", weir_client::percent_encode(&description));
            if let Some(version) = &version {
                path.push_str(&format!("&version={}", weir_client::percent_encode(version)));
            }
            let (status, record) = client.call_with_status("POST", &path, "application/wasm", &bytes).await?;
            let created = status == 201;
            let version = record["version"].as_str().unwrap_or("?").to_owned();
            let verb = if created { "uploaded" } else { "already uploaded (the same bytes)" };
            let mut out = format!(
                "{verb} {name}@{version}: {} plugin, weir:plugin@{}, {} KiB, sha256 {}",
                record["world"].as_str().unwrap_or("?"),
                record["wit_version"].as_str().unwrap_or("?"),
                record["size"].as_u64().unwrap_or(0) / 1024,
                record["sha256"].as_str().unwrap_or("?"),
            );
            for warning in record["warnings"].as_array().into_iter().flatten().filter_map(|w| w.as_str()) {
                out.push_str(&format!("\nwarning: {warning}"));
            }
            // The configuration first: the fixtures gate runs the version with it.
            if !set.is_empty() {
                let path = format!("/v1/plugins/{name}/versions/{}/config", weir_client::percent_encode(&version));
                client
                    .call("PUT", &path, "application/json", serde_json::Value::Object(config).to_string().as_bytes())
                    .await?;
                out.push_str(&format!("\nconfiguration set: {}", set.join(", ")));
            }
            if let (Some(input), Some(expect)) = (input, expect) {
                let read =
                    |p: &PathBuf| std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()));
                let name_of = |p: &PathBuf| p.display().to_string();
                let mut fixtures = json!({
                    "input": read(&input)?,
                    "expected": read(&expect)?,
                    "files": { "input": name_of(&input), "expected": name_of(&expect) },
                });
                if let Some(lookup) = lookup {
                    let text = read(&lookup)?;
                    fixtures["lookup"] =
                        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", lookup.display()))?;
                    fixtures["files"]["lookup"] = json!(name_of(&lookup));
                }
                if input.extension().is_some_and(|e| e == "csv") {
                    fixtures["content_type"] = json!("text/csv");
                }
                let path = format!("/v1/plugins/{name}/versions/{}/fixtures", weir_client::percent_encode(&version));
                if let Err(refused) =
                    client.call("PUT", &path, "application/json", fixtures.to_string().as_bytes()).await
                {
                    // A version this upload created is not kept with fixtures it fails: the
                    // upload as a whole is refused.
                    let kept = if created {
                        let delete = format!("/v1/plugins/{name}/versions/{}", weir_client::percent_encode(&version));
                        match client.call("DELETE", &delete, "application/json", b"").await {
                            Ok(_) => format!("the upload was refused: {name}@{version} was not kept"),
                            Err(e) => format!("{name}@{version} stays uploaded without fixtures ({e})"),
                        }
                    } else {
                        format!("{name}@{version} keeps the fixtures it had")
                    };
                    return Err(format!("{out}\n{refused}\n{kept}"));
                }
                out.push_str(if created {
                    "\nfixtures pass: attached, they run again before this version takes traffic"
                } else {
                    "\nfixtures pass: they replace the version's fixtures"
                });
            }
            Ok(out)
        }
        AdminCommand::List { admin } => {
            let client = Client::new(&admin)?;
            let plugins = client.get("/v1/plugins").await?;
            let deployments = client.get("/v1/deployments").await?;
            let mut out = format!("{:<28} {:<11} {:<10} versions", "plugin", "world", "live");
            for plugin in plugins["plugins"].as_array().into_iter().flatten() {
                let name = plugin["name"].as_str().unwrap_or("?");
                let live = deployments["deployments"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|d| d["plugin"] == name)
                    .and_then(|d| d["live"].as_str())
                    .unwrap_or("-");
                let versions: Vec<&str> =
                    plugin["versions"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
                out.push_str(&format!(
                    "\n{name:<28} {:<11} {live:<10} {}",
                    plugin["world"].as_str().unwrap_or("?"),
                    versions.join(", ")
                ));
            }
            Ok(out)
        }
        AdminCommand::Status { name, admin } => {
            Ok(describe_deployment(&Client::new(&admin)?.get(&format!("/v1/deployments/{name}")).await?))
        }
        AdminCommand::Activate { name, version, admin } => {
            let client = Client::new(&admin)?;
            client.post(&format!("/v1/deployments/{name}/activate"), json!({ "version": version })).await?;
            Ok(describe_deployment(&client.get(&format!("/v1/deployments/{name}")).await?))
        }
        AdminCommand::Rollback { name, admin } => {
            let client = Client::new(&admin)?;
            client.post(&format!("/v1/deployments/{name}/rollback"), json!({})).await?;
            Ok(describe_deployment(&client.get(&format!("/v1/deployments/{name}")).await?))
        }
        AdminCommand::Canary { name, version, percent, max_error_rate, min_inputs, admin } => {
            let client = Client::new(&admin)?;
            let body = json!({
                "version": version, "percent": percent, "max_error_rate": max_error_rate, "min_inputs": min_inputs,
            });
            client.post(&format!("/v1/deployments/{name}/canary"), body).await?;
            Ok(describe_deployment(&client.get(&format!("/v1/deployments/{name}")).await?))
        }
        AdminCommand::Shadow { name, version, max_error_rate, min_inputs, admin } => {
            let client = Client::new(&admin)?;
            let body = json!({ "version": version, "max_error_rate": max_error_rate, "min_inputs": min_inputs });
            client.post(&format!("/v1/deployments/{name}/shadow"), body).await?;
            Ok(describe_deployment(&client.get(&format!("/v1/deployments/{name}")).await?))
        }
        AdminCommand::Promote { name, admin } => {
            let client = Client::new(&admin)?;
            client.post(&format!("/v1/deployments/{name}/promote"), json!({})).await?;
            Ok(describe_deployment(&client.get(&format!("/v1/deployments/{name}")).await?))
        }
        AdminCommand::Abort { name, admin } => {
            let client = Client::new(&admin)?;
            client.post(&format!("/v1/deployments/{name}/abort"), json!({})).await?;
            Ok(describe_deployment(&client.get(&format!("/v1/deployments/{name}")).await?))
        }
    }
}

/// Runs an admin command: prints the outcome, exits 0, or prints the host's refusal and
/// exits 1.
pub(crate) async fn run(cmd: AdminCommand) -> ExitCode {
    match run_command(cmd).await {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(1)
        }
    }
}
