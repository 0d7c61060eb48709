//! Reading requests the Atlas way: path parameters checked against Atlas's patterns, JSON bodies
//! read strictly, and pagination parameters with Atlas's bounds.

use axum::body::{Body, to_bytes};
use rewind_domain::{ClusterName, DomainError, ObjectId};
use serde_json::Value;

use crate::error::ApiError;

/// Request bodies larger than this are refused before parsing.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Parses a `groupId` path parameter.
pub fn group_id(text: &str) -> Result<ObjectId, ApiError> {
    text.parse().map_err(|_| {
        DomainError::InvalidGroupId {
            value: text.to_owned(),
        }
        .into()
    })
}

/// Parses an `orgId` path parameter; a malformed id names no organization.
pub fn org_id(text: &str) -> Result<ObjectId, ApiError> {
    text.parse().map_err(|_| {
        DomainError::OrgNotFound {
            org_id: text.to_owned(),
        }
        .into()
    })
}

/// Parses a `clusterName` path parameter; a malformed name names no cluster.
pub fn cluster_name(text: &str, group_id: ObjectId) -> Result<ClusterName, ApiError> {
    ClusterName::parse(text).map_err(|_| {
        DomainError::ClusterNotFound {
            name: text.to_owned(),
            group_id: group_id.to_string(),
        }
        .into()
    })
}

/// Parses a `snapshotId` path parameter.
pub fn snapshot_id(text: &str) -> Result<ObjectId, ApiError> {
    text.parse().map_err(|_| {
        DomainError::InvalidSnapshotId {
            value: text.to_owned(),
        }
        .into()
    })
}

/// Parses a `restoreJobId` path parameter.
pub fn restore_job_id(text: &str) -> Result<ObjectId, ApiError> {
    text.parse().map_err(|_| {
        DomainError::InvalidJobId {
            value: text.to_owned(),
        }
        .into()
    })
}

/// Reads a JSON request body. An empty body reads as `{}` for operations whose body is
/// optional (`optional`), and as malformed otherwise.
pub async fn json_body(body: Body, optional: bool) -> Result<Value, ApiError> {
    let bytes = to_bytes(body, MAX_BODY_BYTES).await.map_err(|_| {
        ApiError::from(DomainError::MalformedJson {
            reason: format!(
                "the request body is larger than {MAX_BODY_BYTES} bytes or was interrupted"
            ),
        })
    })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        if optional {
            return Ok(Value::Object(Default::default()));
        }
        return Err(DomainError::MalformedJson {
            reason: "the request body is empty".to_owned(),
        }
        .into());
    }
    serde_json::from_slice(&bytes).map_err(|error| {
        DomainError::MalformedJson {
            reason: format!("{error}"),
        }
        .into()
    })
}

/// Pagination parameters: `itemsPerPage` (1–500, default 100), `pageNum` (≥ 1, default 1),
/// `includeCount` (default true).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListQuery {
    /// Items on one page.
    pub items_per_page: u64,
    /// 1-based page number.
    pub page_num: u64,
    /// Whether `totalCount` is reported.
    pub include_count: bool,
}

impl ListQuery {
    /// Parses the pagination parameters out of a raw query string; other parameters are left
    /// to the caller.
    pub fn parse(query: Option<&str>) -> Result<Self, ApiError> {
        let mut parsed = Self {
            items_per_page: 100,
            page_num: 1,
            include_count: true,
        };
        for (name, value) in query_pairs(query) {
            match name.as_str() {
                "itemsPerPage" => {
                    parsed.items_per_page = value
                        .parse::<u64>()
                        .ok()
                        .filter(|count| (1..=500).contains(count))
                        .ok_or_else(|| {
                            ApiError::invalid_query_parameter(
                                "itemsPerPage",
                                "must be an integer from 1 to 500",
                            )
                        })?;
                }
                "pageNum" => {
                    parsed.page_num = value
                        .parse::<u64>()
                        .ok()
                        .filter(|page| *page >= 1 && *page <= 1_000_000_000)
                        .ok_or_else(|| {
                            ApiError::invalid_query_parameter(
                                "pageNum",
                                "must be an integer of at least 1",
                            )
                        })?;
                }
                "includeCount" => {
                    parsed.include_count = parse_bool(&value).ok_or_else(|| {
                        ApiError::invalid_query_parameter("includeCount", "must be true or false")
                    })?;
                }
                _ => {}
            }
        }
        Ok(parsed)
    }

    /// The store page for these parameters.
    pub fn page(&self) -> rewind_store::Page {
        rewind_store::Page {
            offset: (self.page_num - 1) * self.items_per_page,
            limit: self.items_per_page,
        }
    }
}

/// Parses Atlas's boolean query values.
pub fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// Decodes `application/x-www-form-urlencoded` pairs (query strings and OAuth form bodies).
pub fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(name), percent_decode(value))
        })
        .collect()
}

/// Percent-decoding with `+` as space; invalid escapes are kept literally.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'+' => decoded.push(b' '),
            b'%' => {
                let escape = bytes
                    .get(index + 1..index + 3)
                    .filter(|hex| hex.iter().all(u8::is_ascii_hexdigit))
                    .and_then(|hex| std::str::from_utf8(hex).ok())
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok());
                match escape {
                    Some(byte) => {
                        decoded.push(byte);
                        index += 2;
                    }
                    None => decoded.push(b'%'),
                }
            }
            other => decoded.push(other),
        }
        index += 1;
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pagination_bounds() {
        assert_eq!(ListQuery::parse(None).unwrap().items_per_page, 100);
        assert!(ListQuery::parse(Some("itemsPerPage=501")).is_err());
        assert!(ListQuery::parse(Some("itemsPerPage=0")).is_err());
        assert!(ListQuery::parse(Some("pageNum=0")).is_err());
        assert!(ListQuery::parse(Some("includeCount=yes")).is_err());
        let query = ListQuery::parse(Some("itemsPerPage=10&pageNum=3&includeCount=false")).unwrap();
        assert_eq!(
            query.page(),
            rewind_store::Page {
                offset: 20,
                limit: 10
            }
        );
        assert!(!query.include_count);
    }

    #[test]
    fn percent_decoding_never_panics() {
        assert_eq!(percent_decode("a%20b+c"), "a b c");
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("%41"), "A");
    }
}
