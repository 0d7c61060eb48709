//! Our own OpenAPI document, generated from the operation table so it always lists exactly
//! the routes served. Atlas's published spec remains the contract the tests check against.

use serde_json::{Map, Value, json};

use crate::routes::OPERATIONS;

/// Builds the OpenAPI 3.0 document served at `/api/atlas/v2/openapi.json`.
pub fn document() -> Value {
    let mut paths = Map::new();
    for operation in OPERATIONS {
        let parameters: Vec<Value> = path_parameters(operation.path)
            .into_iter()
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let media_types: Vec<String> = operation
            .versions
            .iter()
            .map(|version| format!("application/vnd.atlas.{version}+json"))
            .collect();
        let mut success_content = Map::new();
        for media_type in &media_types {
            success_content.insert(media_type.clone(), json!({"schema": {"type": "object"}}));
        }
        let mut entry = json!({
            "operationId": operation.operation_id,
            "summary": operation.summary,
            "parameters": parameters,
            "responses": {
                operation.success.to_string(): {"description": "Success.", "content": success_content},
                "400": error_response("Bad Request."),
                "401": error_response("Unauthorized: a Digest challenge or a role too weak."),
                "403": error_response("Forbidden."),
                "404": error_response("Not Found."),
                "406": error_response("Not Acceptable: missing or unknown version date."),
                "409": error_response("Conflict."),
                "500": error_response("Internal Server Error."),
            },
            "security": [{"DigestAuth": []}, {"ServiceAccounts": []}],
        });
        if matches!(operation.method, "POST" | "PATCH") {
            let mut request_content = Map::new();
            for media_type in &media_types {
                request_content.insert(media_type.clone(), json!({"schema": {"type": "object"}}));
            }
            entry["requestBody"] = json!({"content": request_content});
        }
        let path_item = paths
            .entry(operation.path.replace("{*rest}", "{rest}"))
            .or_insert_with(|| json!({}));
        path_item[operation.method.to_ascii_lowercase()] = entry;
    }
    json!({
        "openapi": "3.0.1",
        "info": {
            "title": "rewind: MongoDB Atlas Admin API v2 (backup and restore subset)",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The operations rewind serves, with the versions each accepts. Bodies follow MongoDB Atlas's published schemas.",
        },
        "paths": paths,
        "components": {
            "schemas": {
                "ApiError": {
                    "type": "object",
                    "required": ["error", "errorCode"],
                    "properties": {
                        "detail": {"type": "string"},
                        "error": {"type": "integer", "format": "int32"},
                        "errorCode": {"type": "string"},
                        "parameters": {"type": "array", "items": {}},
                        "reason": {"type": "string"},
                        "badRequestDetail": {"type": "object"},
                    },
                },
            },
            "securitySchemes": {
                "DigestAuth": {"type": "http", "scheme": "digest"},
                "ServiceAccounts": {"type": "oauth2", "flows": {"clientCredentials": {"tokenUrl": "/api/oauth/token", "scopes": {}}}},
            },
        },
    })
}

fn error_response(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ApiError"}}}})
}

fn path_parameters(path: &str) -> Vec<String> {
    path.split('/')
        .filter_map(|segment| {
            segment
                .strip_prefix('{')
                .and_then(|rest| rest.strip_suffix('}'))
        })
        .map(|name| name.trim_start_matches('*').to_owned())
        .collect()
}
