//! Conversation datasets (ShareGPT-style JSON, a local file) into prompts: the first human
//! turn of each conversation, and the length of the reply that followed it.
//!
//! The file is one JSON array of `{"conversations": [{"from": "human", "value": ...},
//! {"from": "gpt", "value": ...}, ...]}` (ShareGPT, as `vllm bench serve --dataset-name
//! sharegpt` reads it; `"role"`/`"content"` keys are taken too). It is read as a stream:
//! one conversation is parsed at a time and the reading stops after `limit` usable ones, so
//! a 600 MB dataset costs one conversation of memory (each value at most
//! [`MAX_TURN_BYTES`], longer ones are skipped; a conversation over
//! [`MAX_CONVERSATION_BYTES`] of JSON is an error naming it, found while reading, before
//! it is in memory).

use std::cell::Cell;
use std::fmt;
use std::io::{BufReader, Read};
use std::path::Path;
use std::rc::Rc;

use serde::Deserialize;
use serde::de::{DeserializeSeed, IgnoredAny, SeqAccess, Visitor};

use crate::error::Error;

/// Longest prompt or reply kept, in bytes; a conversation with a longer first turn is
/// skipped.
pub const MAX_TURN_BYTES: usize = 1 << 20;

/// Most JSON bytes one conversation may take (the reading stops there with an error).
pub const MAX_CONVERSATION_BYTES: u64 = 16 << 20;

/// The count of a [`Capped`] reader that is not counting (skipping keeps nothing).
const OFF: u64 = u64::MAX;

/// Bytes read since the current conversation began; the reader fails past the cap.
struct Capped<R> {
    inner: R,
    used: Rc<Cell<u64>>,
    cap: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if self.used.get() == OFF {
            return Ok(n);
        }
        self.used.set(self.used.get() + n as u64);
        if self.used.get() > self.cap {
            return Err(std::io::Error::other(format!(
                "a conversation is longer than {} MiB of JSON",
                self.cap >> 20
            )));
        }
        Ok(n)
    }
}

/// One request taken from a conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetPrompt {
    /// The first human turn.
    pub prompt: String,
    /// Words in the reply that followed it (a tokenizer-free stand-in for its length).
    pub reply_words: u32,
}

/// What a read found: the prompts, and how many conversations were passed over (no human
/// turn followed by a reply, or a turn over [`MAX_TURN_BYTES`]).
#[derive(Debug, Default)]
pub struct Dataset {
    pub prompts: Vec<DatasetPrompt>,
    pub skipped: u64,
}

#[derive(Deserialize)]
struct Turn {
    #[serde(alias = "role")]
    from: String,
    #[serde(alias = "content")]
    value: String,
}

#[derive(Deserialize)]
struct Conversation {
    #[serde(default, alias = "messages")]
    conversations: Vec<Turn>,
}

impl Conversation {
    fn first_exchange(self) -> Option<DatasetPrompt> {
        let mut turns = self.conversations.into_iter();
        let human = turns.next()?;
        let reply = turns.next()?;
        let is_human = matches!(human.from.as_str(), "human" | "user");
        let is_reply = matches!(
            reply.from.as_str(),
            "gpt" | "assistant" | "chatgpt" | "bard"
        );
        (is_human
            && is_reply
            && !human.value.trim().is_empty()
            && human.value.len() <= MAX_TURN_BYTES
            && reply.value.len() <= MAX_TURN_BYTES)
            .then(|| DatasetPrompt {
                reply_words: reply
                    .value
                    .split_whitespace()
                    .count()
                    .min(u32::MAX as usize) as u32,
                prompt: human.value,
            })
    }
}

/// Read at most `limit` prompts from the dataset at `path`. Errors name the file and why.
pub fn read_sharegpt(path: &Path, limit: u64) -> Result<Dataset, Error> {
    read_sharegpt_capped(path, limit, MAX_CONVERSATION_BYTES)
}

/// [`read_sharegpt`] with a cap on one conversation's JSON bytes (tests use small ones).
pub fn read_sharegpt_capped(path: &Path, limit: u64, cap: u64) -> Result<Dataset, Error> {
    let file = crate::userfile::open(path)
        .map_err(|e| Error::usage(format!("{}: cannot be read ({e})", path.display())))?;
    let used = Rc::new(Cell::new(0));
    let reader = Capped {
        inner: BufReader::with_capacity(1 << 16, file),
        used: used.clone(),
        cap,
    };
    let mut de = serde_json::Deserializer::from_reader(reader);
    let mut out = Dataset::default();
    Collect {
        out: &mut out,
        limit,
        used,
    }
    .deserialize(&mut de)
    .map_err(|e| {
        Error::usage(format!(
            "{}: not a ShareGPT-style dataset ({e}); expected a JSON array of {{\"conversations\": [{{\"from\": \"human\", \"value\": ...}}, {{\"from\": \"gpt\", ...}}]}}",
            path.display()
        ))
    })?;
    Ok(out)
}

/// Takes conversations from the array until `limit` prompts are found, then skips the
/// rest of the array without building it.
struct Collect<'a> {
    out: &'a mut Dataset,
    limit: u64,
    /// Reset before each conversation (see [`Capped`]).
    used: Rc<Cell<u64>>,
}

impl<'de> DeserializeSeed<'de> for Collect<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Collect<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON array of conversations")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while (self.out.prompts.len() as u64) < self.limit {
            self.used.set(0);
            match seq.next_element::<Conversation>()? {
                Some(c) => match c.first_exchange() {
                    Some(p) => self.out.prompts.push(p),
                    None => self.out.skipped += 1,
                },
                None => return Ok(()),
            }
        }
        // Skipping keeps nothing in memory: no cap needed.
        self.used.set(OFF);
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn first_exchanges_are_taken_and_the_rest_skipped() {
        let f = write(
            r#"[
            {"id": "a", "conversations": [{"from": "human", "value": "Hi there"}, {"from": "gpt", "value": "Hello, how can I help?"}]},
            {"id": "b", "conversations": [{"from": "gpt", "value": "no human first"}, {"from": "human", "value": "x"}]},
            {"id": "c", "conversations": [{"from": "human", "value": "alone"}]},
            {"id": "d", "messages": [{"role": "user", "content": "Second"}, {"role": "assistant", "content": "one two"}]},
            {"id": "e", "conversations": [{"from": "human", "value": "Third"}, {"from": "gpt", "value": "a"}]}
        ]"#,
        );
        let d = read_sharegpt(f.path(), 2).unwrap();
        assert_eq!(
            d.prompts,
            vec![
                DatasetPrompt {
                    prompt: "Hi there".into(),
                    reply_words: 5
                },
                DatasetPrompt {
                    prompt: "Second".into(),
                    reply_words: 2
                },
            ]
        );
        assert_eq!(d.skipped, 2);
        let all = read_sharegpt(f.path(), 100).unwrap();
        assert_eq!(all.prompts.len(), 3);
    }

    #[test]
    fn a_file_that_is_no_dataset_is_a_clear_error() {
        let f = write(r#"{"conversations": []}"#);
        let e = read_sharegpt(f.path(), 10).unwrap_err().to_string();
        assert!(e.contains("not a ShareGPT-style dataset"), "{e}");
        let big = format!(
            r#"[{{"conversations": [{{"from": "human", "value": "ok"}}, {{"from": "gpt", "value": "fine"}}]}}, {{"conversations": [{{"from": "human", "value": "{}"}}]}}]"#,
            "x".repeat(5000)
        );
        let f = write(&big);
        let e = read_sharegpt_capped(f.path(), 10, 1000)
            .unwrap_err()
            .to_string();
        assert!(e.contains("longer than"), "{e}");
        assert_eq!(
            read_sharegpt_capped(f.path(), 1, 1000)
                .unwrap()
                .prompts
                .len(),
            1
        );
        let f = write(r#"[{"conversations": [{"from": "human", "value": "cut"#);
        let e = read_sharegpt(f.path(), 10).unwrap_err().to_string();
        assert!(e.contains("not a ShareGPT-style dataset"), "{e}");
    }
}
