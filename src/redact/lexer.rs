//! A POSIX shell word splitter that keeps, for each byte of a word's value, where it came
//! from in the line and under which quoting, so a secret can be replaced in place.
//!
//! Hand-written rather than the `shlex` crate: `shlex::split` returns bare values without
//! source positions, treats `;|&()<>` as word characters, drops `#` comments and gives up
//! on an unterminated quote, and each of those would change or leak a redacted line.

use std::ops::Range;

/// Quoting in force at a character of a shell line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Quote {
    None,
    Single,
    Double,
}

/// One shell word: its value (quotes and escapes removed) and, for each byte of the value,
/// where its source lies in the line and under which quoting.
#[derive(Debug)]
pub(super) struct Word {
    pub(super) value: String,
    pub(super) start: Vec<usize>,
    pub(super) end: Vec<usize>,
    pub(super) quote: Vec<Quote>,
    /// The whole word in the line, quotes included.
    pub(super) span: Range<usize>,
}

impl Word {
    fn at(i: usize) -> Word {
        Word {
            value: String::new(),
            start: Vec::new(),
            end: Vec::new(),
            quote: Vec::new(),
            span: i..i,
        }
    }

    fn push(&mut self, c: char, start: usize, end: usize, quote: Quote) {
        for _ in 0..c.len_utf8() {
            self.start.push(start);
            self.end.push(end);
            self.quote.push(quote);
        }
        self.value.push(c);
        self.span.end = end;
    }
}

#[derive(Debug)]
pub(super) enum Token {
    Word(Word),
    /// `;`, `|`, `&`, `(`, `)`, `<`, `>` or a newline: the words around it are apart.
    Operator,
}

/// Split a shell command line into words, as POSIX `sh` would (no expansion). Never fails:
/// an unterminated quote runs to the end.
pub(super) fn tokenize(s: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut cur: Option<Word> = None;
    let mut quote = Quote::None;
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let after = i + c.len_utf8();
        match quote {
            Quote::Single => {
                let w = cur.get_or_insert_with(|| Word::at(i));
                if c == '\'' {
                    quote = Quote::None;
                    w.span.end = after;
                } else {
                    w.push(c, i, after, Quote::Single);
                }
            }
            Quote::Double => {
                let w = cur.get_or_insert_with(|| Word::at(i));
                if c == '"' {
                    quote = Quote::None;
                    w.span.end = after;
                } else if c == '\\'
                    && let Some(&(j, n)) = chars.peek()
                    && "$`\"\\\n".contains(n)
                {
                    chars.next();
                    let end = j + n.len_utf8();
                    if n == '\n' {
                        w.span.end = end;
                    } else {
                        w.push(n, i, end, Quote::Double);
                    }
                } else {
                    w.push(c, i, after, Quote::Double);
                }
            }
            Quote::None => {
                if c.is_whitespace() || ";|&()<>".contains(c) {
                    if let Some(w) = cur.take() {
                        tokens.push(Token::Word(w));
                    }
                    if !c.is_whitespace() || c == '\n' {
                        tokens.push(Token::Operator);
                    }
                } else if c == '\\' && chars.peek().is_some_and(|&(_, n)| n == '\n') {
                    // A line continuation: no character at all.
                    chars.next();
                    if let Some(w) = cur.as_mut() {
                        w.span.end = after + 1;
                    }
                } else {
                    let w = cur.get_or_insert_with(|| Word::at(i));
                    match c {
                        '\'' => {
                            quote = Quote::Single;
                            w.span.end = after;
                        }
                        '"' => {
                            quote = Quote::Double;
                            w.span.end = after;
                        }
                        '\\' => match chars.next() {
                            Some((j, n)) => w.push(n, i, j + n.len_utf8(), Quote::None),
                            None => w.push(c, i, after, Quote::None),
                        },
                        _ => w.push(c, i, after, Quote::None),
                    }
                }
            }
        }
    }
    if let Some(w) = cur.take() {
        tokens.push(Token::Word(w));
    }
    tokens
}
