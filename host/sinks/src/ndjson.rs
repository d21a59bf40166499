//! NDJSON lines of the raw archive and the dead letters.

use base64::Engine as _;
use serde::Serialize;

/// Bytes as they go into a JSON line: the text when they are valid UTF-8, else base64
/// (standard alphabet, padded) in a sibling member.
pub(crate) struct Payload<'a> {
    pub(crate) text: Option<&'a str>,
    pub(crate) base64: Option<String>,
}

impl<'a> Payload<'a> {
    pub(crate) fn of(bytes: &'a [u8]) -> Self {
        match std::str::from_utf8(bytes) {
            Ok(text) => Self { text: Some(text), base64: None },
            Err(_) => Self { text: None, base64: Some(base64::engine::general_purpose::STANDARD.encode(bytes)) },
        }
    }
}

/// Appends `line` as one JSON line.
pub(crate) fn push_line(out: &mut Vec<u8>, line: &impl Serialize) -> Result<(), String> {
    serde_json::to_writer(&mut *out, line).map_err(|e| e.to_string())?;
    out.push(b'\n');
    Ok(())
}

/// One line of the raw archive.
#[derive(Serialize)]
pub(crate) struct RawLine<'a> {
    pub(crate) id: &'a str,
    pub(crate) stream: &'a str,
    #[serde(serialize_with = "id_json")]
    pub(crate) shard: &'a str,
    #[serde(serialize_with = "id_json")]
    pub(crate) seq: &'a str,
    pub(crate) key: Option<&'a str>,
    pub(crate) content_type: &'a str,
    pub(crate) arrival_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) data: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) data_base64: Option<String>,
}

/// One line of the dead letters.
#[derive(Serialize)]
pub(crate) struct DeadLetterLine<'a> {
    pub(crate) id: &'a str,
    pub(crate) stream: &'a str,
    #[serde(serialize_with = "id_json")]
    pub(crate) shard: &'a str,
    #[serde(serialize_with = "id_json")]
    pub(crate) seq: &'a str,
    pub(crate) plugin: &'a str,
    pub(crate) stage: &'a str,
    pub(crate) reason: &'a str,
    pub(crate) content_type: &'a str,
    pub(crate) arrival_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) original: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) original_base64: Option<String>,
}

/// A shard id or position as it goes into a JSON line: a JSON number when it is an
/// integer every JSON reader holds exactly (below 2^53, the embedded log's), else the
/// text (Kinesis' shard ids and sequence numbers).
#[allow(clippy::trivially_copy_pass_by_ref)]
fn id_json<S: serde::Serializer>(id: &&str, serializer: S) -> Result<S::Ok, S::Error> {
    weir_events::json::serialize_id(id, serializer)
}
