//! `weir send STREAM [FILE|-]`: a producer for a running host, like `rpk topic produce`:
//! NDJSON records from a file or stdin, in requests of bounded size to the ingest route,
//! each acknowledged only once durable; backpressure is waited out, a refusal stops with
//! the lines it concerns.

use std::collections::BTreeMap;
use std::io::BufRead as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use weir_client::{Client, ClientOptions};

/// Body bytes per request: below the host's default `server.max_request_bytes` (5 MiB)
/// with room for a long last line.
const MAX_BODY_BYTES: usize = 4 << 20;

/// Most times one request is retried through backpressure (503/429) before giving up.
const MAX_RETRIES: u32 = 120;

#[derive(Debug, Args)]
pub(crate) struct SendArgs {
    /// The stream, e.g. orders.
    stream: String,
    /// NDJSON records, one per line ("-" or nothing: stdin).
    file: Option<PathBuf>,
    /// Partition each record by this member of its JSON (else records carry no key).
    #[arg(long)]
    key_field: Option<String>,
    /// Records per request (1 to 10 000).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    batch_records: u32,
    /// The host's ingest URL: http://HOST:PORT or https://HOST:PORT.
    #[arg(long, env = "WEIR_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// A PEM file of CA certificates to trust for an https:// URL.
    #[arg(long, env = "WEIR_CA")]
    ca: Option<PathBuf>,
}

pub(crate) async fn run(args: SendArgs) -> ExitCode {
    match send(args).await {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// One request's records: their lines (1-based, in the input) and the body.
struct Request {
    first_line: usize,
    last_line: usize,
    records: usize,
    body: Vec<u8>,
}

async fn send(args: SendArgs) -> Result<String, String> {
    let options = ClientOptions { extra_ca: args.ca.clone(), ..Default::default() };
    let client = Client::new(&args.url, options).map_err(|e| e.to_string())?;
    let token = std::env::var("WEIR_INGEST_TOKEN").ok().filter(|t| !t.is_empty());
    let mut path = format!("/v1/streams/{}/records", weir_client::percent_encode(&args.stream));
    if let Some(field) = &args.key_field {
        path.push_str(&format!("?key_field={}", weir_client::percent_encode(field)));
    }
    let input: Box<dyn std::io::BufRead> = match args.file.as_deref() {
        None => Box::new(std::io::stdin().lock()),
        Some(file) if file.as_os_str() == "-" => Box::new(std::io::stdin().lock()),
        Some(file) => Box::new(std::io::BufReader::new(
            std::fs::File::open(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?,
        )),
    };
    let mut sent = 0usize;
    let mut requests = 0usize;
    let mut per_shard: BTreeMap<String, usize> = BTreeMap::new();
    let mut pending = Request { first_line: 1, last_line: 0, records: 0, body: Vec::new() };
    for (index, line) in input.split(b'\n').enumerate() {
        let line = line.map_err(|e| format!("cannot read line {}: {e}", index + 1))?;
        let line = line.strip_suffix(b"\r").unwrap_or(&line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if line.len() + 1 > MAX_BODY_BYTES {
            return Err(format!(
                "line {} is {} bytes, over the {MAX_BODY_BYTES} bytes one request carries; nothing after it was sent \
                 ({sent} records before it were)",
                index + 1,
                line.len()
            ));
        }
        if pending.records == args.batch_records as usize || pending.body.len() + line.len() + 1 > MAX_BODY_BYTES {
            let full = std::mem::replace(
                &mut pending,
                Request { first_line: index + 1, last_line: 0, records: 0, body: Vec::new() },
            );
            deliver(&client, &path, token.as_deref(), &args.stream, &full, sent, &mut per_shard).await?;
            sent += full.records;
            requests += 1;
        }
        if pending.records == 0 {
            pending.first_line = index + 1;
        }
        pending.body.extend_from_slice(line);
        pending.body.push(b'\n');
        pending.records += 1;
        pending.last_line = index + 1;
    }
    if pending.records > 0 {
        deliver(&client, &path, token.as_deref(), &args.stream, &pending, sent, &mut per_shard).await?;
        sent += pending.records;
        requests += 1;
    }
    let shards: Vec<String> = per_shard.iter().map(|(shard, n)| format!("shard {shard}: {n}")).collect();
    Ok(format!(
        "sent {sent} records to stream {} in {requests} requests, each acknowledged durable{}",
        args.stream,
        if shards.is_empty() { String::new() } else { format!(" ({})", shards.join(", ")) }
    ))
}

/// Sends one request, waiting out backpressure (503 / 429 with `Retry-After`).
async fn deliver(
    client: &Client,
    path: &str,
    token: Option<&str>,
    stream: &str,
    request: &Request,
    sent_before: usize,
    per_shard: &mut BTreeMap<String, usize>,
) -> Result<(), String> {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/x-ndjson")];
    if let Some(auth) = &auth {
        headers.push(("Authorization", auth.as_str()));
    }
    let lines = format!("lines {}-{}", request.first_line, request.last_line);
    let unsent = |why: String| {
        format!("{why}; {lines} and the rest were not sent ({sent_before} records before them were, each durable)")
    };
    for attempt in 0..=MAX_RETRIES {
        let response = client.send("POST", path, &headers, &request.body).await.map_err(|e| unsent(e.to_string()))?;
        match response.status {
            200 => {
                let body: serde_json::Value = serde_json::from_str(&response.body).unwrap_or_default();
                for seq in body["sequence_numbers"].as_array().into_iter().flatten() {
                    *per_shard.entry(seq["shard"].to_string().trim_matches('"').to_owned()).or_default() += 1;
                }
                return Ok(());
            }
            429 | 503 if attempt < MAX_RETRIES => {
                let wait = response.header("retry-after").and_then(|s| s.trim().parse::<u64>().ok()).unwrap_or(1);
                tokio::time::sleep(Duration::from_secs(wait.clamp(1, 30))).await;
            }
            404 => {
                return Err(unsent(format!(
                    "the host has no stream {stream:?} (404: {}); `weir validate` lists the configured streams",
                    response.body.trim()
                )));
            }
            401 | 403 => {
                return Err(unsent(format!(
                    "refused ({}: {}); set WEIR_INGEST_TOKEN to an ingest token",
                    response.status,
                    response.body.trim()
                )));
            }
            status => return Err(unsent(format!("the host answered {status}: {}", response.body.trim()))),
        }
    }
    Err(unsent(format!("the host stayed under backpressure through {MAX_RETRIES} retries")))
}
