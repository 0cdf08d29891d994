//! Error messages in the imitated servers' own words: Go's `encoding/json` messages for a
//! body Ollama cannot decode, and pydantic's validation report that vLLM (FastAPI)
//! answers with `"type": "Bad Request"` and a `body.*` param.

use super::request::ApiError;

/// What Go's decoder says about `body` (which serde_json refused): `unexpected EOF`
/// for a truncated body, else `invalid character 'x' looking for ...`.
pub(crate) fn go_json_error(body: &[u8], e: &serde_json::Error) -> String {
    if e.is_eof() {
        return "unexpected EOF".to_string();
    }
    // Walk the body the way Go's scanner does until the first byte it rejects.
    let mut stack: Vec<u8> = Vec::new(); // b'{' / b'['
    let mut expect = "beginning of value";
    let mut i = 0;
    while i < body.len() {
        let c = body[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let ok = match expect {
            "beginning of value" | "beginning of object key string" => {
                let key = expect == "beginning of object key string";
                match c {
                    b'"' => {
                        i = skip_string(body, i);
                        expect = if key {
                            "colon after object key"
                        } else {
                            after_value(&stack)
                        };
                        continue;
                    }
                    b'}' if key => close(&mut stack, &mut expect),
                    b'{' if !key => {
                        stack.push(b'{');
                        expect = "beginning of object key string";
                        true
                    }
                    b'[' if !key => {
                        stack.push(b'[');
                        expect = "beginning of value";
                        true
                    }
                    b']' if !key && stack.last() == Some(&b'[') => close(&mut stack, &mut expect),
                    b'-' | b'0'..=b'9' | b't' | b'f' | b'n' if !key => {
                        while i < body.len() && !b",]} \t\r\n".contains(&body[i]) {
                            i += 1;
                        }
                        expect = after_value(&stack);
                        continue;
                    }
                    _ => false,
                }
            }
            "colon after object key" if c == b':' => {
                expect = "beginning of value";
                true
            }
            "colon after object key" => false,
            _ => match c {
                b',' => {
                    expect = if stack.last() == Some(&b'{') {
                        "beginning of object key string"
                    } else {
                        "beginning of value"
                    };
                    true
                }
                b'}' | b']' => close(&mut stack, &mut expect),
                _ => false,
            },
        };
        if !ok {
            let what = match expect {
                "colon after object key" => "after object key".to_string(),
                e if e.starts_with("beginning") => format!("looking for {e}"),
                e => e.to_string(),
            };
            return format!("invalid character {} {what}", go_quote(body, i));
        }
        i += 1;
    }
    "unexpected EOF".to_string()
}

fn after_value(stack: &[u8]) -> &'static str {
    match stack.last() {
        Some(b'{') => "after object key:value pair",
        Some(_) => "after array element",
        None => "after top-level value",
    }
}

fn close(stack: &mut Vec<u8>, expect: &mut &'static str) -> bool {
    stack.pop();
    *expect = after_value(stack);
    true
}

fn skip_string(body: &[u8], mut i: usize) -> usize {
    i += 1;
    while i < body.len() && body[i] != b'"' {
        if body[i] == b'\\' {
            i += 1;
        }
        i += 1;
    }
    i + 1
}

/// Go's `quoteChar`: `'x'`, with `'\''` and `'"'` escaped.
fn go_quote(body: &[u8], i: usize) -> String {
    let c = std::str::from_utf8(&body[i..])
        .ok()
        .and_then(|s| s.chars().next())
        .unwrap_or(char::from(body[i]));
    match c {
        '\'' => r"'\''".to_string(),
        '"' => r#"'"'"#.to_string(),
        c => format!("'{c}'"),
    }
}

/// The error for a body that is not JSON: Go's words for Ollama (`go`), else vLLM's.
pub(crate) fn json_error(go: bool, body: &[u8], e: &serde_json::Error) -> ApiError {
    if go {
        ApiError::bad(go_json_error(body, e))
    } else {
        vllm_json_error(body, e)
    }
}

/// vLLM's answer to a body that is not JSON: a pydantic `json_invalid` report whose
/// location is the byte offset Python's decoder stopped at.
pub(crate) fn vllm_json_error(body: &[u8], e: &serde_json::Error) -> ApiError {
    let pos = if e.is_eof() {
        body.len()
    } else {
        let line_start: usize = body
            .split(|&b| b == b'\n')
            .take(e.line().saturating_sub(1))
            .map(|l| l.len() + 1)
            .sum();
        line_start + e.column().saturating_sub(1)
    };
    let loc = format!("body.{pos}");
    ApiError {
        status: 400,
        message: format!(
            "1 validation error:\n  {{'type': 'json_invalid', 'loc': '{loc}', 'msg': 'JSON decode error', \
             'input': '<dict of 0 items>', 'ctx': {{'error': 'Expecting value'}}}}"
        ),
        param: Some(loc),
    }
}

/// vLLM: a missing or mistyped field as pydantic reports it (the simulator reports the
/// first problem only). `obj_len` is the number of keys of the request object.
pub(crate) fn vllm_validation(e: ApiError, body: &[u8]) -> ApiError {
    let Some(field) = e.param.clone() else {
        return e;
    };
    let obj: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let report = if e.message == format!("{field}: Field required") {
        let n = obj.as_object().map_or(0, serde_json::Map::len);
        format!(
            "{{'type': 'missing', 'loc': 'body.{field}', 'msg': 'Field required', 'input': '<dict of {n} items>'}}"
        )
    } else if let Some(what) = e
        .message
        .strip_prefix(&format!("{field}: Input should be "))
    {
        let ty = match what {
            "a valid list" => "list_type",
            "a valid integer" => "int_parsing",
            "a valid boolean" => "bool_parsing",
            "a valid string" => "string_type",
            "a valid dictionary" => "dict_type",
            _ => return e,
        };
        let input = match obj.get(&field) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
            None => String::new(),
        };
        format!(
            "{{'type': '{ty}', 'loc': 'body.{field}', 'msg': 'Input should be {what}', 'input': '{input}'}}"
        )
    } else {
        return e;
    };
    ApiError {
        status: 400,
        message: format!("1 validation error:\n  {report}"),
        param: Some(format!("body.{field}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn go(body: &str) -> String {
        let e = serde_json::from_str::<serde_json::Value>(body).unwrap_err();
        go_json_error(body.as_bytes(), &e)
    }

    #[test]
    fn go_messages() {
        assert_eq!(go(r#"{"model": "tiny", "messages": ["#), "unexpected EOF");
        assert_eq!(
            go("{bad json"),
            "invalid character 'b' looking for beginning of object key string"
        );
        assert_eq!(
            go("x"),
            "invalid character 'x' looking for beginning of value"
        );
        assert_eq!(go(r#"{"a" 1}"#), "invalid character '1' after object key");
        assert_eq!(
            go(r#"{"a":1 "b":2}"#),
            "invalid character '\"' after object key:value pair"
        );
    }
}
