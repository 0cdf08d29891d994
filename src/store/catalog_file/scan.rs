//! A catalog row's head read in the exact layout benchkeep writes it (keys in
//! `row::Row`'s order, no escapes, no spaces), by a scan instead of a JSON parser: at
//! 100,000 rows the parser was two thirds of a `query`. Anything else (another key order,
//! an escaped string, a number that is not plain, a status this build does not know)
//! returns `None`, and the row goes to the JSON parser: the scan only ever agrees with it.

use std::borrow::Cow;

use super::row::{Head, Labels, RawHead};
use crate::schema::Status;
use crate::store::FileStat;

/// The head of `bytes` (a row's prefix closed with `}`, or a whole row without `run`),
/// when it is in benchkeep's own layout.
pub fn head(bytes: &[u8]) -> Option<Head> {
    if memchr::memchr(b'\\', bytes).is_some() {
        return None;
    }
    let text = std::str::from_utf8(bytes).ok()?;
    let mut c = Cursor { s: text, i: 0 };
    c.lit("{\"catalog\":")?;
    let catalog = u32::try_from(c.uint()?).ok()?;
    c.lit(",\"file\":")?;
    let file = c.string()?;
    c.lit(",\"stat\":{\"ino\":")?;
    let ino = c.uint()?;
    c.lit(",\"size\":")?;
    let size = c.uint()?;
    c.lit(",\"mtime\":")?;
    let mtime = c.int()?;
    c.lit(",\"mtime_nsec\":")?;
    let mtime_nsec = c.int()?;
    c.lit("}")?;
    c.lit(",\"test_id\":")?;
    let test_id = c.string()?;
    c.lit(",\"timestamp\":")?;
    let timestamp = c.string()?;
    c.lit(",\"platform\":")?;
    let platform = c.string()?;
    c.lit(",\"model\":")?;
    let model = c.string()?;
    c.lit(",\"status\":")?;
    let status = Status::from_name(c.string()?)?;
    let mut labels = Vec::new();
    if c.lit(",\"labels\":{").is_some() && c.lit("}").is_none() {
        loop {
            let k = c.string()?;
            c.lit(":")?;
            let v = c.string()?;
            labels.push((Cow::Borrowed(k), Cow::Borrowed(v)));
            if c.lit("}").is_some() {
                break;
            }
            c.lit(",")?;
        }
    }
    c.lit("}")?;
    (c.i == text.len()).then_some(())?;
    Some(Head::from(RawHead {
        catalog,
        file: Cow::Borrowed(file),
        stat: FileStat {
            ino,
            size,
            mtime,
            mtime_nsec,
        },
        test_id: Cow::Borrowed(test_id),
        timestamp: Cow::Borrowed(timestamp),
        platform: Cow::Borrowed(platform),
        model: Cow::Borrowed(model),
        status: Some(status),
        labels: Labels(labels),
        skipped: None,
    }))
}

struct Cursor<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Cursor<'a> {
    fn lit(&mut self, l: &str) -> Option<()> {
        self.s[self.i..].starts_with(l).then(|| self.i += l.len())
    }

    /// A string without escapes (there are none in the row: checked first). JSON allows
    /// no control character in a string either.
    fn string(&mut self) -> Option<&'a str> {
        self.lit("\"")?;
        let rest = &self.s.as_bytes()[self.i..];
        let end = memchr::memchr(b'"', rest)?;
        if rest[..end].iter().any(|&b| b < 0x20) {
            return None;
        }
        let out = &self.s[self.i..self.i + end];
        self.i += end + 1;
        Some(out)
    }

    /// Digits only, no sign, no leading zero (but `0`), within u64.
    fn uint(&mut self) -> Option<u64> {
        let digits = self.s.as_bytes()[self.i..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        let d = &self.s[self.i..self.i + digits];
        if d.is_empty() || (d.len() > 1 && d.starts_with('0')) {
            return None;
        }
        let n = d.parse().ok()?;
        self.i += digits;
        Some(n)
    }

    fn int(&mut self) -> Option<i64> {
        let negative = self.lit("-").is_some();
        let n = i64::try_from(self.uint()?).ok()?;
        Some(if negative { -n } else { n })
    }
}

#[cfg(test)]
mod tests {
    use super::super::row::{Row, line_of, row_of};
    use crate::store::FileStat;

    fn prefix(line: &[u8]) -> Vec<u8> {
        let at = memchr::memmem::find(line, b",\"run\":{").unwrap();
        let mut p = line[..at].to_vec();
        p.push(b'}');
        p
    }

    /// Whatever benchkeep writes, the scan reads exactly as the JSON parser does; what
    /// it does not write, it leaves to the parser.
    #[test]
    fn the_scan_agrees_with_the_parser_or_declines() {
        let stat = FileStat {
            ino: 18446744073709551615,
            size: 0,
            mtime: -5,
            mtime_nsec: 999_999_999,
        };
        let mut row: Row = row_of("x.json", stat, Err("unused".into()));
        row.skipped = None;
        row.test_id = Some("vllm-m-1-2026-12-03".into());
        row.timestamp = Some("2026-12-03T00:00:00Z".into());
        row.platform = Some("vllm".into());
        row.model = Some("Qwen/Qwen3-0.6B".into());
        row.status = Some(crate::schema::Status::Partial);
        row.run = Some(serde_json::json!({"results": {}}));
        for labels in [
            None,
            Some(vec![]),
            Some(vec![("gpu", "h100"), ("batch", "3")]),
            Some(vec![("k", "caf\u{e9} \u{1f600}")]),
        ] {
            row.labels = labels.map(|l| {
                l.into_iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            });
            let line = line_of(&row);
            let p = prefix(&line);
            let fast = super::head(&p).expect("benchkeep's own layout is scanned");
            let slow: super::RawHead = serde_json::from_slice(&p).unwrap();
            let slow = super::Head::from(slow);
            assert_eq!(format!("{fast:?}"), format!("{slow:?}"));
        }
        // Declined: an escape, spaces, another order, a sign or a leading zero, an
        // unknown status, trailing bytes.
        let line = String::from_utf8(prefix(&line_of(&row))).unwrap();
        for bad in [
            line.replace("Qwen/", "Qwen\\/"),
            line.replace(",\"file\":", ", \"file\":"),
            line.replace("\"ino\":18446744073709551615", "\"ino\":018"),
            line.replace(
                "\"ino\":18446744073709551615",
                "\"ino\":18446744073709551616",
            ),
            line.replace("\"size\":0", "\"size\":-0"),
            line.replace("partial", "paused"),
            format!("{line} "),
        ] {
            assert!(super::head(bad.as_bytes()).is_none(), "{bad}");
        }
    }
}
