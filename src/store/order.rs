//! The order of things read from the store: runs oldest first (by instants, ties by id),
//! and the small parallel map the metadata readers use.

use crate::schema::Metadata;

use super::ids;

/// Threads for the store's parallel reads: the machine's, at most 8.
fn workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(8)
}

/// Map `f` over `items` on up to `available_parallelism` threads, keeping order.
pub fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = workers();
    if items.len() < 64 || threads < 2 {
        return items.iter().map(&f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| s.spawn(|| part.iter().map(&f).collect::<Vec<R>>()))
            .collect();
        let mut out = Vec::with_capacity(items.len());
        for h in handles {
            out.extend(h.join().expect("metadata reader thread panicked"));
        }
        out
    })
}

/// Fill `out` on up to `available_parallelism` threads, each given one contiguous chunk
/// and the index of its first slot: every item is built once, in the slot it keeps (a
/// large item built on a thread and then moved into one list touched its memory twice).
pub fn parallel_fill<T: Send>(out: &mut [T], f: impl Fn(usize, &mut [T]) + Sync) {
    let threads = workers();
    if out.len() < 64 || threads < 2 {
        return f(0, out);
    }
    let chunk = out.len().div_ceil(threads);
    std::thread::scope(|s| {
        for (k, part) in out.chunks_mut(chunk).enumerate() {
            let f = &f;
            s.spawn(move || f(k * chunk, part));
        }
    });
}

/// The order of runs given as (timestamp, test id), oldest first, as indices: by instants,
/// not text (offsets differ); a timestamp that is no date sorts oldest; ties by id.
pub fn oldest_first(keys: &[(&str, &str)]) -> Vec<usize> {
    let by = Oldest::new(keys);
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by(|&a, &b| by.cmp(a, b));
    order
}

/// The comparison [`oldest_first`] sorts by, for callers that need only part of the
/// order (the latest of 100,000 runs is one pass, not a sort).
pub struct Oldest<'a> {
    keys: &'a [(&'a str, &'a str)],
    at: Vec<Option<chrono::DateTime<chrono::Utc>>>,
}

impl<'a> Oldest<'a> {
    pub fn new(keys: &'a [(&'a str, &'a str)]) -> Self {
        let at = keys
            .iter()
            .map(|(ts, _)| {
                plain_utc(ts).or_else(|| {
                    chrono::DateTime::parse_from_rfc3339(&ts.trim().to_ascii_uppercase())
                        .ok()
                        .map(|t| t.to_utc())
                })
            })
            .collect();
        Oldest { keys, at }
    }

    /// Key `a` against key `b`: older first, then by timestamp text, then by id.
    pub fn cmp(&self, a: usize, b: usize) -> std::cmp::Ordering {
        let k = self.keys;
        (self.at[a], k[a].0)
            .cmp(&(self.at[b], k[b].0))
            .then_with(|| ids::cmp_ids(k[a].1, k[b].1))
    }
}

/// The instant of a timestamp in the form every benchkeep run writes,
/// `YYYY-MM-DDTHH:MM:SSZ`, read without allocating (a store of 100,000 runs sorts them
/// all); `None` for any other form (RFC 3339's general parser reads those).
fn plain_utc(ts: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let b = ts.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    if b[16] != b':' || b[19] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    let date = chrono::NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)?;
    let time = chrono::NaiveTime::from_hms_opt(num(11..13)?, num(14..16)?, num(17..19)?)?;
    Some(date.and_time(time).and_utc())
}

/// Oldest first, by instants, not text (offsets differ); a timestamp that is no date sorts
/// oldest; ties by id. Metadata is large: sort indices, then move each run once.
pub(crate) fn sort_oldest_first(runs: &mut [Metadata]) {
    let keys: Vec<(&str, &str)> = runs
        .iter()
        .map(|m| (m.timestamp.as_str(), m.test_id.as_str()))
        .collect();
    let order = oldest_first(&keys);
    permute_in_place(runs, order);
}

/// Reorder `items` so that position `k` holds what was at `order[k]`, by swaps along the
/// permutation's cycles: no second copy of the (large) items.
pub fn permute_in_place<T>(items: &mut [T], mut order: Vec<usize>) {
    for start in 0..order.len() {
        let mut k = start;
        while order[k] != start {
            let next = order[k];
            items.swap(k, next);
            order[k] = k;
            k = next;
        }
        order[k] = k;
    }
}

#[cfg(test)]
mod plain_utc_tests {
    /// The fast path reads exactly what RFC 3339's parser reads, and leaves every other
    /// form (offsets, fractions, lower case, a leap second, a bad date) to it.
    #[test]
    fn the_fast_path_agrees_with_chrono() {
        for ts in [
            "2026-10-01T00:00:00Z",
            "1999-12-31T23:59:59Z",
            "2024-02-29T12:30:45Z",
            "2026-02-29T12:30:45Z",
            "2026-13-01T00:00:00Z",
            "2026-10-01T24:00:00Z",
            "2026-10-01T23:59:60Z",
            "2026-10-01t00:00:00z",
            "2026-10-01T00:00:00+02:00",
            "2026-10-01T00:00:00.5Z",
            "2026-1a-01T00:00:00Z",
            "2026-10-01 00:00:00Z",
        ] {
            let fast = super::plain_utc(ts);
            let slow = chrono::DateTime::parse_from_rfc3339(&ts.to_ascii_uppercase())
                .ok()
                .map(|t| t.to_utc());
            if let Some(f) = fast {
                assert_eq!(Some(f), slow, "{ts}");
            }
            let plain = ts.len() == 20 && ts.ends_with('Z') && ts.as_bytes()[10] == b'T';
            if plain && slow.is_some() && !ts.contains(":60") {
                assert!(fast.is_some(), "{ts} should take the fast path");
            }
        }
    }
}

#[cfg(test)]
mod permute_tests {
    #[test]
    fn permute_in_place_puts_each_item_where_the_order_says() {
        let order = vec![3, 0, 4, 1, 2, 5];
        let mut items = vec!['a', 'b', 'c', 'd', 'e', 'f'];
        let want: Vec<char> = order.iter().map(|&i| items[i]).collect();
        super::permute_in_place(&mut items, order);
        assert_eq!(items, want);
    }
}
