//! Reading an error out of whatever a server sent (FORMATS.md §1.5, §5.7): OpenAI's and
//! new vLLM's nested `{"error": {...}}`, old vLLM's flat `{"object": "error", ...}`,
//! Ollama's `{"error": "..."}`, FastAPI's `{"detail": ...}`, or plain text.

use serde_json::Value;

pub use crate::schema::{MAX_ERROR_MESSAGE as MAX_MESSAGE, truncate};

/// The message of an error body; `None` when `v` does not look like an error.
pub fn message_of(v: &Value) -> Option<String> {
    let obj = v.as_object()?;
    match obj.get("error") {
        Some(Value::Object(e)) => {
            let msg = e
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| Value::Object(e.clone()).to_string());
            let ty = e
                .get("type")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty());
            Some(match ty {
                Some(t) => format!("{t}: {msg}"),
                None => msg,
            })
        }
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Null) | None => {
            if obj.get("object").and_then(Value::as_str) == Some("error") {
                let msg = obj
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("error");
                return Some(match obj.get("type").and_then(Value::as_str) {
                    Some(t) => format!("{t}: {msg}"),
                    None => msg.to_string(),
                });
            }
            obj.get("detail").map(|d| match d {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        }
        Some(other) => Some(other.to_string()),
    }
}

/// A readable snippet of an error body: the extracted message when it is JSON, else the
/// start of the text (invalid UTF-8 replaced).
pub fn snippet(body: &[u8]) -> String {
    let text = match serde_json::from_slice::<Value>(body) {
        Ok(v) => message_of(&v).unwrap_or_else(|| String::from_utf8_lossy(body).into_owned()),
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    };
    truncate(text.trim(), MAX_MESSAGE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_shape() {
        let vllm = json!({"error": {"message": "too long", "type": "BadRequestError", "param": null, "code": 400}});
        assert_eq!(message_of(&vllm).unwrap(), "BadRequestError: too long");
        let flat = json!({"object": "error", "message": "boom", "type": "InternalServerError", "code": 500});
        assert_eq!(message_of(&flat).unwrap(), "InternalServerError: boom");
        let ollama = json!({"error": "model \"x\" not found, try pulling it first"});
        assert!(message_of(&ollama).unwrap().contains("not found"));
        let fastapi = json!({"detail": [{"loc": ["body"], "msg": "field required"}]});
        assert!(message_of(&fastapi).unwrap().contains("field required"));
        assert_eq!(message_of(&json!({"choices": []})), None);
        assert_eq!(message_of(&json!({"error": null})), None);
        assert_eq!(
            snippet(b"<html>502 Bad Gateway</html>"),
            "<html>502 Bad Gateway</html>"
        );
        assert_eq!(snippet(&[0xff, b'a']), "\u{fffd}a");
        assert_eq!(truncate("ééé", 3), "é...");
    }
}
