//! Conversation datasets (ShareGPT-style JSON, a local file) into prompts: the first human
//! turn of each conversation, and the length of the reply that followed it.
//!
//! The file is one JSON array of `{"conversations": [{"from": "human", "value": ...},
//! {"from": "gpt", "value": ...}, ...]}` (ShareGPT, as `vllm bench serve --dataset-name
//! sharegpt` reads it; `"role"`/`"content"` keys are taken too). It is read as a stream:
//! one conversation is parsed at a time and the reading stops after `limit` usable ones, so
//! a 600 MB dataset costs one conversation of memory (each value at most
//! [`MAX_TURN_BYTES`], longer ones are skipped).

use std::fmt;
use std::io::BufReader;
use std::path::Path;

use serde::Deserialize;
use serde::de::{DeserializeSeed, IgnoredAny, SeqAccess, Visitor};

use crate::error::Error;

/// Longest prompt or reply kept, in bytes; a conversation with a longer first turn is
/// skipped.
pub const MAX_TURN_BYTES: usize = 1 << 20;

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
    let file = std::fs::File::open(path)
        .map_err(|e| Error::usage(format!("{}: cannot be read ({e})", path.display())))?;
    let mut de = serde_json::Deserializer::from_reader(BufReader::with_capacity(1 << 16, file));
    let mut out = Dataset::default();
    Collect {
        out: &mut out,
        limit,
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
            match seq.next_element::<Conversation>()? {
                Some(c) => match c.first_exchange() {
                    Some(p) => self.out.prompts.push(p),
                    None => self.out.skipped += 1,
                },
                None => return Ok(()),
            }
        }
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
        let f = write(r#"[{"conversations": [{"from": "human", "value": "cut"#);
        let e = read_sharegpt(f.path(), 10).unwrap_err().to_string();
        assert!(e.contains("not a ShareGPT-style dataset"), "{e}");
    }
}
