//! Live progress: on a terminal one status line redrawn in place, with
//! events printed above it; otherwise plain lines (a status line every
//! few seconds, each event as it happens).

use std::io::{IsTerminal as _, Write as _};
use std::time::{Duration, Instant};

use crate::timeline::Point;

/// Where a run reports what it does.
pub trait Progress: Send {
    /// Something happened (a phase of the run, a state change).
    fn event(&mut self, t_ms: f64, text: &str);
    /// The latest observation.
    fn status(&mut self, point: &Point);
    /// The run is over: leave the terminal clean.
    fn finish(&mut self);
}

/// Progress on standard output.
#[derive(Debug)]
pub struct Console {
    live: bool,
    drawn: bool,
    last_plain: Option<Instant>,
    plain_every: Duration,
}

impl Console {
    /// Live when standard output is a terminal, plain lines otherwise.
    #[must_use]
    pub fn stdout() -> Self {
        Self {
            live: std::io::stdout().is_terminal(),
            drawn: false,
            last_plain: None,
            plain_every: Duration::from_secs(5),
        }
    }

    fn clear(&mut self, out: &mut impl std::io::Write) {
        if self.drawn {
            let _ = write!(out, "\r\x1b[2K");
            self.drawn = false;
        }
    }
}

/// One status line.
#[must_use]
pub fn status_line(p: &Point) -> String {
    let probability = p
        .probability
        .map_or_else(|| "  -  ".to_owned(), |v| format!("{v:.3}"));
    let lost = p.probes_sent.saturating_sub(p.probes_received);
    format!(
        "t={:>6.1}s {:<12} active={:<7} drift={:.2} p={} fault={:>3.0}% cpu={:>3.0}% ct={:>3.0}% | probes {} sent, {} unanswered, gap {:.0} ms | sessions {} alive, {} failed{}",
        p.t_ms / 1e3,
        p.phase,
        p.active,
        p.drift,
        probability,
        p.fault_level * 100.0,
        p.primary_cpu * 100.0,
        p.primary_conntrack_fill * 100.0,
        p.probes_sent,
        lost,
        p.probe_gap_ms,
        p.sessions_alive,
        p.sessions_failed,
        if p.warming { " (warming up)" } else { "" },
    )
}

impl Progress for Console {
    fn event(&mut self, t_ms: f64, text: &str) {
        let mut out = std::io::stdout().lock();
        self.clear(&mut out);
        let _ = writeln!(out, "[{:>6.1}s] {text}", t_ms / 1e3);
        let _ = out.flush();
    }

    fn status(&mut self, point: &Point) {
        let mut out = std::io::stdout().lock();
        if self.live {
            self.clear(&mut out);
            let _ = write!(out, "{}", status_line(point));
            self.drawn = true;
        } else if self
            .last_plain
            .is_none_or(|at| at.elapsed() >= self.plain_every)
        {
            self.last_plain = Some(Instant::now());
            let _ = writeln!(out, "{}", status_line(point));
        }
        let _ = out.flush();
    }

    fn finish(&mut self) {
        let mut out = std::io::stdout().lock();
        self.clear(&mut out);
        let _ = out.flush();
    }
}

/// Progress kept in memory (tests, or a caller that prints later).
#[derive(Debug, Default)]
pub struct Recorder {
    /// Every event, with its time.
    pub events: Vec<(f64, String)>,
    /// How many status updates arrived.
    pub statuses: usize,
}

impl Progress for Recorder {
    fn event(&mut self, t_ms: f64, text: &str) {
        tracing::info!(t_ms, "{text}");
        self.events.push((t_ms, text.to_owned()));
    }

    fn status(&mut self, _point: &Point) {
        self.statuses += 1;
    }

    fn finish(&mut self) {}
}
