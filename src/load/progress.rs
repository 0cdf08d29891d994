//! The live progress bar on stderr (indicatif): done/total, req/s, output tok/s, errors,
//! ETA. Hidden when stderr is not a terminal or with `--quiet`. It reads the writer's
//! counters on a timer, so requests never touch it.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::writer::Counters;

/// A progress display that updates itself until [`Progress::finish`].
pub struct Progress {
    bar: ProgressBar,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    /// Start a display for `total` requests (`None`: open-ended, for `--duration`).
    pub fn start(total: Option<u64>, counters: Arc<Counters>, quiet: bool) -> Progress {
        let visible = !quiet && std::io::stderr().is_terminal();
        let bar = match total {
            Some(n) if visible => ProgressBar::new(n),
            None if visible => ProgressBar::new_spinner(),
            _ => ProgressBar::hidden(),
        };
        if visible {
            bar.set_draw_target(ProgressDrawTarget::stderr_with_hz(4));
            let template = if total.is_some() {
                "{bar:30} {pos}/{len} {msg} ETA {eta}"
            } else {
                "{spinner} {pos} requests {msg} {elapsed}"
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
        }
        let task = visible.then(|| {
            let bar = bar.clone();
            tokio::spawn(async move {
                let start = Instant::now();
                let mut tick = tokio::time::interval(Duration::from_millis(250));
                loop {
                    tick.tick().await;
                    let secs = start.elapsed().as_secs_f64().max(1e-3);
                    let done = counters.done.load(Relaxed);
                    bar.set_position(done);
                    bar.set_message(format!(
                        "{:.1} req/s, {:.0} output tok/s, {} errors",
                        done as f64 / secs,
                        counters.output_tokens.load(Relaxed) as f64 / secs,
                        counters.errors.load(Relaxed),
                    ));
                }
            })
        });
        Progress { bar, task }
    }

    /// Print a line above the bar (or on stderr when it is hidden).
    pub fn println(&self, line: &str) {
        if self.bar.is_hidden() {
            eprintln!("{line}");
        } else {
            self.bar.println(line);
        }
    }

    /// Remove the bar.
    pub fn finish(mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
        self.bar.finish_and_clear();
    }
}
