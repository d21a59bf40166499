//! `weir tail STREAM [--events|--dead-letters|--aggregates|--raw] [--follow]`: what a
//! running host's lake holds of a stream, one JSON object per line, the last `-n` first
//! and then, with `--follow`, each one committed since — through
//! `GET /v1/lake/{stream}/{kind}`, so it works wherever the host does (local lake or S3).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use weir_client::{Client, ClientOptions};

/// Rows asked for per request.
const PAGE_ROWS: usize = 1000;

#[derive(Debug, Args)]
pub(crate) struct TailArgs {
    /// The stream, e.g. orders.
    stream: String,
    /// Events out of the plugin chain (the default).
    #[arg(long, group = "kind")]
    events: bool,
    /// Records a plugin, the aggregator or a sink refused, with plugin, stage and reason.
    #[arg(long, group = "kind")]
    dead_letters: bool,
    /// Aggregates the aggregator emitted.
    #[arg(long, group = "kind")]
    aggregates: bool,
    /// Raw records as they arrived.
    #[arg(long, group = "kind")]
    raw: bool,
    /// How many of the newest to print first (0: none, only what comes with --follow).
    #[arg(short = 'n', long, default_value_t = 10)]
    lines: usize,
    /// Keep printing what is committed from now on, until interrupted.
    #[arg(short = 'f', long)]
    follow: bool,
    /// The first day (YYYY-MM-DD, UTC) to look at for the newest (default: yesterday).
    #[arg(long)]
    since: Option<String>,
    /// Dead letters of this plugin only: NAME or NAME@VERSION.
    #[arg(long, requires = "dead_letters")]
    plugin: Option<String>,
    /// Dead letters of this stage only: parse, enrich, aggregate, sink, ….
    #[arg(long, requires = "dead_letters")]
    stage: Option<String>,
    /// Dead letters whose reason contains this text (any case).
    #[arg(long, requires = "dead_letters")]
    reason: Option<String>,
    /// How often --follow asks the host for more, in milliseconds.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(100..=60_000))]
    poll_ms: u64,
    /// The host's URL: http://HOST:PORT or https://HOST:PORT.
    #[arg(long, env = "WEIR_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// A PEM file of CA certificates to trust for an https:// URL.
    #[arg(long, env = "WEIR_CA")]
    ca: Option<PathBuf>,
}

impl TailArgs {
    fn kind(&self) -> &'static str {
        if self.dead_letters {
            "dead-letters"
        } else if self.aggregates {
            "aggregates"
        } else if self.raw {
            "raw"
        } else {
            "events"
        }
    }
}

pub(crate) async fn run(args: TailArgs) -> ExitCode {
    match tail(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// One page of the lake route.
struct Page {
    rows: Vec<serde_json::Value>,
    next: String,
    more: bool,
}

async fn tail(args: TailArgs) -> Result<(), String> {
    let client = Client::new(&args.url, ClientOptions { extra_ca: args.ca.clone(), ..Default::default() })
        .map_err(|e| format!("--url: {e}"))?;
    // The read role reads; an admin token does too.
    let token = ["WEIR_READ_TOKEN", "WEIR_ADMIN_TOKEN"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|t| !t.is_empty()));
    let mut base = format!("/v1/lake/{}/{}?limit={PAGE_ROWS}", weir_client::percent_encode(&args.stream), args.kind());
    for (name, value) in [("plugin", &args.plugin), ("stage", &args.stage), ("reason", &args.reason)] {
        if let Some(value) = value {
            base.push_str(&format!("&{name}={}", weir_client::percent_encode(value)));
        }
    }
    let since = args.since.clone().unwrap_or_else(yesterday);
    let get = |after: Option<&str>| {
        let path = match after {
            Some(after) => format!("{base}&after={}", weir_client::percent_encode(after)),
            None => format!("{base}&since={}", weir_client::percent_encode(&since)),
        };
        page(&client, path, token.clone())
    };
    // The newest `lines`: every page up to now, keeping the last ones.
    let mut newest: VecDeque<serde_json::Value> = VecDeque::with_capacity(args.lines.min(PAGE_ROWS));
    let mut cursor: Option<String> = None;
    loop {
        let page = get(cursor.as_deref()).await?;
        for row in page.rows {
            if args.lines > 0 {
                if newest.len() == args.lines {
                    newest.pop_front();
                }
                newest.push_back(row);
            }
        }
        cursor = Some(page.next);
        if !page.more {
            break;
        }
    }
    for row in newest {
        println!("{row}");
    }
    if !args.follow {
        return Ok(());
    }
    loop {
        tokio::time::sleep(Duration::from_millis(args.poll_ms)).await;
        let page = get(cursor.as_deref()).await?;
        for row in &page.rows {
            println!("{row}");
        }
        cursor = Some(page.next);
    }
}

async fn page(client: &Client, path: String, token: Option<String>) -> Result<Page, String> {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    let response = client.send("GET", &path, &headers, b"").await.map_err(|e| e.to_string())?;
    let body: serde_json::Value = serde_json::from_str(&response.body).unwrap_or_default();
    let message = body["error"].as_str().unwrap_or(response.body.trim()).to_owned();
    match response.status {
        200 => Ok(Page {
            rows: body["rows"].as_array().cloned().unwrap_or_default(),
            next: body["next"].as_str().unwrap_or_default().to_owned(),
            more: body["more"].as_bool().unwrap_or(false),
        }),
        401 | 403 => Err(format!("refused ({}: {message}); set WEIR_READ_TOKEN to a read token", response.status)),
        status => Err(format!("the host answered {status}: {message}")),
    }
}

/// Yesterday's date (UTC), `YYYY-MM-DD`.
fn yesterday() -> String {
    let day = Duration::from_secs(86_400).as_micros() as i64;
    weir_sinks::date_of(weir_pipeline::now_micros() - day)
}
