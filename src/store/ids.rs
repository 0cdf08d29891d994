//! Test ids: `{platform}-{model}-{num_requests}-{YYYY-MM-DD}` made file-safe, plus `-N`.

/// Who else must agree before an id is ours. A local store needs nobody (the exclusive
/// create of `metadata/<id>.json` decides); a store at a URL reserves the id in the
/// object store first by a create-if-absent put (`store::remote`).
pub trait Reserver: Send + Sync + std::fmt::Debug {
    /// Claim `id` with the run's first metadata (`bytes`): `Ok(true)` when it is now ours,
    /// `Ok(false)` when someone else holds it (try the next id), `Err` when the claim could
    /// not be made (nothing was written).
    fn reserve(&self, id: &str, bytes: &[u8]) -> anyhow::Result<bool>;
}

/// Longest file-safe name part we keep (a 10 KB model name must not make a 10 KB file name).
const MAX_PART: usize = 64;

/// Make one part of an id safe as a file name: every run of characters outside
/// `[A-Za-z0-9._]` becomes one `-`; leading and trailing `-` and `.` are dropped, so
/// `../x` can never climb out of the store; long names are cut.
///
/// `google/gemma-3-4b-it` -> `google-gemma-3-4b-it`, `gemma3:12b` -> `gemma3-12b`.
pub fn file_safe(name: &str) -> String {
    let mut out = String::with_capacity(name.len().min(MAX_PART));
    let mut dash = false;
    for c in name.chars() {
        if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
            if dash && !out.is_empty() {
                out.push('-');
            }
            dash = false;
            out.push(c);
        } else {
            dash = true;
        }
        if out.len() >= MAX_PART {
            break;
        }
    }
    let trimmed = out.trim_matches(|c| c == '-' || c == '.');
    if trimmed.is_empty() {
        "unnamed".to_string()
    } else {
        trimmed.to_string()
    }
}

/// The base id (without a `-N` suffix) for a run.
pub fn base_test_id(platform: &str, model: &str, num_requests: u64, date: &str) -> String {
    format!(
        "{}-{}-{}-{}",
        file_safe(platform),
        file_safe(model),
        num_requests,
        date
    )
}

/// The `n`-th candidate for a base id: the base itself, then `base-2`, `base-3`, ...
pub fn candidate(base: &str, n: u32) -> String {
    if n <= 1 {
        base.to_string()
    } else {
        format!("{base}-{n}")
    }
}

/// Order test ids with their runs of digits as numbers, so that `base-9` comes before
/// `base-10` (the tie-break of runs stamped in the same second).
pub fn cmp_ids(a: &str, b: &str) -> std::cmp::Ordering {
    fn chunks(s: &str) -> impl Iterator<Item = (bool, &str)> {
        let mut rest = s;
        std::iter::from_fn(move || {
            let first = rest.chars().next()?;
            let digit = first.is_ascii_digit();
            let end = rest
                .find(|c: char| c.is_ascii_digit() != digit)
                .unwrap_or(rest.len());
            let (chunk, tail) = rest.split_at(end);
            rest = tail;
            Some((digit, chunk))
        })
    }
    let (mut x, mut y) = (chunks(a), chunks(b));
    loop {
        let ord = match (x.next(), y.next()) {
            (None, None) => return a.cmp(b),
            (None, Some(_)) => return std::cmp::Ordering::Less,
            (Some(_), None) => return std::cmp::Ordering::Greater,
            (Some((true, m)), Some((true, n))) => {
                let (m, n) = (m.trim_start_matches('0'), n.trim_start_matches('0'));
                m.len().cmp(&n.len()).then_with(|| m.cmp(n))
            }
            (Some((_, m)), Some((_, n))) => m.cmp(n),
        };
        if ord.is_ne() {
            return ord;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn seed_examples() {
        assert_eq!(file_safe("google/gemma-3-4b-it"), "google-gemma-3-4b-it");
        assert_eq!(file_safe("gemma3:12b"), "gemma3-12b");
        assert_eq!(file_safe("vllm-offline"), "vllm-offline");
        assert_eq!(
            base_test_id("vllm-offline", "gemma3-4b", 5000, "2024-10-28"),
            "vllm-offline-gemma3-4b-5000-2024-10-28"
        );
        assert_eq!(candidate("x", 1), "x");
        assert_eq!(candidate("x", 3), "x-3");
    }

    #[test]
    fn ids_order_their_numbers_as_numbers() {
        use std::cmp::Ordering::*;
        let base = "vllm-m-10-2026-12-02";
        assert_eq!(cmp_ids(&candidate(base, 9), &candidate(base, 10)), Less);
        assert_eq!(cmp_ids(base, &candidate(base, 2)), Less);
        assert_eq!(cmp_ids(&candidate(base, 2), &candidate(base, 2)), Equal);
        assert_eq!(
            cmp_ids("a-007", "a-7"),
            Less,
            "equal values fall back to the text"
        );
        let mut ids: Vec<String> = (1..=12).rev().map(|n| candidate(base, n)).collect();
        ids.sort_by(|a, b| cmp_ids(a, b));
        assert_eq!(ids.last().unwrap(), &candidate(base, 12));
        assert_eq!(ids[0], base);
    }

    #[test]
    fn hostile_names_stay_inside() {
        assert_eq!(file_safe("../x"), "x");
        assert_eq!(file_safe("/etc/passwd"), "etc-passwd");
        assert_eq!(file_safe("a/b"), "a-b");
        assert_eq!(file_safe(".."), "unnamed");
        assert_eq!(file_safe(""), "unnamed");
        assert!(file_safe(&"m".repeat(10_000)).len() <= MAX_PART);
    }

    proptest! {
        #[test]
        fn always_a_plain_file_name(s in ".*") {
            let f = file_safe(&s);
            prop_assert!(!f.is_empty());
            prop_assert!(!f.contains('/') && !f.contains('\\') && !f.contains('\0'));
            prop_assert!(!f.starts_with('.') && f != "..");
            prop_assert!(f.len() <= MAX_PART);
        }
    }
}
