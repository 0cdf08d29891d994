//! A fast path for the hot loop: reading one OpenAI stream chunk without building anything.
//!
//! A 256-token response is 256 small JSON events; deserializing each with serde costs more
//! than everything else the client does. This scanner walks the event once, skips what it
//! does not need (a string is skipped by a `memchr` to its closing quote) and extracts only
//! whether a choice carries content, the finish reason and `usage`. It accepts only plain,
//! well-formed shapes: anything unusual (an `error` key, escaped keys, odd types, malformed
//! JSON) returns `None`, and the caller falls back to the serde path, which stays the
//! reference (a property test checks that both agree).

/// A string value as it appears in the JSON text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawStr<'a> {
    /// The bytes between the quotes, escapes not decoded.
    pub raw: &'a [u8],
    pub escaped: bool,
}

impl<'a> RawStr<'a> {
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The decoded text (the caller has checked the whole event is UTF-8).
    pub fn decode(&self) -> std::borrow::Cow<'a, str> {
        if !self.escaped {
            return std::borrow::Cow::Borrowed(std::str::from_utf8(self.raw).unwrap_or(""));
        }
        let mut quoted = Vec::with_capacity(self.raw.len() + 2);
        quoted.push(b'"');
        quoted.extend_from_slice(self.raw);
        quoted.push(b'"');
        std::borrow::Cow::Owned(serde_json::from_slice::<String>(&quoted).unwrap_or_default())
    }
}

/// What one chunk says, as far as a benchmark cares.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ChunkFacts<'a> {
    /// Some choice carried content (text, reasoning, or a tool call).
    pub content: bool,
    /// The content text (one choice only: several choices with content take the full path).
    pub text: Option<RawStr<'a>>,
    pub finish_reason: Option<RawStr<'a>>,
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
}

type R<T> = Result<T, ()>;

const MAX_DEPTH: u32 = 64;

/// The index of the first `"`, `\\` or control character at or after `i` (or `b.len()`),
/// eight bytes at a time: the strings of a chunk are short, where a SIMD search costs more
/// to set up than it saves.
#[inline]
fn find_special(b: &[u8], mut i: usize) -> usize {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    while let Some(chunk) = b.get(i..i + 8) {
        let w = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
        let q = w ^ (LO * b'"' as u64);
        let s = w ^ (LO * b'\\' as u64);
        // A zero byte of q or s is a quote or a backslash; a byte below 0x20 is a control
        // character. Only the lowest flag of each test is exact, and that is the one used.
        let hit = ((q.wrapping_sub(LO) & !q)
            | (s.wrapping_sub(LO) & !s)
            | (w.wrapping_sub(LO * 0x20) & !w))
            & HI;
        if hit != 0 {
            return i + (hit.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&c) = b.get(i) {
        if c == b'"' || c == b'\\' || c < 0x20 {
            break;
        }
        i += 1;
    }
    i
}

struct Json<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Json<'a> {
    #[inline]
    fn ws(&mut self) {
        while let Some(&c) = self.b.get(self.i) {
            if matches!(c, b' ' | b'\n' | b'\r' | b'\t') {
                self.i += 1;
            } else {
                break;
            }
        }
    }

    #[inline]
    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }

    #[inline]
    fn eat(&mut self, c: u8) -> R<()> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(())
        }
    }

    /// A string starting at the current `"`.
    #[inline]
    fn string(&mut self) -> R<RawStr<'a>> {
        self.eat(b'"')?;
        let start = self.i;
        let mut escaped = false;
        let b = self.b;
        let mut i = self.i;
        loop {
            i = find_special(b, i);
            match b.get(i) {
                Some(b'"') => {
                    self.i = i + 1;
                    return Ok(RawStr {
                        raw: &b[start..i],
                        escaped,
                    });
                }
                Some(b'\\') => {
                    escaped = true;
                    i = self.escape(i + 1)?;
                }
                // a raw control character (not valid JSON), or the end of the data
                _ => return Err(()),
            }
        }
    }

    /// Check the escape whose letter is at `i`; returns the index after it. Stricter than
    /// needed (surrogates must pair up even in skipped strings): refusing only costs the
    /// fallback to the full parser.
    fn escape(&self, i: usize) -> R<usize> {
        match self.b.get(i).ok_or(())? {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Ok(i + 1),
            b'u' => {
                let cp = self.hex4(i + 1)?;
                if (0xD800..0xDC00).contains(&cp) {
                    if self.b.get(i + 5..i + 7) != Some(b"\\u") {
                        return Err(());
                    }
                    let low = self.hex4(i + 7)?;
                    if !(0xDC00..0xE000).contains(&low) {
                        return Err(());
                    }
                    Ok(i + 11)
                } else if (0xDC00..0xE000).contains(&cp) {
                    Err(())
                } else {
                    Ok(i + 5)
                }
            }
            _ => Err(()),
        }
    }

    fn hex4(&self, i: usize) -> R<u32> {
        let h = self.b.get(i..i + 4).ok_or(())?;
        if !h.iter().all(u8::is_ascii_hexdigit) {
            return Err(());
        }
        let s = std::str::from_utf8(h).map_err(|_| ())?;
        u32::from_str_radix(s, 16).map_err(|_| ())
    }

    fn literal(&mut self, word: &[u8]) -> R<()> {
        if self.b.get(self.i..self.i + word.len()) == Some(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(())
        }
    }

    /// A JSON number; `Some` when it is a plain non-negative integer that fits a u64.
    #[inline]
    fn number(&mut self) -> R<Option<u64>> {
        let start = self.i;
        let mut value: Option<u64> = Some(0);
        while let Some(&c) = self.b.get(self.i) {
            if !c.is_ascii_digit() {
                break;
            }
            value = value
                .and_then(|v| v.checked_mul(10))
                .and_then(|v| v.checked_add((c - b'0') as u64));
            self.i += 1;
        }
        let digits = self.i - start;
        let plain = !matches!(self.b.get(self.i), Some(b'.' | b'e' | b'E' | b'-' | b'+'));
        if plain && digits > 0 {
            if digits > 1 && self.b[start] == b'0' {
                return Err(());
            }
            return Ok(value);
        }
        // Signs, fractions, exponents: checked by the real parser (rare in chunks).
        while let Some(&c) = self.b.get(self.i) {
            if c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.' | b'e' | b'E') {
                self.i += 1;
            } else {
                break;
            }
        }
        serde_json::from_slice::<f64>(&self.b[start..self.i]).map_err(|_| ())?;
        Ok(None)
    }

    fn skip(&mut self, depth: u32) -> R<()> {
        if depth > MAX_DEPTH {
            return Err(());
        }
        match self.peek().ok_or(())? {
            b'"' => self.string().map(|_| ()),
            b'{' => self.object(|j, _| j.skip(depth + 1)),
            b'[' => self.array(|j| j.skip(depth + 1)),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => self.number().map(|_| ()),
        }
    }

    /// Walk an object; `f` must consume each value. Keys with escapes are refused.
    fn object(&mut self, mut f: impl FnMut(&mut Self, &'a [u8]) -> R<()>) -> R<()> {
        self.eat(b'{')?;
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(());
        }
        loop {
            let key = self.string()?;
            if key.escaped {
                return Err(());
            }
            self.eat(b':')?;
            f(self, key.raw)?;
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(()),
            }
        }
    }

    fn array(&mut self, mut f: impl FnMut(&mut Self) -> R<()>) -> R<()> {
        self.eat(b'[')?;
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(());
        }
        loop {
            f(self)?;
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(()),
            }
        }
    }

    fn is_null(&mut self) -> bool {
        if self.peek() == Some(b'n') && self.literal(b"null").is_ok() {
            return true;
        }
        false
    }

    /// A string or null (`None`); anything else is refused.
    fn opt_string(&mut self) -> R<Option<RawStr<'a>>> {
        if self.is_null() {
            return Ok(None);
        }
        if self.peek() == Some(b'"') {
            return self.string().map(Some);
        }
        Err(())
    }

    /// An integer or null.
    fn opt_u64(&mut self) -> R<Option<u64>> {
        if self.is_null() {
            return Ok(None);
        }
        match self.peek() {
            Some(c) if c.is_ascii_digit() => self.number(),
            _ => Err(()),
        }
    }

    /// Whether an array value is non-empty (null counts as empty).
    fn nonempty_array(&mut self) -> R<bool> {
        if self.is_null() {
            return Ok(false);
        }
        let mut n = 0;
        self.array(|j| {
            n += 1;
            j.skip(2)
        })?;
        Ok(n > 0)
    }
}

/// The start of the previous chunk of a stream: `{"id":...,"object":...,"created":...,
/// "model":...,` is the same on every chunk of one response, so once parsed it is only
/// compared. Resuming after an identical prefix is exactly equivalent to parsing it again:
/// the parser's state at that point depends on those bytes alone.
#[derive(Debug, Default)]
pub struct Memo {
    prefix: Vec<u8>,
}

/// Scan one chunk of an OpenAI stream (chat or legacy completions). `None` means "use the
/// full parser": an error event, an unusual shape, or malformed JSON.
pub fn openai_chunk<'a>(data: &'a [u8], memo: &mut Memo) -> Option<ChunkFacts<'a>> {
    let resume = !memo.prefix.is_empty() && data.starts_with(&memo.prefix);
    let mut j = Json {
        b: data,
        i: if resume { memo.prefix.len() } else { 0 },
    };
    let mut facts = ChunkFacts::default();
    let mut first = None;
    top(&mut j, &mut facts, resume, &mut first).ok()?;
    if j.peek().is_some() {
        return None; // trailing bytes
    }
    if !resume {
        memo.prefix.clear();
        if let Some(p) = first {
            memo.prefix.extend_from_slice(&data[..p]);
        }
    }
    Some(facts)
}

/// The top-level object. `first` gets the offset of the first key that matters.
fn top<'a>(
    j: &mut Json<'a>,
    facts: &mut ChunkFacts<'a>,
    resume: bool,
    first: &mut Option<usize>,
) -> R<()> {
    if !resume {
        j.eat(b'{')?;
        if j.peek() == Some(b'}') {
            j.i += 1;
            return Ok(());
        }
    }
    loop {
        j.ws();
        let key_start = j.i;
        let key = j.string()?;
        if key.escaped {
            return Err(());
        }
        j.eat(b':')?;
        match key.raw {
            b"choices" => {
                first.get_or_insert(key_start);
                if !j.is_null() {
                    j.array(|j| choice(j, facts))?;
                }
            }
            b"usage" => {
                first.get_or_insert(key_start);
                if !j.is_null() {
                    j.object(|j, k| match k {
                        b"prompt_tokens" => {
                            let v = j.opt_u64()?;
                            if v.is_some() {
                                facts.prompt_tokens = v;
                            }
                            Ok(())
                        }
                        b"completion_tokens" => {
                            let v = j.opt_u64()?;
                            if v.is_some() {
                                facts.completion_tokens = v;
                            }
                            Ok(())
                        }
                        _ => j.skip(2),
                    })?;
                }
            }
            // Errors (nested or old vLLM's flat `object: "error"`) take the full path.
            b"error" | b"message" => return Err(()),
            b"object" => {
                if j.opt_string()?.is_some_and(|s| s.raw == b"error") {
                    return Err(());
                }
            }
            _ => j.skip(1)?,
        }
        match j.peek() {
            Some(b',') => j.i += 1,
            Some(b'}') => {
                j.i += 1;
                return Ok(());
            }
            _ => return Err(()),
        }
    }
}

fn choice<'a>(j: &mut Json<'a>, facts: &mut ChunkFacts<'a>) -> R<()> {
    let mut text: Option<RawStr<'a>> = None;
    let mut any = false;
    let mut finish = None;
    j.object(|j, key| match key {
        b"delta" | b"message" => {
            if j.is_null() {
                return Ok(());
            }
            j.object(|j, k| match k {
                b"content" => {
                    if let Some(s) = j.opt_string()?
                        && !s.is_empty()
                    {
                        any = true;
                        text = Some(s);
                    }
                    Ok(())
                }
                b"reasoning" | b"reasoning_content" => {
                    if j.opt_string()?.is_some_and(|s| !s.is_empty()) {
                        any = true;
                    }
                    Ok(())
                }
                b"tool_calls" => {
                    if j.nonempty_array()? {
                        any = true;
                    }
                    Ok(())
                }
                _ => j.skip(3),
            })
        }
        b"text" => {
            if let Some(s) = j.opt_string()?
                && !s.is_empty()
            {
                any = true;
                if text.is_none() {
                    text = Some(s);
                }
            }
            Ok(())
        }
        b"finish_reason" => {
            finish = j.opt_string()?.filter(|s| !s.is_empty());
            Ok(())
        }
        _ => j.skip(2),
    })?;
    if let Some(f) = finish {
        facts.finish_reason = Some(f);
    }
    if any {
        if facts.content {
            return Err(()); // several choices with content (n > 1): the full path joins them
        }
        facts.content = true;
        facts.text = text;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn openai_chunk_once(data: &[u8]) -> Option<ChunkFacts<'_>> {
        openai_chunk(data, &mut Memo::default())
    }

    #[test]
    fn memo_resumes_after_the_same_prefix() {
        let mut memo = Memo::default();
        let a =
            br#"{"id":"x","object":"chat.completion.chunk","choices":[{"delta":{"content":"a"}}]}"#;
        let b =
            br#"{"id":"x","object":"chat.completion.chunk","choices":[{"delta":{"content":"b"}}]}"#;
        assert_eq!(openai_chunk(a, &mut memo).unwrap().text.unwrap().raw, b"a");
        assert_eq!(
            memo.prefix,
            br#"{"id":"x","object":"chat.completion.chunk","#
        );
        assert_eq!(openai_chunk(b, &mut memo).unwrap().text.unwrap().raw, b"b");
        // a different prefix is parsed in full (and an error is still seen)
        let e = br#"{"id":"x","error":{"message":"boom"}}"#;
        assert!(openai_chunk(e, &mut memo).is_none());
    }

    #[test]
    fn typical_chunks() {
        let f = openai_chunk_once(br#"{"id":"x","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Par"},"logprobs":null,"finish_reason":null,"token_ids":null}]}"#).unwrap();
        assert!(f.content);
        assert_eq!(f.text.unwrap().decode(), "Par");
        let f = openai_chunk_once(br#"{"id":"x","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#).unwrap();
        assert!(!f.content);
        let f = openai_chunk_once(br#"{"id":"x","choices":[],"usage":{"prompt_tokens":23,"total_tokens":28,"completion_tokens":5}}"#).unwrap();
        assert_eq!((f.prompt_tokens, f.completion_tokens), (Some(23), Some(5)));
        let f = openai_chunk_once(br#"{"choices":[{"text":" a\"b\u00e9","index":0,"finish_reason":"length"}],"usage":null}"#).unwrap();
        assert_eq!(f.text.unwrap().decode(), " a\"bé");
        assert_eq!(f.finish_reason.unwrap().decode(), "length");
    }

    #[test]
    fn special_bytes_found_exactly() {
        let text: Vec<u8> = (0u8..=255).collect();
        for start in 0..text.len() {
            let want = (start..text.len())
                .find(|&k| text[k] == b'"' || text[k] == b'\\' || text[k] < 0x20)
                .unwrap_or(text.len());
            assert_eq!(find_special(&text, start), want, "from {start}");
        }
        for s in [
            &b"abcdefgh\"x"[..],
            b"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\\",
            b"plain text of some length",
            b"",
        ] {
            let want = s
                .iter()
                .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
                .unwrap_or(s.len());
            assert_eq!(find_special(s, 0), want);
        }
    }

    #[test]
    fn unusual_shapes_take_the_full_path() {
        for s in [
            r#"{"error":{"message":"boom"}}"#,
            r#"{"object":"error","message":"flat"}"#,
            r#"{"ch\u006fices":[]}"#,
            r#"{"choices":[{"delta":{"content":5}}]}"#,
            r#"{"choices":[] } x"#,
            r#"{"choices":[}"#,
            "not json",
            r#"{"a":01}"#,
            "[1]",
        ] {
            assert!(openai_chunk_once(s.as_bytes()).is_none(), "{s}");
        }
    }
}
