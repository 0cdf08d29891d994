//! Deterministic randomness for the simulator: a small xoshiro256++ generator seeded
//! through SplitMix64 (stable across platforms and crate versions, unlike `rand`'s
//! `StdRng`), the word list generated text is drawn from, and output-length sampling.

use super::config::{OutputLen, OutputLenDist};

/// SplitMix64 step: turns any 64-bit value into a well-mixed one.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Derive the seed of an independent stream from a parent seed and a label.
pub(crate) fn derive(seed: u64, label: u64) -> u64 {
    mix64(seed ^ mix64(label.wrapping_add(0x5851_F42D_4C95_7F2D)))
}

/// FNV-1a hash of bytes, used to fold request-provided seeds and strings into a seed.
pub(crate) fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// xoshiro256++: fast, small, good enough for simulated text and timing.
#[derive(Clone, Debug)]
pub(crate) struct Rng {
    s: [u64; 4],
}

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        let mut z = seed;
        let mut s = [0u64; 4];
        for slot in &mut s {
            z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
            *slot = mix64(z);
        }
        Rng { s }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `0..n` (`n > 0`), by multiply-shift (bias is negligible for small n).
    pub(crate) fn below(&mut self, n: u32) -> u32 {
        ((u64::from(self.next_u64() as u32) * u64::from(n)) >> 32) as u32
    }

    /// True with probability `p`.
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.unit() < p
    }

    /// Standard normal by Box-Muller.
    pub(crate) fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.unit(); // (0, 1]
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Multiplier `1 + jitter * u`, `u` uniform in `[-1, 1)`.
    pub(crate) fn jitter(&mut self, jitter: f64) -> f64 {
        if jitter <= 0.0 {
            1.0
        } else {
            1.0 + jitter * (2.0 * self.unit() - 1.0)
        }
    }

    /// Draw an output length (at least 1) from the configured distribution.
    pub(crate) fn output_len(&mut self, o: &OutputLen) -> u32 {
        let mean = f64::from(o.mean);
        let v = match o.dist {
            OutputLenDist::Fixed => mean,
            OutputLenDist::Uniform => {
                let lo = (mean * (1.0 - o.spread)).max(1.0);
                let hi = (mean * (1.0 + o.spread)).max(lo);
                lo + (hi - lo + 1.0) * self.unit()
            }
            OutputLenDist::Normal => mean + mean * o.spread * self.normal(),
        };
        v.floor().clamp(1.0, f64::from(u32::MAX)) as u32
    }
}

/// Words of generated text. All ASCII letters, so they never need JSON escaping and one
/// content chunk carries exactly one word (= one simulated token).
pub(crate) const WORDS: &[&str] = &[
    "the",
    "model",
    "server",
    "token",
    "batch",
    "queue",
    "latency",
    "request",
    "stream",
    "engine",
    "cache",
    "prompt",
    "answer",
    "simple",
    "fast",
    "steady",
    "value",
    "result",
    "data",
    "time",
    "first",
    "next",
    "last",
    "every",
    "small",
    "large",
    "quick",
    "clear",
    "sample",
    "signal",
    "river",
    "mountain",
    "forest",
    "ocean",
    "cloud",
    "light",
    "stone",
    "paper",
    "garden",
    "window",
    "bridge",
    "market",
    "castle",
    "planet",
    "rocket",
    "engine",
    "memory",
    "kernel",
    "thread",
    "socket",
    "buffer",
    "vector",
    "matrix",
    "tensor",
    "layer",
    "weight",
    "gradient",
    "softmax",
    "attention",
    "decoder",
    "encoder",
    "context",
    "window",
    "and",
    "of",
    "to",
    "in",
    "is",
    "it",
    "that",
    "with",
    "for",
    "as",
    "on",
    "was",
    "by",
    "this",
    "from",
    "are",
    "be",
    "or",
    "an",
    "at",
    "which",
    "can",
    "will",
    "more",
    "when",
    "also",
    "into",
    "its",
    "than",
    "then",
    "some",
    "these",
    "would",
    "other",
    "because",
];

/// Produces the words of one response: the first without a leading space, the others
/// with one, so the concatenated text reads as space-separated words.
#[derive(Clone, Debug)]
pub(crate) struct TextGen {
    rng: Rng,
    index: u32,
}

impl TextGen {
    pub(crate) fn new(seed: u64) -> Self {
        TextGen {
            rng: Rng::new(seed),
            index: 0,
        }
    }

    /// Next token text, borrowed from the static word list plus a leading-space flag.
    #[inline]
    pub(crate) fn next_word(&mut self) -> (bool, &'static str) {
        let w = WORDS[self.rng.below(WORDS.len() as u32) as usize];
        let space = self.index > 0;
        self.index += 1;
        (space, w)
    }

    /// Append the next token to `out` (as it appears in a content chunk).
    #[inline]
    pub(crate) fn push_next(&mut self, out: &mut Vec<u8>) {
        let (space, w) = self.next_word();
        if space {
            out.push(b' ');
        }
        out.extend_from_slice(w.as_bytes());
    }

    /// The whole text of `n` tokens.
    pub(crate) fn text(&mut self, n: u32) -> String {
        let mut out = Vec::with_capacity(n as usize * 7);
        for _ in 0..n {
            self.push_next(&mut out);
        }
        String::from_utf8(out).expect("word list is ASCII")
    }
}

/// Whitespace-separated words in `s`: the simulator's token count for prompt text.
pub(crate) fn count_words(s: &str) -> u32 {
    s.split_whitespace().count().min(u32::MAX as usize) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        assert_ne!(Rng::new(7).next_u64(), Rng::new(8).next_u64());
        assert_eq!(TextGen::new(3).text(20), TextGen::new(3).text(20));
    }

    #[test]
    fn ranges_hold() {
        let mut r = Rng::new(1);
        for _ in 0..10_000 {
            let u = r.unit();
            assert!((0.0..1.0).contains(&u));
            assert!(r.below(5) < 5);
            let j = r.jitter(0.2);
            assert!((0.8..1.2).contains(&j));
        }
        let o = OutputLen {
            mean: 100,
            spread: 0.5,
            dist: OutputLenDist::Uniform,
        };
        for _ in 0..10_000 {
            let n = r.output_len(&o);
            assert!((50..=150).contains(&n), "{n}");
        }
        let o = OutputLen {
            mean: 3,
            spread: 5.0,
            dist: OutputLenDist::Normal,
        };
        for _ in 0..1000 {
            assert!(r.output_len(&o) >= 1);
        }
    }

    #[test]
    fn words_are_plain_ascii_and_text_counts_back() {
        assert!(
            WORDS
                .iter()
                .all(|w| w.bytes().all(|b| b.is_ascii_lowercase()))
        );
        let t = TextGen::new(9).text(37);
        assert_eq!(count_words(&t), 37);
        assert!(!t.starts_with(' '));
    }
}
