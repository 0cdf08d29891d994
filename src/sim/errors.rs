//! Error messages in the imitated servers' own words: Go's `encoding/json` messages for a
//! body Ollama cannot decode, and pydantic's validation report that vLLM (FastAPI)
//! answers with `"type": "Bad Request"` and a `body.*` param.

use serde_json::{Map, Value};

use super::request::{Api, ApiError};

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

/// The kind a field of vLLM's request models must have.
#[derive(Clone, Copy)]
enum Kind {
    List,
    Str,
    Int,
    Bool,
    Dict,
}

/// The top-level fields the simulator reads, in the order of vLLM's pydantic models
/// (`ChatCompletionRequest`, `CompletionRequest`), which is the order pydantic reports
/// them in; `true` marks a required field.
const CHAT_FIELDS: &[(&str, Kind, bool)] = &[
    ("messages", Kind::List, true),
    ("model", Kind::Str, false),
    ("max_tokens", Kind::Int, false),
    ("max_completion_tokens", Kind::Int, false),
    ("n", Kind::Int, false),
    ("seed", Kind::Int, false),
    ("stream", Kind::Bool, false),
    ("stream_options", Kind::Dict, false),
    ("ignore_eos", Kind::Bool, false),
    ("min_tokens", Kind::Int, false),
];
const COMPLETION_FIELDS: &[(&str, Kind, bool)] = &[
    ("model", Kind::Str, false),
    ("max_tokens", Kind::Int, false),
    ("n", Kind::Int, false),
    ("seed", Kind::Int, false),
    ("stream", Kind::Bool, false),
    ("stream_options", Kind::Dict, false),
    ("ignore_eos", Kind::Bool, false),
    ("min_tokens", Kind::Int, false),
];

/// Python's `repr` of a JSON value as pydantic's report shows an input (an object as
/// vLLM abbreviates it: `'<dict of N items>'`).
fn py_repr(v: &Value) -> String {
    match v {
        Value::Null => "None".to_string(),
        Value::Bool(true) => "True".to_string(),
        Value::Bool(false) => "False".to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) if s.contains('\'') && !s.contains('"') => format!("\"{s}\""),
        Value::String(s) => format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'")),
        Value::Array(a) => format!("[{}]", a.iter().map(py_repr).collect::<Vec<_>>().join(", ")),
        Value::Object(o) => format!("'<dict of {} items>'", o.len()),
    }
}

/// pydantic's (type, msg) for `v` in a field of `kind`, or `None` when lax mode
/// accepts it (an integral float for an int; 0/1 and the usual words for a bool).
fn type_issue(kind: Kind, v: &Value) -> Option<(&'static str, &'static str)> {
    match (kind, v) {
        (Kind::List, Value::Array(_))
        | (Kind::Str, Value::String(_))
        | (Kind::Dict, Value::Object(_))
        | (Kind::Bool, Value::Bool(_)) => None,
        (Kind::Int, Value::Number(n)) => match n.as_f64() {
            _ if n.is_i64() || n.is_u64() => None,
            Some(f) if f.fract() == 0.0 => None,
            _ => Some((
                "int_from_float",
                "Input should be a valid integer, got a number with a fractional part",
            )),
        },
        (Kind::Int, Value::String(t)) if t.trim().parse::<i64>().is_ok() => None,
        (Kind::Bool, Value::String(t)) if lax_bool(t).is_some() => None,
        (Kind::Int, Value::String(_)) => Some((
            "int_parsing",
            "Input should be a valid integer, unable to parse string as an integer",
        )),
        (Kind::Bool, Value::Number(n)) if lax_bool_number(n).is_some() => None,
        (Kind::Bool, Value::String(_) | Value::Number(_)) => Some((
            "bool_parsing",
            "Input should be a valid boolean, unable to interpret input",
        )),
        (Kind::List, _) => Some(("list_type", "Input should be a valid list")),
        (Kind::Str, _) => Some(("string_type", "Input should be a valid string")),
        (Kind::Int, _) => Some(("int_type", "Input should be a valid integer")),
        (Kind::Bool, _) => Some(("bool_type", "Input should be a valid boolean")),
        (Kind::Dict, _) => Some(("dict_type", "Input should be a valid dictionary")),
    }
}

/// pydantic's lax reading of a string as a boolean.
pub(crate) fn lax_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "0" | "off" | "f" | "false" | "n" | "no" => Some(false),
        "1" | "on" | "t" | "true" | "y" | "yes" => Some(true),
        _ => None,
    }
}

/// pydantic's lax reading of a number as a boolean: 0, 1, 0.0 and 1.0.
fn lax_bool_number(n: &serde_json::Number) -> Option<bool> {
    match n.as_f64() {
        Some(0.0) => Some(false),
        Some(1.0) => Some(true),
        _ => None,
    }
}

/// Rewrite the values of `obj`'s known fields that pydantic's lax mode accepts (an
/// integer in a string, `"yes"`, `1`, ...) into their plain JSON form, so that `parse`
/// reads them as vLLM does.
pub(crate) fn pydantic_lax(api: Api, obj: &mut Map<String, Value>) {
    let fields = match api {
        Api::Chat => CHAT_FIELDS,
        Api::Completion => COMPLETION_FIELDS,
        Api::OllamaChat | Api::OllamaGenerate => return,
    };
    let fix = |kind: Kind, v: &mut Value| match (kind, &*v) {
        (Kind::Int, Value::String(t)) => {
            if let Ok(i) = t.trim().parse::<i64>() {
                *v = Value::from(i);
            }
        }
        (Kind::Bool, Value::String(t)) => {
            if let Some(b) = lax_bool(t) {
                *v = Value::Bool(b);
            }
        }
        (Kind::Bool, Value::Number(n)) => {
            if let Some(b) = lax_bool_number(n) {
                *v = Value::Bool(b);
            }
        }
        _ => {}
    };
    for &(name, kind, _) in fields {
        if let Some(v) = obj.get_mut(name) {
            fix(kind, v);
            if let Value::Object(so) = v
                && let Some(u) = so.get_mut("include_usage")
            {
                fix(Kind::Bool, u);
            }
        }
    }
}

/// Every missing or mistyped top-level field of a vLLM request body (and
/// `stream_options.include_usage`), in pydantic's order, as `(loc, report line)`.
fn field_issues(api: Api, obj: &Map<String, Value>) -> Vec<(String, String)> {
    let fields = match api {
        Api::Chat => CHAT_FIELDS,
        Api::Completion => COMPLETION_FIELDS,
        Api::OllamaChat | Api::OllamaGenerate => return Vec::new(),
    };
    let check = |loc: String, kind: Kind, v: &Value| {
        type_issue(kind, v).map(|(ty, msg)| {
            let input = py_repr(v);
            let line =
                format!("{{'type': '{ty}', 'loc': '{loc}', 'msg': '{msg}', 'input': {input}}}");
            (loc, line)
        })
    };
    let mut out = Vec::new();
    for &(name, kind, required) in fields {
        match obj.get(name) {
            None if required => {
                let loc = format!("body.{name}");
                let n = obj.len();
                out.push((
                    loc.clone(),
                    format!(
                        "{{'type': 'missing', 'loc': '{loc}', 'msg': 'Field required', 'input': '<dict of {n} items>'}}"
                    ),
                ));
            }
            // Optional fields accept null; a required list does not.
            None => {}
            Some(Value::Null) if !required => {}
            Some(v) => {
                out.extend(check(format!("body.{name}"), kind, v));
                if let (Some(Value::Object(so)), "stream_options") = (Some(v), name)
                    && let Some(u) = so.get("include_usage").filter(|u| !u.is_null())
                {
                    out.extend(check(
                        "body.stream_options.include_usage".to_string(),
                        Kind::Bool,
                        u,
                    ));
                }
            }
        }
    }
    out
}

/// vLLM: a request pydantic refuses, reported as FastAPI's handler words it:
/// `N validation error(s):` and one line per invalid field, every field at once (as
/// pydantic validates the whole model before any check of values), `"type": "Bad
/// Request"` and the first field as `param`. `e` is the first problem `parse` met; it is
/// answered as it is when no top-level field is missing or mistyped (a problem inside
/// `messages`, or a check of values).
pub(crate) fn vllm_validation(api: Api, e: ApiError, body: &[u8]) -> ApiError {
    let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(body) else {
        return e;
    };
    let issues = field_issues(api, &obj);
    let Some((first, _)) = issues.first() else {
        return e;
    };
    let n = issues.len();
    let lines: Vec<&str> = issues.iter().map(|(_, l)| l.as_str()).collect();
    ApiError {
        status: 400,
        message: format!(
            "{n} validation error{}:\n  {}",
            if n == 1 { "" } else { "s" },
            lines.join("\n  ")
        ),
        param: Some(first.clone()),
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

    fn vllm(api: Api, body: &str) -> ApiError {
        vllm_validation(api, ApiError::bad("first"), body.as_bytes())
    }

    #[test]
    fn every_invalid_field_in_model_order() {
        let e = vllm(
            Api::Chat,
            r#"{"stream":"sure","max_tokens":1.5,"model":5,"stream_options":{"include_usage":2}}"#,
        );
        assert_eq!(e.param.as_deref(), Some("body.messages"));
        assert_eq!(
            e.message,
            "5 validation errors:\n  \
             {'type': 'missing', 'loc': 'body.messages', 'msg': 'Field required', 'input': '<dict of 4 items>'}\n  \
             {'type': 'string_type', 'loc': 'body.model', 'msg': 'Input should be a valid string', 'input': 5}\n  \
             {'type': 'int_from_float', 'loc': 'body.max_tokens', 'msg': 'Input should be a valid integer, got a number with a fractional part', 'input': 1.5}\n  \
             {'type': 'bool_parsing', 'loc': 'body.stream', 'msg': 'Input should be a valid boolean, unable to interpret input', 'input': 'sure'}\n  \
             {'type': 'bool_parsing', 'loc': 'body.stream_options.include_usage', 'msg': 'Input should be a valid boolean, unable to interpret input', 'input': 2}"
        );
        // A problem that is not a top-level type stays as parse worded it.
        let e = vllm(Api::Chat, r#"{"messages":[],"max_tokens":3}"#);
        assert_eq!(e.message, "first");
        let e = vllm(Api::Completion, r#"{"model":"m","prompt":"p","n":[1]}"#);
        assert_eq!(e.param.as_deref(), Some("body.n"));
        assert!(
            e.message
                .starts_with("1 validation error:\n  {'type': 'int_type'"),
            "{}",
            e.message
        );
        assert!(e.message.ends_with("'input': [1]}"), "{}", e.message);
    }
}
