//! When requests are due: closed-loop concurrency, or an open-loop rate whose gaps are
//! constant or drawn from a gamma distribution (shape = burstiness; 1 is a Poisson
//! process, smaller is burstier, larger is more regular; the mean gap is always 1/rate).

use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;
use rand_distr::{Distribution, Gamma};

/// How gaps between arrivals are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// Gamma-distributed gaps (exponential when burstiness is 1).
    Poisson,
    /// Every gap exactly 1/rate.
    Constant,
}

impl Arrival {
    pub fn name(self) -> &'static str {
        match self {
            Arrival::Poisson => "poisson",
            Arrival::Constant => "constant",
        }
    }
}

/// An open-loop request rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Requests per second (> 0).
    pub per_sec: f64,
    pub arrival: Arrival,
    /// Gamma shape (> 0); 1 = Poisson.
    pub burstiness: f64,
}

/// Arrival offsets in seconds from the start of the measured phase: the first request is
/// due at 0, each later one a drawn gap after the previous.
pub struct Arrivals {
    rate: Rate,
    gamma: Option<Gamma<f64>>,
    rng: Xoshiro256PlusPlus,
    next_s: f64,
}

impl Arrivals {
    pub fn new(rate: Rate, seed: u64) -> Arrivals {
        let gamma = match rate.arrival {
            Arrival::Poisson => {
                Gamma::new(rate.burstiness, 1.0 / (rate.per_sec * rate.burstiness)).ok()
            }
            Arrival::Constant => None,
        };
        Arrivals {
            rate,
            gamma,
            rng: Xoshiro256PlusPlus::seed_from_u64(seed ^ 0x5DEE_CE66_D1CE_4E5B),
            next_s: 0.0,
        }
    }
}

impl Iterator for Arrivals {
    type Item = f64;

    fn next(&mut self) -> Option<f64> {
        let at = self.next_s;
        let gap = match &self.gamma {
            Some(g) => g.sample(&mut self.rng),
            None => 1.0 / self.rate.per_sec,
        };
        self.next_s += gap;
        Some(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mean_and_cv(rate: Rate) -> (f64, f64) {
        let t: Vec<f64> = Arrivals::new(rate, 1).take(20_001).collect();
        let gaps: Vec<f64> = t.windows(2).map(|w| w[1] - w[0]).collect();
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64;
        (mean, var.sqrt() / mean)
    }

    #[test]
    fn constant_gaps() {
        let mut a = Arrivals::new(
            Rate {
                per_sec: 4.0,
                arrival: Arrival::Constant,
                burstiness: 1.0,
            },
            0,
        );
        assert_eq!(a.next(), Some(0.0));
        assert_eq!(a.next(), Some(0.25));
        assert_eq!(a.next(), Some(0.5));
    }

    #[test]
    fn gamma_mean_is_one_over_rate_and_burstiness_sets_spread() {
        let poisson = Rate {
            per_sec: 100.0,
            arrival: Arrival::Poisson,
            burstiness: 1.0,
        };
        let (mean, cv) = mean_and_cv(poisson);
        assert!((mean - 0.01).abs() < 0.0005, "{mean}");
        assert!((cv - 1.0).abs() < 0.05, "exponential gaps have cv 1: {cv}");
        let (mean, cv) = mean_and_cv(Rate {
            burstiness: 4.0,
            ..poisson
        });
        assert!((mean - 0.01).abs() < 0.0005, "{mean}");
        assert!((cv - 0.5).abs() < 0.05, "gamma(k) has cv 1/sqrt(k): {cv}");
        // deterministic for a seed
        let a: Vec<f64> = Arrivals::new(poisson, 9).take(5).collect();
        let b: Vec<f64> = Arrivals::new(poisson, 9).take(5).collect();
        assert_eq!(a, b);
    }
}
