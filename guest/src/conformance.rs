//! Conformance pairs: gRPC requests and the exact answers a reference server gave them (vSwarm's
//! own function servers), and replaying them against a function to compare bytes.
//!
//! Format (`tests/fixtures/conformance/<workload>.jsonl`): one JSON object per line,
//! `{"method": "/pkg.Service/Method", "request_b64": ..., "reply_b64": ..., "note": ...}` with
//! the serialized protobuf request and reply in standard base64, or `"status": {"code": N,
//! "message": "..."}` instead of `reply_b64` when the server answered with a gRPC error. Blank
//! lines and lines starting with `#` are skipped. Messages travel as raw bytes
//! ([`RawCodec`]), so a pair checks the server's protobuf encoding too, and one replayer serves
//! every function whatever its proto.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::{Buf, BufMut};
use serde::{Deserialize, Serialize};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

/// What a server answered to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The serialized reply message.
    Reply(Vec<u8>),
    /// A gRPC error status.
    Status { code: i32, message: String },
}

/// One request and, once recorded, the answer it must get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub method: String,
    pub request: Vec<u8>,
    /// None in a file of requests still to be recorded.
    pub expected: Option<Answer>,
    pub note: String,
    /// A regular expression over the reply bytes whose matches are blanked in both replies
    /// before comparing: for what the function makes random (ids, object addresses).
    pub reply_mask: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    method: String,
    request_b64: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reply_b64: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<StatusLine>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    note: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reply_mask: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusLine {
    code: i32,
    message: String,
}

/// Parses a pairs file; errors name `origin` and the line.
pub fn parse(text: &str, origin: &str) -> Result<Vec<Pair>, String> {
    let mut pairs = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let at = format!("{origin}:{}", number + 1);
        let line: Line = serde_json::from_str(trimmed).map_err(|err| {
            format!("{at}: {err}; hint: each line is one JSON object with method, request_b64 and reply_b64 or status")
        })?;
        if !line.method.starts_with('/') || line.method[1..].split('/').count() != 2 {
            return Err(format!(
                "{at}: method '{}' is not of the form /package.Service/Method",
                line.method
            ));
        }
        let decode = |key: &str, text: &str| {
            STANDARD
                .decode(text)
                .map_err(|err| format!("{at}: {key} is not standard base64: {err}"))
        };
        let expected = match (line.reply_b64, line.status) {
            (Some(_), Some(_)) => {
                return Err(format!(
                    "{at}: both reply_b64 and status; a server answers with one of them"
                ));
            }
            (Some(reply), None) => Some(Answer::Reply(decode("reply_b64", &reply)?)),
            (None, Some(status)) => Some(Answer::Status {
                code: status.code,
                message: status.message,
            }),
            (None, None) => None,
        };
        if let Some(mask) = &line.reply_mask {
            regex::bytes::Regex::new(mask)
                .map_err(|err| format!("{at}: reply_mask is not a regular expression: {err}"))?;
        }
        pairs.push(Pair {
            method: line.method,
            request: decode("request_b64", &line.request_b64)?,
            expected,
            note: line.note,
            reply_mask: line.reply_mask,
        });
    }
    if pairs.is_empty() {
        return Err(format!("{origin}: no pairs in the file"));
    }
    Ok(pairs)
}

impl Pair {
    /// Whether `got` is the `expected` answer, after blanking `reply_mask` in both replies.
    pub fn matches(&self, expected: &Answer, got: &Answer) -> bool {
        match (&self.reply_mask, expected, got) {
            (Some(mask), Answer::Reply(expected), Answer::Reply(got)) => {
                // Checked by `parse`.
                let Ok(mask) = regex::bytes::Regex::new(mask) else {
                    return false;
                };
                mask.replace_all(expected, &b"?"[..]) == mask.replace_all(got, &b"?"[..])
            }
            _ => expected == got,
        }
    }

    /// The pair as one line of the file format (no newline).
    pub fn to_line(&self) -> String {
        let (reply_b64, status) = match &self.expected {
            Some(Answer::Reply(bytes)) => (Some(STANDARD.encode(bytes)), None),
            Some(Answer::Status { code, message }) => (
                None,
                Some(StatusLine {
                    code: *code,
                    message: message.clone(),
                }),
            ),
            None => (None, None),
        };
        let line = Line {
            method: self.method.clone(),
            request_b64: STANDARD.encode(&self.request),
            reply_b64,
            status,
            note: self.note.clone(),
            reply_mask: self.reply_mask.clone(),
        };
        serde_json::to_string(&line).unwrap_or_default()
    }
}

impl std::fmt::Display for Answer {
    /// Shows a reply as text when it is a protobuf message of one string field (the vSwarm
    /// functions' replies), else as base64.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Answer::Status { code, message } => write!(f, "status {code}: {message}"),
            Answer::Reply(bytes) => match single_string_field(bytes) {
                Some(text) => write!(f, "reply {text:?}"),
                None => write!(f, "reply (base64) {}", STANDARD.encode(bytes)),
            },
        }
    }
}

/// The text of a message whose only content is field 1 as a length-delimited UTF-8 string.
fn single_string_field(bytes: &[u8]) -> Option<&str> {
    let (&tag, rest) = bytes.split_first()?;
    if tag != 0x0a {
        return None;
    }
    let (mut length, mut shift, mut used) = (0usize, 0u32, 0usize);
    for &byte in rest.iter().take(10) {
        length |= usize::from(byte & 0x7f) << shift;
        used += 1;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    let body = rest.get(used..)?;
    (body.len() == length).then(|| std::str::from_utf8(body).ok())?
}

/// A codec that hands messages through as bytes, so requests go out exactly as recorded.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }

    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

/// Sends `request` to `method` as one message (a unary call; a bidirectional-streaming method
/// such as server reflection answers a single message the same way) and returns the answer.
pub async fn call(
    channel: tonic::transport::Channel,
    method: &str,
    request: Vec<u8>,
) -> Result<Answer, String> {
    let path = tonic::codegen::http::uri::PathAndQuery::try_from(method)
        .map_err(|err| format!("bad method path '{method}': {err}"))?;
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|err| format!("the connection is not ready: {err}"))?;
    Ok(
        match grpc
            .unary(tonic::Request::new(request), path, RawCodec)
            .await
        {
            Ok(reply) => Answer::Reply(reply.into_inner()),
            Err(status) => Answer::Status {
                code: status.code() as i32,
                message: status.message().to_string(),
            },
        },
    )
}

/// A pair whose answer differed from the recorded one.
#[derive(Debug)]
pub struct Mismatch {
    /// 1-based position among the file's pairs.
    pub index: usize,
    pub note: String,
    pub expected: Answer,
    pub got: Answer,
}

/// Replays every recorded pair; returns the mismatches (an unrecorded pair is an error).
pub async fn replay(
    channel: &tonic::transport::Channel,
    pairs: &[Pair],
) -> Result<Vec<Mismatch>, String> {
    let mut mismatches = Vec::new();
    for (index, pair) in pairs.iter().enumerate() {
        let expected = pair.expected.clone().ok_or_else(|| {
            format!(
                "pair {} ({}) has no recorded reply_b64 or status; record it first",
                index + 1,
                pair.note
            )
        })?;
        let got = call(channel.clone(), &pair.method, pair.request.clone()).await?;
        if !pair.matches(&expected, &got) {
            mismatches.push(Mismatch {
                index: index + 1,
                note: pair.note.clone(),
                expected,
                got,
            });
        }
    }
    Ok(mismatches)
}

/// Sends every pair's request and returns the pairs with the answers the server gave.
pub async fn record(
    channel: &tonic::transport::Channel,
    pairs: &[Pair],
) -> Result<Vec<Pair>, String> {
    let mut recorded = Vec::new();
    for pair in pairs {
        let answer = call(channel.clone(), &pair.method, pair.request.clone()).await?;
        recorded.push(Pair {
            expected: Some(answer),
            ..pair.clone()
        });
    }
    Ok(recorded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_and_bad_lines_are_named() {
        let text = "# comment\n\n{\"method\":\"/aes.Aes/ShowEncryption\",\"request_b64\":\"CgF4\",\"reply_b64\":\"CgJoaQ==\",\"note\":\"x\"}\n{\"method\":\"/a.B/C\",\"request_b64\":\"\",\"status\":{\"code\":13,\"message\":\"bad\"}}\n";
        let pairs = parse(text, "f.jsonl").unwrap();
        assert_eq!(pairs.len(), 2);
        assert_eq!(pairs[0].request, b"\x0a\x01x");
        assert_eq!(
            pairs[0].expected,
            Some(Answer::Reply(b"\x0a\x02hi".to_vec()))
        );
        assert_eq!(
            pairs[0].expected.as_ref().unwrap().to_string(),
            "reply \"hi\""
        );
        assert_eq!(
            pairs[1].expected,
            Some(Answer::Status {
                code: 13,
                message: "bad".into()
            })
        );
        for pair in &pairs {
            assert_eq!(&parse(&pair.to_line(), "again").unwrap()[0], pair);
        }
        let bad = parse("\n{\"method\":\"nope\",\"request_b64\":\"\"}", "f.jsonl").unwrap_err();
        assert!(bad.starts_with("f.jsonl:2: method 'nope'"), "{bad}");
        let bad = parse("{\"method\":\"/a.B/C\",\"request_b64\":\"!!\"}", "f").unwrap_err();
        assert!(
            bad.contains("f:1: request_b64 is not standard base64"),
            "{bad}"
        );
        let bad = parse("{\"method\":\"/a.B/C\"}", "f").unwrap_err();
        assert!(bad.contains("f:1:") && bad.contains("request_b64"), "{bad}");
        assert!(
            parse("# only a comment\n", "f")
                .unwrap_err()
                .contains("no pairs")
        );
    }

    #[test]
    fn a_reply_mask_blanks_random_parts_only() {
        let text = "{\"method\":\"/a.B/C\",\"request_b64\":\"\",\"reply_b64\":\"CgZpZD0xMjM=\",\"reply_mask\":\"[0-9]{3}\"}";
        let pair = &parse(text, "f").unwrap()[0];
        let expected = pair.expected.clone().unwrap();
        assert!(pair.matches(&expected, &Answer::Reply(b"\x0a\x06id=987".to_vec())));
        assert!(!pair.matches(&expected, &Answer::Reply(b"\x0a\x06ix=987".to_vec())));
        assert_eq!(&parse(&pair.to_line(), "again").unwrap()[0], pair);
        let bad = parse(&text.replace("[0-9]{3}", "[0-9"), "f").unwrap_err();
        assert!(bad.contains("f:1: reply_mask"), "{bad}");
    }

    #[test]
    fn replies_that_are_not_one_string_show_as_base64() {
        assert_eq!(
            Answer::Reply(vec![0x08, 0x01]).to_string(),
            "reply (base64) CAE="
        );
        assert_eq!(
            Answer::Reply(vec![0x0a, 0x05, b'a']).to_string(),
            "reply (base64) CgVh"
        );
    }
}
