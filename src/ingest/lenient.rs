//! Tolerant JSON value types shared by the format parsers.
//!
//! Servers add, rename and retype optional fields between versions, and user scripts dump
//! whatever they like. These types accept *any* JSON value and keep only what makes sense
//! (an integer where a count is expected, a string where a reason is expected), so one odd
//! field never makes a whole line unparseable. Strings borrow from the line when they can;
//! objects and arrays that are not wanted are skipped without being built.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

pub(crate) use crate::schema::MAX_ERROR_MESSAGE as MAX_MESSAGE;

/// Skip the rest of a map without building anything.
fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

/// Skip the rest of a sequence without building anything.
fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

/// Implements the visitor methods for "any other JSON value": ignored, giving `$none`.
macro_rules! ignore_other_values {
    ($none:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($none)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($none)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($none)
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            drain_map(map)?;
            Ok($none)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            drain_seq(seq)?;
            Ok($none)
        }
    };
}

thread_local! {
    /// Negative (impossible) counts and durations seen since [`take_invalid`] last ran.
    static INVALID: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// How many negative counts or durations the [`Uint`]s parsed on this thread since the
/// last call held (each became `None`, unknown); resets the count.
pub(crate) fn take_invalid() -> u32 {
    INVALID.with(|c| c.replace(0))
}

/// Note one impossible count (negative): it is read as unknown, and counted.
pub(crate) fn note_invalid() {
    INVALID.with(|c| c.set(c.get().saturating_add(1)));
}

/// A non-negative integer (a count or a nanosecond duration). Integral or positive floats
/// are rounded; numeric strings are read; anything else is `None`. A negative value is
/// `None` too, and noted ([`take_invalid`]) so that the importer can say so.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Uint(pub Option<u64>);

impl<'de> Deserialize<'de> for Uint {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Uint;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a non-negative integer")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Uint, E> {
                Ok(Uint(Some(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Uint, E> {
                if v < 0 {
                    note_invalid();
                }
                Ok(Uint(u64::try_from(v).ok()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Uint, E> {
                if v < 0.0 && v.round() != 0.0 {
                    note_invalid();
                }
                Ok(Uint((0.0..1.8e19).contains(&v).then(|| v.round() as u64)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Uint, E> {
                let v = v.trim();
                if v.starts_with('-') && v.parse::<f64>().is_ok_and(|f| f.round() < 0.0) {
                    note_invalid();
                }
                Ok(Uint(v.parse().ok()))
            }
            ignore_other_values!(Uint(None));
        }
        d.deserialize_any(V)
    }
}

/// A finite number (seconds, milliseconds); numeric strings are read; else `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Num(pub Option<f64>);

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Num;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Num, E> {
                Ok(Num(Some(v as f64)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Num, E> {
                Ok(Num(Some(v as f64)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Num, E> {
                Ok(Num(v.is_finite().then_some(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Num, E> {
                Ok(Num(v.trim().parse().ok().filter(|x: &f64| x.is_finite())))
            }
            ignore_other_values!(Num(None));
        }
        d.deserialize_any(V)
    }
}

/// A boolean; anything else (null included) is `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Flag(pub Option<bool>);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Flag;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a boolean")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Flag, E> {
                Ok(Flag(Some(v)))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Flag, E> {
                Ok(Flag(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Flag, E> {
                Ok(Flag(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Flag, E> {
                Ok(Flag(None))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Flag, E> {
                Ok(Flag(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Flag, E> {
                Ok(Flag(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Flag, E> {
                Ok(Flag(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Flag, A::Error> {
                drain_map(map)?;
                Ok(Flag(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Flag, A::Error> {
                drain_seq(seq)?;
                Ok(Flag(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// A string, borrowed from the line when it has no escapes. Numbers become their decimal
/// text (ids are sometimes numbers); anything else is `None`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Text<'a>(pub Option<Cow<'a, str>>);

impl<'a> Text<'a> {
    pub fn as_str(&self) -> Option<&str> {
        self.0.as_deref()
    }

    pub fn to_owned_string(&self) -> Option<String> {
        self.0.as_deref().map(str::to_owned)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Some(Cow::Owned(v.to_owned()))))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Text<'de>, E> {
                Ok(Text(Some(Cow::Owned(v))))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Text<'de>, E> {
                Ok(Text(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Text<'de>, E> {
                Ok(Text(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Text<'de>, E> {
                Ok(Text(Some(Cow::Owned(v.to_string()))))
            }
            ignore_other_values!(Text(None));
        }
        d.deserialize_any(V)
    }
}

/// Whether a key is present with a non-null value (the value itself is skipped).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Present(pub bool);

impl<'de> Deserialize<'de> for Present {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Present;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Present, E> {
                Ok(Present(true))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Present, E> {
                Ok(Present(true))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Present, E> {
                Ok(Present(true))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Present, E> {
                Ok(Present(true))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Present, E> {
                Ok(Present(true))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Present, E> {
                Ok(Present(false))
            }
            fn visit_none<E: de::Error>(self) -> Result<Present, E> {
                Ok(Present(false))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Present, A::Error> {
                drain_map(map)?;
                Ok(Present(true))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Present, A::Error> {
                drain_seq(seq)?;
                Ok(Present(true))
            }
        }
        d.deserialize_any(V)
    }
}

/// The length of an array (token id lists), counted without building it; else `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Count(pub Option<u64>);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Count;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Count, A::Error> {
                let mut n = 0;
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(Count(Some(n)))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Count, E> {
                Ok(Count(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Count, E> {
                Ok(Count(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Count, E> {
                Ok(Count(None))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Count, E> {
                Ok(Count(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Count, E> {
                Ok(Count(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Count, E> {
                Ok(Count(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Count, E> {
                Ok(Count(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Count, A::Error> {
                drain_map(map)?;
                Ok(Count(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// An API error in any of the shapes servers use (FORMATS.md §1.5, §2.3, §5.7): an object
/// `{message, type, param, code}`, that object wrapped once more in `{"error": {...}}`,
/// vLLM's flat `{"object": "error", ...}`, a plain string, FastAPI's `detail` (string or a
/// list of `{loc, msg, type}`). `null` and `false` mean "no error".
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ApiError {
    /// A non-null error value was there.
    pub present: bool,
    pub message: Option<String>,
    /// `type`, e.g. `BadRequestError`, `invalid_request_error`.
    pub kind: Option<String>,
    /// An integer `code` (vLLM puts the HTTP status there).
    pub code_num: Option<u64>,
    /// A string `code` (OpenAI: `model_not_found`).
    pub code_str: Option<String>,
}

impl ApiError {
    /// Fill what is still missing from a nested error object.
    fn merge(&mut self, inner: ApiError) {
        if !inner.present {
            return;
        }
        self.present = true;
        self.message = self.message.take().or(inner.message);
        self.kind = self.kind.take().or(inner.kind);
        self.code_num = self.code_num.or(inner.code_num);
        self.code_str = self.code_str.take().or(inner.code_str);
    }

    /// The integer code when it is an HTTP status.
    pub fn http_status(&self) -> Option<u16> {
        self.code_num
            .filter(|c| (100..=599).contains(c))
            .map(|c| c as u16)
    }

    /// One line for `RequestRecord.error`: `type: message [code]`, capped.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        if let Some(k) = &self.kind {
            s.push_str(k);
        }
        if let Some(m) = &self.message {
            if !s.is_empty() {
                s.push_str(": ");
            }
            s.push_str(m);
        }
        if s.is_empty() {
            s.push_str("error");
        }
        if let Some(c) = &self.code_str {
            s.push_str(&format!(" [{c}]"));
        } else if let Some(c) = self.code_num {
            s.push_str(&format!(" [{c}]"));
        }
        cap_message(s)
    }
}

/// Cut a message to [`MAX_MESSAGE`] bytes at a character boundary (one rule for every
/// stored error message: [`crate::schema::truncate`]).
pub(crate) fn cap_message(s: String) -> String {
    if s.len() > MAX_MESSAGE {
        crate::schema::truncate(&s, MAX_MESSAGE)
    } else {
        s
    }
}

impl<'de> Deserialize<'de> for ApiError {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ApiError;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an error object or message")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ApiError, E> {
                Ok(ApiError {
                    present: true,
                    message: Some(cap_message(v.to_owned())),
                    ..Default::default()
                })
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<ApiError, E> {
                Ok(ApiError {
                    present: v,
                    ..Default::default()
                })
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ApiError, E> {
                Ok(ApiError {
                    present: true,
                    code_num: Some(v),
                    ..Default::default()
                })
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ApiError, E> {
                Ok(ApiError {
                    present: true,
                    message: Some(format!("error {v}")),
                    ..Default::default()
                })
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ApiError, E> {
                Ok(ApiError {
                    present: true,
                    message: Some(format!("error {v}")),
                    ..Default::default()
                })
            }
            fn visit_unit<E: de::Error>(self) -> Result<ApiError, E> {
                Ok(ApiError::default())
            }
            fn visit_none<E: de::Error>(self) -> Result<ApiError, E> {
                Ok(ApiError::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ApiError, A::Error> {
                let mut e = ApiError {
                    present: true,
                    ..Default::default()
                };
                let mut nested = ApiError::default();
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    match key.as_ref() {
                        "message" | "msg" => {
                            if let Some(m) = map.next_value::<Text>()?.0 {
                                e.message = Some(cap_message(m.into_owned()));
                            }
                        }
                        "type" => e.kind = map.next_value::<Text>()?.to_owned_string(),
                        "code" => {
                            if let Some(c) = map.next_value::<Text>()?.0 {
                                match c.parse::<u64>() {
                                    Ok(n) => e.code_num = Some(n),
                                    Err(_) => e.code_str = Some(cap_message(c.into_owned())),
                                }
                            }
                        }
                        "error" | "detail" => nested.merge(map.next_value::<ApiError>()?),
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                e.merge(nested);
                Ok(e)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ApiError, A::Error> {
                // FastAPI's `detail`: a list of validation problems; keep the first.
                let mut e = seq.next_element::<ApiError>()?.unwrap_or_default();
                let mut more = 0u64;
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    more += 1;
                }
                e.present = true;
                if more > 0 {
                    let m = e.message.take().unwrap_or_else(|| "error".into());
                    e.message = Some(cap_message(format!("{m} (and {more} more)")));
                }
                Ok(e)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Default)]
    #[serde(default)]
    struct T<'a> {
        u: Uint,
        n: Num,
        f: Flag,
        #[serde(borrow)]
        t: Text<'a>,
        p: Present,
        c: Count,
        e: ApiError,
    }

    #[test]
    fn lenient_values_accept_anything() {
        let t: T = serde_json::from_str(
            r#"{"u": 12.0, "n": "1.5", "f": 1, "t": 7, "p": null, "c": [1, [2], {"a": 3}], "e": false}"#,
        )
        .unwrap();
        assert_eq!(t.u, Uint(Some(12)));
        assert_eq!(t.n, Num(Some(1.5)));
        assert_eq!(t.f, Flag(None));
        assert_eq!(t.t.as_str(), Some("7"));
        assert_eq!(t.p, Present(false));
        assert_eq!(t.c, Count(Some(3)));
        assert!(!t.e.present);
        let t: T = serde_json::from_str(
            r#"{"u": -3, "n": {"x": [1]}, "f": true, "t": [1], "p": {}, "c": null, "e": [{"msg": "bad", "loc": []}, {"msg": "x"}]}"#,
        )
        .unwrap();
        assert_eq!(t.u, Uint(None));
        assert_eq!(t.n, Num(None));
        assert_eq!(t.f, Flag(Some(true)));
        assert_eq!(t.t.as_str(), None);
        assert_eq!(t.p, Present(true));
        assert_eq!(t.c, Count(None));
        assert_eq!(t.e.message.as_deref(), Some("bad (and 1 more)"));
    }

    #[test]
    fn nested_errors_are_merged() {
        let e: ApiError = serde_json::from_str(
            r#"{"error": {"object": "error", "message": "boom", "type": "InternalServerError", "param": null, "code": 500}}"#,
        )
        .unwrap();
        assert_eq!(e.describe(), "InternalServerError: boom [500]");
        assert_eq!(e.http_status(), Some(500));
        let e: ApiError =
            serde_json::from_str(r#"{"code": "model_not_found", "message": "no"}"#).unwrap();
        assert_eq!(e.http_status(), None);
        assert_eq!(e.describe(), "no [model_not_found]");
    }

    #[test]
    fn messages_are_capped_at_char_boundaries() {
        let long = "é".repeat(MAX_MESSAGE);
        let capped = cap_message(long);
        assert!(capped.len() <= MAX_MESSAGE + 3);
        assert!(capped.ends_with("..."));
    }
}
