//! A fault-injecting HTTP proxy in front of the local AWS servers, for the failures they
//! cannot produce on demand: a server that goes away and comes back, throttling
//! (`ProvisionedThroughputExceededException`), expired shard iterators, and partial
//! failures of the batch APIs (`PutRecords`, `PutRecordBatch`) where only some entries
//! reach the server and the others come back failed.
//!
//! It speaks just enough HTTP/1.1 for the AWS SDKs' JSON calls (requests with a
//! `Content-Length`, keep-alive on the client side, one upstream connection per request)
//! and decides by the `X-Amz-Target` header.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy does to calls, changed while it runs.
#[derive(Debug, Default, Clone)]
pub struct Faults {
    /// Every connection is closed at once, as if the server were gone.
    pub down: bool,
    /// Per operation (`GetRecords`, `PutRecords`…): every Nth call is answered 400
    /// `ProvisionedThroughputExceededException` without reaching the server.
    pub throttle_every: BTreeMap<&'static str, u64>,
    /// Per operation: every Nth call is answered 400 `ExpiredIteratorException`.
    pub expire_every: BTreeMap<&'static str, u64>,
    /// `PutRecords` and `PutRecordBatch`: every other entry (the 2nd, 4th…) is kept
    /// from the server and answered failed, the others forwarded.
    pub fail_every_other_entry: bool,
    /// S3: every Nth `PUT` is answered 503 `SlowDown` without reaching the server.
    pub s3_slow_down_every: u64,
    /// DynamoDB `BatchWriteItem`: every other item (the 2nd, 4th…) of each table is kept
    /// from the server and answered in `UnprocessedItems`, as DynamoDB does when it
    /// throttles part of a batch.
    pub unprocess_every_other_item: bool,
}

/// Calls seen, per operation, and faults injected.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    pub calls: BTreeMap<String, u64>,
    pub throttled: u64,
    pub expired: u64,
    pub entries_failed: u64,
    pub refused_connections: u64,
}

#[derive(Debug, Default)]
struct State {
    faults: Faults,
    seen: Seen,
}

/// A running proxy to `upstream` (`http://127.0.0.1:PORT`).
#[derive(Debug, Clone)]
pub struct FaultProxy {
    /// Where clients connect: `http://127.0.0.1:PORT`.
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` on a thread of its own (so synchronous tests can use
    /// it); it runs until the test process ends.
    pub fn start(upstream: &str) -> FaultProxy {
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = TcpListener::from_std(listener).unwrap();
                loop {
                    let Ok((client, _)) = listener.accept().await else { continue };
                    let (state, upstream) = (shared.clone(), upstream.clone());
                    tokio::spawn(async move {
                        let _ = serve(client, &upstream, &state).await;
                    });
                }
            });
        });
        FaultProxy { url, state }
    }

    /// Changes the faults.
    pub fn set(&self, change: impl FnOnce(&mut Faults)) {
        change(&mut self.state.lock().unwrap().faults);
    }

    /// What was seen so far.
    pub fn seen(&self) -> Seen {
        self.state.lock().unwrap().seen.clone()
    }
}

/// One HTTP message: its head (start line and headers, without the blank line) and body.
pub(crate) struct Message {
    pub(crate) head: String,
    pub(crate) body: Vec<u8>,
}

impl Message {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }

    /// The message with `body` and its `Content-Length` set to match.
    fn with_body(&self, body: Vec<u8>) -> Message {
        let head: Vec<String> = self
            .head
            .lines()
            .map(|line| {
                if line.split_once(':').is_some_and(|(key, _)| key.trim().eq_ignore_ascii_case("content-length")) {
                    format!("Content-Length: {}", body.len())
                } else {
                    line.to_owned()
                }
            })
            .collect();
        Message { head: head.join("\r\n"), body }
    }

    pub(crate) fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.head.len() + 4 + self.body.len());
        out.extend_from_slice(self.head.as_bytes());
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

/// Reads one message (`Content-Length` or chunked body); `None` at a clean end.
pub(crate) async fn read_message(
    stream: &mut (impl AsyncRead + Unpin),
    buffer: &mut Vec<u8>,
) -> std::io::Result<Option<Message>> {
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let mut chunk = [0u8; 16 << 10];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    buffer.drain(..head_end + 4);
    let mut message = Message { head, body: Vec::new() };
    if message.header("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        // Decoded into a plain body; the head then says Content-Length instead.
        loop {
            let line_end = loop {
                if let Some(at) = buffer.windows(2).position(|w| w == b"\r\n") {
                    break at;
                }
                fill(stream, buffer).await?;
            };
            let size = usize::from_str_radix(String::from_utf8_lossy(&buffer[..line_end]).trim(), 16)
                .map_err(std::io::Error::other)?;
            buffer.drain(..line_end + 2);
            while buffer.len() < size + 2 {
                fill(stream, buffer).await?;
            }
            message.body.extend_from_slice(&buffer[..size]);
            buffer.drain(..size + 2);
            if size == 0 {
                break;
            }
        }
        let head: Vec<&str> =
            message.head.lines().filter(|l| !l.to_ascii_lowercase().starts_with("transfer-encoding")).collect();
        message.head = format!("{}\r\nContent-Length: {}", head.join("\r\n"), message.body.len());
        return Ok(Some(message));
    }
    let length: usize = message.header("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
    while buffer.len() < length {
        fill(stream, buffer).await?;
    }
    message.body = buffer.drain(..length).collect();
    Ok(Some(message))
}

async fn fill(stream: &mut (impl AsyncRead + Unpin), buffer: &mut Vec<u8>) -> std::io::Result<()> {
    let mut chunk = [0u8; 16 << 10];
    let n = stream.read(&mut chunk).await?;
    if n == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    buffer.extend_from_slice(&chunk[..n]);
    Ok(())
}

fn error_response(kind: &str, message: &str) -> Message {
    let body = serde_json::json!({"__type": kind, "message": message}).to_string().into_bytes();
    Message {
        head: format!(
            "HTTP/1.1 400 Bad Request\r\nContent-Type: application/x-amz-json-1.1\r\nx-amzn-ErrorType: {kind}\r\nContent-Length: {}",
            body.len()
        ),
        body,
    }
}

async fn serve(mut client: TcpStream, upstream: &str, state: &Mutex<State>) -> std::io::Result<()> {
    let mut buffer = Vec::new();
    loop {
        if state.lock().unwrap().faults.down {
            state.lock().unwrap().seen.refused_connections += 1;
            return Ok(());
        }
        let Some(request) = read_message(&mut client, &mut buffer).await? else { return Ok(()) };
        let operation = request.header("x-amz-target").and_then(|t| t.rsplit('.').next()).unwrap_or("").to_owned();
        let (faults, n) = {
            let mut state = state.lock().unwrap();
            let calls = state.seen.calls.entry(operation.clone()).or_default();
            *calls += 1;
            let n = *calls;
            (state.faults.clone(), n)
        };
        if faults.down {
            state.lock().unwrap().seen.refused_connections += 1;
            return Ok(());
        }
        let s3_put = operation.is_empty() && request.head.starts_with("PUT ");
        let s3_puts = if s3_put {
            let mut state = state.lock().unwrap();
            let puts = state.seen.calls.entry("S3 PUT".into()).or_default();
            *puts += 1;
            *puts
        } else {
            0
        };
        let every =
            |rules: &BTreeMap<&'static str, u64>| rules.get(operation.as_str()).is_some_and(|&k| k > 0 && n % k == 0);
        let response = if s3_put && faults.s3_slow_down_every > 0 && s3_puts % faults.s3_slow_down_every == 0 {
            state.lock().unwrap().seen.throttled += 1;
            let body = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate (injected by the test proxy)</Message></Error>".to_vec();
            Message {
                head: format!(
                    "HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nContent-Length: {}",
                    body.len()
                ),
                body,
            }
        } else if every(&faults.throttle_every) {
            state.lock().unwrap().seen.throttled += 1;
            error_response(
                "ProvisionedThroughputExceededException",
                "Rate exceeded for shard (injected by the test proxy)",
            )
        } else if every(&faults.expire_every) {
            state.lock().unwrap().seen.expired += 1;
            error_response("ExpiredIteratorException", "Iterator expired (injected by the test proxy)")
        } else if faults.fail_every_other_entry && (operation == "PutRecords" || operation == "PutRecordBatch") {
            partial(&request, &operation, upstream, state).await?
        } else if faults.unprocess_every_other_item && operation == "BatchWriteItem" {
            unprocessed(&request, upstream, state).await?
        } else {
            forward(&request, upstream).await?
        };
        client.write_all(&response.bytes()).await?;
    }
}

async fn forward(request: &Message, upstream: &str) -> std::io::Result<Message> {
    let mut server = TcpStream::connect(upstream).await?;
    server.write_all(&request.bytes()).await?;
    let mut buffer = Vec::new();
    read_message(&mut server, &mut buffer).await?.ok_or_else(|| std::io::ErrorKind::UnexpectedEof.into())
}

/// Forwards the odd entries of a `PutRecords` / `PutRecordBatch` call and answers the
/// even ones failed, in the response shape of the operation.
async fn partial(request: &Message, operation: &str, upstream: &str, state: &Mutex<State>) -> std::io::Result<Message> {
    let mut call: serde_json::Value = serde_json::from_slice(&request.body).map_err(std::io::Error::other)?;
    let entries = call["Records"].as_array().cloned().unwrap_or_default();
    if entries.len() < 2 {
        return forward(request, upstream).await;
    }
    let kept: Vec<serde_json::Value> = entries.iter().step_by(2).cloned().collect();
    call["Records"] = serde_json::Value::Array(kept);
    let answered = forward(&request.with_body(call.to_string().into_bytes()), upstream).await?;
    let answer: serde_json::Value = match serde_json::from_slice(&answered.body) {
        Ok(answer) if answered.head.starts_with("HTTP/1.1 200") => answer,
        _ => return Ok(answered),
    };
    let (list, count) = if operation == "PutRecords" {
        ("Records", "FailedRecordCount")
    } else {
        ("RequestResponses", "FailedPutCount")
    };
    let mut forwarded = answer[list].as_array().cloned().unwrap_or_default().into_iter();
    let mut merged = Vec::with_capacity(entries.len());
    let mut failed = answer[count].as_u64().unwrap_or(0);
    for i in 0..entries.len() {
        if i % 2 == 0 {
            merged.push(
                forwarded
                    .next()
                    .unwrap_or(serde_json::json!({"ErrorCode": "InternalFailure", "ErrorMessage": "missing"})),
            );
        } else {
            failed += 1;
            merged.push(serde_json::json!({
                "ErrorCode": if operation == "PutRecords" { "ProvisionedThroughputExceededException" } else { "ServiceUnavailableException" },
                "ErrorMessage": "Slow down (injected by the test proxy)"
            }));
        }
    }
    state.lock().unwrap().seen.entries_failed += (entries.len() / 2) as u64;
    let mut answer = answer;
    answer[list] = serde_json::Value::Array(merged);
    answer[count] = serde_json::json!(failed);
    Ok(answered.with_body(answer.to_string().into_bytes()))
}

/// Forwards the odd items of each table of a `BatchWriteItem` call and answers the even
/// ones in `UnprocessedItems`.
async fn unprocessed(request: &Message, upstream: &str, state: &Mutex<State>) -> std::io::Result<Message> {
    let mut call: serde_json::Value = serde_json::from_slice(&request.body).map_err(std::io::Error::other)?;
    let mut held = serde_json::Map::new();
    let mut count = 0;
    if let Some(tables) = call["RequestItems"].as_object_mut() {
        for (table, items) in tables.iter_mut() {
            let all = items.as_array().cloned().unwrap_or_default();
            if all.len() < 2 {
                continue;
            }
            let (kept, kept_back): (Vec<_>, Vec<_>) = all.into_iter().enumerate().partition(|(i, _)| i % 2 == 0);
            count += kept_back.len();
            *items = serde_json::Value::Array(kept.into_iter().map(|(_, item)| item).collect());
            held.insert(table.clone(), serde_json::Value::Array(kept_back.into_iter().map(|(_, item)| item).collect()));
        }
    }
    if held.is_empty() {
        return forward(request, upstream).await;
    }
    let answered = forward(&request.with_body(call.to_string().into_bytes()), upstream).await?;
    let mut answer: serde_json::Value = match serde_json::from_slice(&answered.body) {
        Ok(answer) if answered.head.starts_with("HTTP/1.1 200") => answer,
        _ => return Ok(answered),
    };
    answer["UnprocessedItems"] = serde_json::Value::Object(held);
    state.lock().unwrap().seen.entries_failed += count as u64;
    Ok(answered.with_body(answer.to_string().into_bytes()))
}
