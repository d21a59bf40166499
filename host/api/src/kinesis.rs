//! A Kinesis-compatible ingest endpoint: `weir serve` answers the Kinesis `PutRecord`
//! and `PutRecords` calls (the AWS JSON 1.1 protocol: `POST /` with `X-Amz-Target:
//! Kinesis_20131202.PutRecords`), so producers that already write to Kinesis — an AWS
//! SDK, the Kinesis agent, Fluent Bit's kinesis output — send to weir by changing only
//! their endpoint. Records go through the same ingest path as `POST
//! /v1/streams/{stream}/records` (limits, backpressure, the durable log) and are
//! acknowledged only once appended. Answers and errors have Kinesis' shapes, so the
//! clients' own retry logic works: backpressure is `ProvisionedThroughputExceeded`.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::json;
use weir_config::Role;
use weir_log::{NewRecord, RecordPlace};
use weir_pipeline::IngestError;

use crate::body::{BodyError, read_body};
use crate::sigv4;
use crate::state::Api;

/// Kinesis' own limits, which its clients already respect.
const MAX_RECORDS: usize = 500;
const MAX_PARTITION_KEY_CHARS: usize = 256;
/// The content type the records get: Kinesis records carry none.
const CONTENT_TYPE: &str = "application/octet-stream";
const TARGET_PREFIX: &str = "Kinesis_20131202.";

/// An error as Kinesis answers it: `{"__type", "message"}` and `x-amzn-ErrorType`.
#[derive(Debug)]
pub(crate) struct KinesisError {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl KinesisError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self { status, kind, message: message.into() }
    }

    fn validation(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "ValidationException", message)
    }
}

impl IntoResponse for KinesisError {
    fn into_response(self) -> Response {
        let body = json!({"__type": self.kind, "message": self.message});
        let mut response = (self.status, amz_json(&body)).into_response();
        response.headers_mut().insert("x-amzn-ErrorType", HeaderValue::from_static(self.kind));
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

fn amz_json(body: &serde_json::Value) -> ([(header::HeaderName, &'static str); 1], String) {
    ([(header::CONTENT_TYPE, "application/x-amz-json-1.1")], body.to_string())
}

impl From<IngestError> for KinesisError {
    fn from(err: IngestError) -> Self {
        let message = err.to_string();
        match err {
            IngestError::UnknownStream { .. } => {
                Self::new(StatusCode::BAD_REQUEST, "ResourceNotFoundException", message)
            }
            IngestError::RecordTooLarge { .. } | IngestError::RequestTooLarge { .. } => Self::validation(message),
            IngestError::TooManyRecords { .. } | IngestError::Backpressure { .. } => {
                Self::new(StatusCode::BAD_REQUEST, "ProvisionedThroughputExceededException", message)
            }
            IngestError::ShuttingDown | IngestError::Log(weir_log::LogError::Interrupted { .. }) => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", message)
            }
            IngestError::Log(_) => Self::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalFailure", message),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutRecordInput {
    stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    stream_arn: Option<String>,
    data: String,
    partition_key: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutRecordsInput {
    stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    stream_arn: Option<String>,
    records: Vec<PutRecordsEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutRecordsEntry {
    data: String,
    partition_key: String,
}

/// The stream a call names, by `StreamName` or by the name in `StreamARN`
/// (`arn:aws:kinesis:REGION:ACCOUNT:stream/NAME`).
fn stream_of(name: Option<String>, arn: Option<String>) -> Result<String, KinesisError> {
    if let Some(name) = name {
        return Ok(name);
    }
    arn.as_deref()
        .and_then(|arn| arn.rsplit_once(":stream/").map(|(_, name)| name.to_owned()))
        .ok_or_else(|| KinesisError::validation("give StreamName or StreamARN"))
}

/// One record of a call, checked as Kinesis checks it.
fn record(index: usize, data: &str, partition_key: String, arrival_time: i64) -> Result<NewRecord, KinesisError> {
    let chars = partition_key.chars().count();
    if chars == 0 || chars > MAX_PARTITION_KEY_CHARS {
        return Err(KinesisError::validation(format!(
            "1 validation error detected: Value at 'records.{}.member.partitionKey' failed to satisfy constraint: \
             Member must have length between 1 and {MAX_PARTITION_KEY_CHARS} (it has {chars})",
            index + 1
        )));
    }
    let data = base64::engine::general_purpose::STANDARD.decode(data).map_err(|e| {
        KinesisError::new(
            StatusCode::BAD_REQUEST,
            "SerializationException",
            format!("record {} has Data that is not base64: {e}", index + 1),
        )
    })?;
    Ok(NewRecord {
        partition_key: Some(partition_key),
        data: data.into(),
        content_type: CONTENT_TYPE.into(),
        arrival_time,
    })
}

/// `shardId-000000000003` for the embedded log's shard `3`; other ids as they are.
fn shard_id(place: &RecordPlace) -> String {
    match place.shard.as_str().parse::<u64>() {
        Ok(n) => format!("shardId-{n:012}"),
        Err(_) => place.shard.as_str().to_owned(),
    }
}

/// `POST /` with an `X-Amz-Target` header: the Kinesis calls weir takes.
pub(crate) async fn endpoint(
    State(api): State<Arc<Api>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, KinesisError> {
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let operation = target.strip_prefix(TARGET_PREFIX).unwrap_or_default();
    if !matches!(operation, "PutRecord" | "PutRecords") {
        return Err(KinesisError::new(
            StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            format!(
                "weir's Kinesis endpoint takes {TARGET_PREFIX}PutRecord and {TARGET_PREFIX}PutRecords, not {target:?}; \
                 read the data through the stream's sinks"
            ),
        ));
    }
    if headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|t| t.contains("cbor")) {
        return Err(KinesisError::new(
            StatusCode::BAD_REQUEST,
            "SerializationException",
            "weir's Kinesis endpoint speaks AWS JSON 1.1, not CBOR; turn CBOR off in the client \
             (the Java SDK: aws.cborEnabled=false, or AWS_CBOR_DISABLE=1)",
        ));
    }
    // Base64 makes a request's records about 4/3 their size, plus their partition keys
    // and the JSON around them.
    let limits = api.limits();
    let limit = limits.max_request_bytes / 3 * 4 + MAX_RECORDS * (MAX_PARTITION_KEY_CHARS * 4 + 64) + (64 << 10);
    let body: Bytes = read_body(body, limit, limits.body_timeout).await.map_err(|error| match error {
        BodyError::TooLarge => KinesisError::validation(format!(
            "the request is over {limit} bytes (server.max_request_bytes of records, base64-encoded); split it"
        )),
        BodyError::TooSlow(limit) => KinesisError::new(
            StatusCode::REQUEST_TIMEOUT,
            "RequestTimeout",
            format!("the body did not arrive within {} s (server.body_timeout)", limit.as_secs_f64()),
        ),
        BodyError::Unreadable(reason) => {
            KinesisError::new(StatusCode::BAD_REQUEST, "SerializationException", format!("unreadable body: {reason}"))
        }
    })?;
    authenticate(&api, &method, &uri, &headers, &body)?;
    let not_json =
        |e: serde_json::Error| KinesisError::new(StatusCode::BAD_REQUEST, "SerializationException", e.to_string());
    let arrival_time = weir_pipeline::now_micros();
    if operation == "PutRecord" {
        let input: PutRecordInput = serde_json::from_slice(&body).map_err(not_json)?;
        let stream = stream_of(input.stream_name, input.stream_arn)?;
        let record = record(0, &input.data, input.partition_key, arrival_time)?;
        let appended = api.ingest(&stream, vec![record]).await?;
        let place = appended.first().ok_or_else(|| {
            KinesisError::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalFailure", "the log placed no record")
        })?;
        let answer =
            json!({"ShardId": shard_id(place), "SequenceNumber": place.position.as_str(), "EncryptionType": "NONE"});
        return Ok(amz_json(&answer).into_response());
    }
    let input: PutRecordsInput = serde_json::from_slice(&body).map_err(not_json)?;
    let stream = stream_of(input.stream_name, input.stream_arn)?;
    if input.records.is_empty() || input.records.len() > MAX_RECORDS {
        return Err(KinesisError::validation(format!(
            "1 validation error detected: Value at 'records' failed to satisfy constraint: Member must have length \
             between 1 and {MAX_RECORDS} (it has {})",
            input.records.len()
        )));
    }
    let records = input
        .records
        .into_iter()
        .enumerate()
        .map(|(i, entry)| record(i, &entry.data, entry.partition_key, arrival_time))
        .collect::<Result<Vec<_>, _>>()?;
    // Like Kinesis, a PutRecords call is not all or nothing: under backpressure the
    // records that fit below `max_pending_records` are taken and the rest answered
    // `ProvisionedThroughputExceededException`, which clients resend (only those), so a
    // producer makes progress as consumers catch up.
    let mut records = records;
    let count = records.len();
    let limit = api.limits().max_pending_records;
    let room = match api.pending(&stream).await {
        Ok(Some(pending)) => limit.saturating_sub(pending),
        _ => limit,
    };
    let fit = usize::try_from(room).unwrap_or(usize::MAX).min(count);
    let refused = records.split_off(fit);
    let throttled =
        |message: String| json!({"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": message});
    let backpressure = || {
        format!(
            "stream {stream} has too many records waiting to be processed (server.max_pending_records {limit}); resend after a pause"
        )
    };
    let mut results: Vec<serde_json::Value> = Vec::with_capacity(count);
    if !records.is_empty() {
        let taken = records.len();
        match api.ingest(&stream, records).await {
            Ok(appended) if appended.len() == taken => results.extend(
                appended.iter().map(|p| json!({"ShardId": shard_id(p), "SequenceNumber": p.position.as_str()})),
            ),
            Ok(appended) => {
                return Err(KinesisError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalFailure",
                    format!("the log placed {} of {taken} records", appended.len()),
                ));
            }
            Err(err @ (IngestError::Backpressure { .. } | IngestError::TooManyRecords { .. })) => {
                results.extend(std::iter::repeat_n(throttled(err.to_string()), taken));
            }
            Err(err) => return Err(err.into()),
        }
    }
    results.extend(std::iter::repeat_n(throttled(backpressure()), refused.len()));
    let failed = results.iter().filter(|r| r.get("ErrorCode").is_some()).count();
    let answer = json!({"FailedRecordCount": failed, "Records": results, "EncryptionType": "NONE"});
    Ok(amz_json(&answer).into_response())
}

/// With `server.require_token`, the request must be signed (SigV4) by a token with the
/// ingest or admin role: access key id = the token's name, secret = the token.
fn authenticate(api: &Api, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Result<(), KinesisError> {
    let access = api.admin();
    if !access.requires_data_tokens() {
        return Ok(());
    }
    let denied = |kind: &'static str, message: String| KinesisError::new(StatusCode::BAD_REQUEST, kind, message);
    let value = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let auth = sigv4::parse_authorization(value).map_err(|e| match e {
        sigv4::SignatureError::Missing => denied(
            "MissingAuthenticationTokenException",
            "sign the request (AWS SigV4) with your weir token's name as the access key id and the token as the \
             secret access key"
                .into(),
        ),
        other => denied("IncompleteSignatureException", format!("{other:?}")),
    })?;
    let (secret, role) = access.signing_secret(auth.access_key).ok_or_else(|| {
        denied(
            "UnrecognizedClientException",
            "The security token included in the request is invalid: no weir token has that name".into(),
        )
    })?;
    let now = weir_pipeline::now_micros().div_euclid(1_000_000);
    sigv4::verify(&auth, secret, method, uri, headers, body, now).map_err(|e| match e {
        sigv4::SignatureError::Expired(message) => denied("InvalidSignatureException", message),
        sigv4::SignatureError::Mismatch => denied(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided: sign with the token as \
             the secret access key"
                .into(),
        ),
        other => denied("IncompleteSignatureException", format!("{other:?}")),
    })?;
    if !role.allows(Role::Ingest) {
        return Err(KinesisError::new(
            StatusCode::BAD_REQUEST,
            "AccessDeniedException",
            format!("token {} has the {} role; sending records needs the ingest role", auth.access_key, role.as_str()),
        ));
    }
    Ok(())
}
