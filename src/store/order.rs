//! The order of things read from the store: runs oldest first (by instants, ties by id),
//! and the small parallel map the metadata readers use.

use crate::schema::Metadata;

use super::ids;

/// Map `f` over `items` on up to `available_parallelism` threads, keeping order.
pub fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(8);
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

/// The order of runs given as (timestamp, test id), oldest first, as indices: by instants,
/// not text (offsets differ); a timestamp that is no date sorts oldest; ties by id.
pub fn oldest_first(keys: &[(&str, &str)]) -> Vec<usize> {
    let at: Vec<Option<chrono::DateTime<chrono::Utc>>> = keys
        .iter()
        .map(|(ts, _)| {
            chrono::DateTime::parse_from_rfc3339(&ts.trim().to_ascii_uppercase())
                .ok()
                .map(|t| t.to_utc())
        })
        .collect();
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by(|&a, &b| {
        (at[a], keys[a].0)
            .cmp(&(at[b], keys[b].0))
            .then_with(|| ids::cmp_ids(keys[a].1, keys[b].1))
    });
    order
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
