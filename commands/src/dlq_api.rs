//! The dead-letter API's requests and answers, shared by HTTP (gateway) and NATS. Bodies
//! are parsed with [`crate::api::parse`], so a bad field is named the same way on both.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use domain::dlq::{encode_payload, DeadLetter, DlqEntry, Encoding, HistoryItem, Source};
use serde::{Deserialize, Serialize};

use crate::dlq::{DlqOutcome, DlqService};
use crate::store::Actor;
use crate::CommandError;

/// Largest capture body: a payload of up to 1 MiB, base64-encoded, plus the rest.
pub const MAX_CAPTURE_BYTES: usize = 1536 * 1024;

/// One header value or several.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(untagged)]
pub enum HeaderValues {
    One(String),
    Many(Vec<String>),
}

/// How the `payload` of a capture request is to be read.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PayloadEncoding {
    /// Any JSON value (the default); kept as compact JSON text.
    Json,
    /// A string, kept as its text.
    Text,
    /// A string of standard base64: the exact bytes.
    Base64,
}

/// `POST /dlq` and `cp.cmd.<service>.dlq.capture`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaptureRequest {
    /// The entry's id; capturing the same id again changes nothing. Never `js:…` (the
    /// automatic capture's). Default: `cap:<caller>:<stream>:<stream_seq>` when those are
    /// given, else a fresh UUID.
    #[serde(default)]
    pub id: Option<String>,
    pub original_subject: String,
    pub payload: serde_json::Value,
    #[serde(default)]
    pub encoding: Option<PayloadEncoding>,
    pub error: String,
    pub attempts: u64,
    #[serde(default)]
    pub headers: Option<BTreeMap<String, HeaderValues>>,
    /// Where the message sat in JetStream, when it came from a stream.
    #[serde(default)]
    pub stream: Option<String>,
    #[serde(default)]
    pub consumer: Option<String>,
    #[serde(default)]
    pub stream_seq: Option<u64>,
}

/// A request's `payload` as the entry keeps it: a JSON value as compact JSON text, `text` and
/// `base64` strings as their exact bytes (kept in the most readable exact form).
fn kept_payload(
    payload: &serde_json::Value,
    encoding: Option<PayloadEncoding>,
) -> Result<(Encoding, String), CommandError> {
    let text = |what: &str| -> Result<&str, CommandError> {
        payload.as_str().ok_or_else(|| {
            CommandError::invalid("payload", format!("must be a string with encoding {what}"))
        })
    };
    Ok(match encoding.unwrap_or(PayloadEncoding::Json) {
        PayloadEncoding::Json => (Encoding::Json, payload.to_string()),
        // Classified like captured bytes: text with NUL is kept as base64.
        PayloadEncoding::Text => encode_payload(text("text")?.as_bytes()),
        PayloadEncoding::Base64 => {
            let bytes = domain::dlq::decode_payload(Encoding::Base64, text("base64")?)
                .map_err(|m| CommandError::invalid("payload", m))?;
            encode_payload(&bytes)
        }
    })
}

impl CaptureRequest {
    /// The dead letter it describes, or the field that is wrong.
    pub fn letter(&self) -> Result<DeadLetter, CommandError> {
        let (encoding, payload) = kept_payload(&self.payload, self.encoding)?;
        let source = match (&self.stream, self.stream_seq) {
            (Some(stream), Some(stream_seq)) => Some(Source {
                stream: stream.clone(),
                consumer: self.consumer.clone(),
                stream_seq,
            }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(CommandError::invalid(
                    "stream_seq",
                    "is required with stream",
                ))
            }
            (None, Some(_)) => {
                return Err(CommandError::invalid(
                    "stream",
                    "is required with stream_seq",
                ))
            }
        };
        let headers = self
            .headers
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|(name, values)| {
                let values = match values {
                    HeaderValues::One(v) => vec![v],
                    HeaderValues::Many(v) => v,
                };
                (name, values)
            })
            .collect();
        Ok(DeadLetter {
            original_subject: self.original_subject.clone(),
            payload,
            encoding,
            headers,
            error: self.error.clone(),
            attempts: self.attempts,
            source,
        })
    }
}

/// `POST /dlq/{id}/resolve`: `{"note"?, "requeue"?}`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    #[serde(default)]
    pub note: Option<String>,
    /// Publish the original payload and headers again on the original subject.
    #[serde(default)]
    pub requeue: bool,
}

/// `POST /dlq/{id}/requeue_edited`: `{"payload", "encoding"?, "note"?}`. The payload is read
/// like a capture's: with `"encoding":"text"` (what the dashboard sends) a string whose exact
/// UTF-8 bytes are published, with `"base64"` exact bytes, by default (`"json"`) any JSON
/// value, sent as its compact text.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequeueEditedRequest {
    pub payload: serde_json::Value,
    #[serde(default)]
    pub encoding: Option<PayloadEncoding>,
    /// Why; kept in the entry's history with the resolution.
    #[serde(default)]
    pub note: Option<String>,
}

/// The edited payload of an entry (`GET /dlq/{id}`): what requeues send since the edit.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct EditedBody {
    /// Like the entry's `payload`: the JSON value, or the text or base64 string.
    pub payload: serde_json::Value,
    pub encoding: Encoding,
    /// Its exact bytes, base64-encoded.
    pub payload_base64: String,
    /// SHA-256 (hex) of the edited bytes, and of the captured ones.
    pub sha256: String,
    pub original_sha256: String,
    pub edited_by: String,
    pub edited_at: DateTime<Utc>,
}

/// An entry as the API shows it. `payload` is the JSON value for JSON payloads, else the
/// text or the base64 string (`encoding` says which). `headers` and `history` appear in
/// `GET /dlq/{id}` and command answers, not in lists.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct EntryBody {
    pub id: String,
    pub original_subject: String,
    pub payload: serde_json::Value,
    pub encoding: Encoding,
    pub error: String,
    pub attempts: u64,
    pub created_at: DateTime<Utc>,
    pub resolved: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub requeue_count: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, Vec<String>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<HistoryItem>>,
    /// The payload's exact bytes, base64-encoded (`GET /dlq/{id}` only): what a requeue
    /// publishes, whatever the encoding (a JSON payload's `payload` is its parsed value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_base64: Option<String>,
    /// The operator's correction of the payload, when it was edited (`GET /dlq/{id}` and
    /// command answers): `payload` stays the captured one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited: Option<EditedBody>,
}

/// The payload as the API shows it: JSON payloads as their value (the exact text is
/// what a requeue sends), others as their string.
pub fn payload_value(encoding: Encoding, payload: &str) -> serde_json::Value {
    match encoding {
        Encoding::Json => serde_json::from_str(payload)
            .unwrap_or_else(|_| serde_json::Value::String(payload.to_string())),
        Encoding::Text | Encoding::Base64 => serde_json::Value::String(payload.to_string()),
    }
}

impl From<&DlqEntry> for EntryBody {
    fn from(e: &DlqEntry) -> Self {
        Self {
            id: e.id.clone(),
            original_subject: e.original_subject.clone(),
            payload: payload_value(e.encoding, &e.payload),
            encoding: e.encoding,
            error: e.error.clone(),
            attempts: e.attempts,
            created_at: e.created_at.unwrap_or_default(),
            resolved: e.resolved,
            resolved_at: e.resolved_at,
            resolved_by: e.resolved_by.clone(),
            note: e.note.clone(),
            requeue_count: e.requeue_count,
            stream: e.source.as_ref().map(|s| s.stream.clone()),
            consumer: e.source.as_ref().and_then(|s| s.consumer.clone()),
            stream_seq: e.source.as_ref().map(|s| s.stream_seq),
            headers: Some(e.headers.clone()),
            history: Some(e.history.clone()),
            payload_base64: None,
            edited: e.edited.as_ref().map(|edit| EditedBody {
                payload: payload_value(edit.encoding, &edit.payload),
                encoding: edit.encoding,
                payload_base64: domain::dlq::payload_base64(edit.encoding, &edit.payload),
                sha256: edit.sha256.clone(),
                original_sha256: domain::dlq::decode_payload(e.encoding, &e.payload)
                    .map(|b| domain::dlq::sha256_hex(&b))
                    .unwrap_or_default(),
                edited_by: edit.actor.clone(),
                edited_at: edit.at,
            }),
        }
    }
}

/// The answer to a capture or a resolution.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct EntryResponse {
    /// False when the command changed nothing (a repeated capture).
    pub changed: bool,
    /// The global position of the event written (absent when nothing was written); pass
    /// it as `min_position` to read the entry from the read model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<i64>,
    #[serde(flatten)]
    pub entry: EntryBody,
}

impl From<DlqOutcome> for EntryResponse {
    fn from(o: DlqOutcome) -> Self {
        Self {
            changed: o.changed,
            position: o.position,
            entry: EntryBody::from(&o.entry),
        }
    }
}

/// `GET /dlq`: `{"items":[...],"total"}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[schema(as = DlqListResponse)]
pub struct ListResponse {
    pub items: Vec<EntryBody>,
    pub total: i64,
    /// The read models' contiguous watermark this answer stands at (also the
    /// `X-Read-Position` header): every event up to this position in commit order is
    /// applied to it; 0 before the first event, null while not known. Follow the WebSocket
    /// with `since` = this to receive every event the answer does not show yet.
    pub read_position: Option<i64>,
}

/// The id of a capture a caller asked for. `js:<stream>:<seq>` ids belong to the automatic
/// capture (dlq_capture.rs): no caller may take one in advance, and a message's stream
/// sequence names the caller's own entry, `cap:<caller>:<stream>:<seq>` (so a retried capture
/// of the same message is still one entry, and one caller cannot claim another's).
fn explicit_capture_id(
    id: Option<String>,
    letter: &DeadLetter,
    actor: &Actor,
) -> Result<String, CommandError> {
    match (id, &letter.source) {
        (Some(id), _) if id.starts_with("js:") => Err(CommandError::invalid(
            "id",
            "ids starting with 'js:' are kept for the automatic capture",
        )),
        (Some(id), _) => Ok(id),
        (None, Some(source)) => {
            let caller: String = actor
                .user
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "_-.".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            Ok(format!(
                "cap:{caller}:{}:{}",
                source.stream, source.stream_seq
            ))
        }
        (None, None) => Ok(uuid::Uuid::now_v7().to_string()),
    }
}

/// The dead-letter operations, one function per endpoint / NATS subject.
impl DlqService {
    pub async fn api_capture(
        &self,
        request: CaptureRequest,
        actor: &Actor,
    ) -> Result<EntryResponse, CommandError> {
        let letter = request.letter()?;
        let id = explicit_capture_id(request.id, &letter, actor)?;
        Ok(self.capture(Some(id), letter, actor).await?.into())
    }

    pub async fn api_resolve(
        &self,
        id: &str,
        request: ResolveRequest,
        actor: &Actor,
    ) -> Result<EntryResponse, CommandError> {
        Ok(self
            .resolve(id, request.note, request.requeue, actor)
            .await?
            .into())
    }

    pub async fn api_requeue_edited(
        &self,
        id: &str,
        request: RequeueEditedRequest,
        actor: &Actor,
    ) -> Result<EntryResponse, CommandError> {
        let (encoding, payload) = kept_payload(&request.payload, request.encoding)?;
        Ok(self
            .requeue_edited(id, encoding, payload, request.note, actor)
            .await?
            .into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::parse_limited;

    fn field_of(error: CommandError) -> String {
        error.field().unwrap_or_default().to_string()
    }

    fn capture(body: &str) -> Result<DeadLetter, CommandError> {
        parse_limited::<CaptureRequest>(body.as_bytes(), MAX_CAPTURE_BYTES)?.letter()
    }

    #[test]
    fn a_capture_request_names_missing_and_unknown_fields() {
        assert_eq!(
            field_of(capture(r#"{"payload":1,"error":"e","attempts":1}"#).unwrap_err()),
            "original_subject"
        );
        assert_eq!(
            field_of(
                capture(r#"{"original_subject":"a","payload":1,"error":"e","attempts":-1}"#)
                    .unwrap_err()
            ),
            "attempts"
        );
        assert_eq!(
            field_of(
                capture(r#"{"original_subject":"a","payload":1,"error":"e","attempts":1,"x":2}"#)
                    .unwrap_err()
            ),
            "x"
        );
    }

    #[test]
    fn a_json_payload_is_kept_as_json_and_base64_as_exact_bytes() {
        let letter =
            capture(r#"{"original_subject":"a","payload":{"k":[1,2]},"error":"e","attempts":1}"#)
                .unwrap();
        assert_eq!(
            (letter.encoding, letter.payload.as_str()),
            (Encoding::Json, r#"{"k":[1,2]}"#)
        );
        let letter = capture(
            r#"{"original_subject":"a","payload":"AP+A","encoding":"base64","error":"e","attempts":1}"#,
        )
        .unwrap();
        assert_eq!(letter.encoding, Encoding::Base64);
        assert_eq!(
            domain::dlq::decode_payload(letter.encoding, &letter.payload).unwrap(),
            [0x00, 0xff, 0x80]
        );
    }

    #[test]
    fn bad_base64_and_a_sequence_without_a_stream_are_named() {
        assert_eq!(
            field_of(
                capture(r#"{"original_subject":"a","payload":"@@","encoding":"base64","error":"e","attempts":1}"#)
                    .unwrap_err()
            ),
            "payload"
        );
        assert_eq!(
            field_of(
                capture(r#"{"original_subject":"a","payload":1,"error":"e","attempts":1,"stream_seq":3}"#)
                    .unwrap_err()
            ),
            "stream"
        );
    }

    #[test]
    fn an_edited_payload_is_read_like_a_captured_one_and_bad_fields_are_named() {
        let edit = |body: &str| -> Result<(Encoding, String), CommandError> {
            let request =
                parse_limited::<RequeueEditedRequest>(body.as_bytes(), MAX_CAPTURE_BYTES)?;
            kept_payload(&request.payload, request.encoding)
        };
        // The dashboard sends the edited text: its exact bytes, JSON when they are JSON.
        assert_eq!(
            edit(r#"{"payload":"{ \"a\" : 1 }","encoding":"text"}"#).unwrap(),
            (Encoding::Json, r#"{ "a" : 1 }"#.to_string())
        );
        assert_eq!(
            edit(r#"{"payload":"plain","encoding":"text","note":"why"}"#).unwrap(),
            (Encoding::Text, "plain".to_string())
        );
        assert_eq!(field_of(edit(r#"{"note":"n"}"#).unwrap_err()), "payload");
        assert_eq!(
            field_of(edit(r#"{"payload":1,"encoding":"text"}"#).unwrap_err()),
            "payload"
        );
        assert_eq!(
            field_of(edit(r#"{"payload":1,"requeue":true}"#).unwrap_err()),
            "requeue"
        );
    }

    #[test]
    fn headers_take_one_value_or_several() {
        let letter = capture(
            r#"{"original_subject":"a","payload":1,"error":"e","attempts":1,"headers":{"A":"1","B":["2","3"]}}"#,
        )
        .unwrap();
        assert_eq!(letter.headers["A"], ["1"]);
        assert_eq!(letter.headers["B"], ["2", "3"]);
    }
}
