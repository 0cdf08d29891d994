//! Client stalls: times when benchkeep itself did not run (the process was paused with
//! SIGSTOP, the machine swapped, the runtime was starved). A request in flight then shows
//! latencies that are not the server's; its record says so (`client_stall_ms`) and the
//! results count it.
//!
//! A monitor task ticks every [`TICK`] on the runtime; a tick later than [`STALL`] marks
//! the time since the previous tick as a stall window. A request that finishes while the
//! monitor has not yet run after a stall (both wake at once) still sees the window open
//! from the last tick until now.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the monitor ticks.
pub const TICK: Duration = Duration::from_millis(10);
/// A tick this late marks a stall.
pub const STALL: Duration = Duration::from_millis(200);
/// Stall windows remembered (the oldest are forgotten first; a request lasts at most
/// `--timeout`, so only recent windows matter).
const MAX_WINDOWS: usize = 4096;

#[derive(Debug)]
struct State {
    last_tick: Instant,
    windows: VecDeque<(Instant, Instant)>,
}

/// The stall windows seen so far, shared by the monitor and the request tasks.
#[derive(Debug, Clone)]
pub struct Stalls {
    state: Arc<Mutex<State>>,
}

impl Default for Stalls {
    fn default() -> Self {
        Self::new()
    }
}

impl Stalls {
    pub fn new() -> Stalls {
        Stalls {
            state: Arc::new(Mutex::new(State {
                last_tick: Instant::now(),
                windows: VecDeque::new(),
            })),
        }
    }

    /// One tick of the monitor at `now`.
    pub fn tick(&self, now: Instant) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if now.saturating_duration_since(s.last_tick) > STALL {
            if s.windows.len() >= MAX_WINDOWS {
                s.windows.pop_front();
            }
            let start = s.last_tick;
            s.windows.push_back((start, now));
        }
        s.last_tick = now;
    }

    /// How long the client was stalled between `from` and `to`, ms (`None` when never).
    pub fn within(&self, from: Instant, to: Instant, now: Instant) -> Option<f64> {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let overlap = |(a, b): (Instant, Instant)| {
            let (a, b) = (a.max(from), b.min(to));
            b.saturating_duration_since(a)
        };
        let mut total: Duration = s.windows.iter().map(|w| overlap(*w)).sum();
        if now.saturating_duration_since(s.last_tick) > STALL {
            total += overlap((s.last_tick, now));
        }
        (!total.is_zero()).then(|| (total.as_secs_f64() * 1e6).round() / 1e3)
    }

    /// Run the monitor until the returned handle is aborted.
    pub fn spawn_monitor(&self) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        me.tick(Instant::now());
        tokio::spawn(async move {
            let mut every = tokio::time::interval(TICK);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                me.tick(Instant::now());
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_late_tick_is_a_window_and_requests_overlap_it() {
        let s = Stalls::new();
        let t0 = Instant::now();
        s.tick(t0);
        s.tick(t0 + Duration::from_millis(10));
        let late = t0 + Duration::from_millis(10_010);
        s.tick(late);
        let ms = |a: u64| t0 + Duration::from_millis(a);
        // a request over the whole stall, one half in it, one before it
        let now = ms(10_015);
        assert_eq!(s.within(ms(0), now, now), Some(10_000.0));
        assert_eq!(s.within(ms(5_010), now, now), Some(5_000.0));
        assert_eq!(s.within(ms(0), ms(9), now), None);
        // a stall the monitor has not seen yet (it has not run since)
        let open = Stalls::new();
        open.tick(t0);
        assert_eq!(open.within(t0, ms(3_000), ms(3_000)), Some(3_000.0));
        assert_eq!(open.within(t0, ms(100), ms(100)), None);
    }
}
