//! `pretty=true` and `envelope=true`: applied once, after the handler, to any JSON body.

use axum::body::{Body, to_bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::extract::{parse_bool, query_pairs};

/// Responses larger than this are passed through untouched (none of ours come close).
const MAX_RENDERED_BYTES: usize = 64 * 1024 * 1024;

/// How a request asked for its JSON body to be rendered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rendering {
    pretty: bool,
    envelope: bool,
}

impl Rendering {
    /// Reads `pretty` and `envelope` from a raw query string; any other value of either is
    /// refused (a 400).
    pub fn of(query: Option<&str>) -> Result<Self, ApiError> {
        let mut rendering = Self::default();
        // Most requests carry no query at all: nothing to decode.
        if query.is_none_or(str::is_empty) {
            return Ok(rendering);
        }
        for (name, value) in query_pairs(query) {
            let target = match name.as_str() {
                "pretty" => &mut rendering.pretty,
                "envelope" => &mut rendering.envelope,
                _ => continue,
            };
            match parse_bool(&value) {
                Some(flag) => *target = flag,
                None => {
                    return Err(ApiError::invalid_query_parameter(
                        &name,
                        "must be true or false",
                    ));
                }
            }
        }
        Ok(rendering)
    }

    /// Rewrites `response`'s JSON body as asked (untouched when nothing was asked).
    pub async fn apply(self, response: Response) -> Response {
        if !self.pretty && !self.envelope {
            return response;
        }
        let is_json = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.contains("json"));
        if !is_json {
            return response;
        }
        let (mut parts, body) = response.into_parts();
        let Ok(bytes) = to_bytes(body, MAX_RENDERED_BYTES).await else {
            return ApiError::internal(&"response body could not be buffered").into_response();
        };
        let Ok(mut value) = serde_json::from_slice::<Value>(&bytes) else {
            return Response::from_parts(parts, Body::from(bytes));
        };
        if self.envelope {
            let status = parts.status.as_u16();
            value = match value {
                Value::Object(mut object) if object.contains_key("results") => {
                    object.insert("status".into(), json!(status));
                    Value::Object(object)
                }
                other => json!({"content": other, "status": status}),
            };
        }
        let text = if self.pretty {
            serde_json::to_string_pretty(&value)
        } else {
            serde_json::to_string(&value)
        };
        let text = text.unwrap_or_default();
        parts.headers.remove(header::CONTENT_LENGTH);
        Response::from_parts(parts, Body::from(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pretty_and_envelope_and_refuses_other_values() {
        assert_eq!(Rendering::of(None).ok(), Some(Rendering::default()));
        assert_eq!(Rendering::of(Some("")).ok(), Some(Rendering::default()));
        assert_eq!(
            Rendering::of(Some("pageNum=2&pretty=true")).ok(),
            Some(Rendering {
                pretty: true,
                envelope: false
            })
        );
        assert_eq!(
            Rendering::of(Some("envelope=true&pretty=true&pretty=false")).ok(),
            Some(Rendering {
                pretty: false,
                envelope: true
            })
        );
        let refused = Rendering::of(Some("envelope=yes")).unwrap_err();
        assert_eq!(refused.status, axum::http::StatusCode::BAD_REQUEST);
        assert_eq!(refused.code, "INVALID_QUERY_PARAMETER");
    }
}
