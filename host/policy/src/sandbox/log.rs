//! Log lines from policies: `umbra:policy/log` and the lines a policy writes
//! to stdout or stderr, attributed to the policy's name and version and
//! rate-limited so that a chatty or hostile policy cannot flood the host's
//! log.

use std::sync::Mutex;
use std::time::Instant;

use super::HostState;
use crate::bindings::drift::umbra::policy::log::{Host, Level};

/// Longest log line kept; longer lines are cut (at a character boundary)
/// and marked with `…`.
pub(crate) const MAX_LINE_BYTES: usize = 1024;

/// A token bucket shared by every instance of one policy version.
#[derive(Debug)]
pub(crate) struct LogLimiter {
    per_second: f64,
    burst: f64,
    // A synchronous mutex: held for a few arithmetic operations, never across
    // an `.await` or a guest call.
    bucket: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
    suppressed: u64,
}

impl LogLimiter {
    /// A limiter letting `burst` lines through at once and `per_second`
    /// lines per second after that.
    pub(crate) fn new(per_second: u32, burst: u32) -> Self {
        Self {
            per_second: f64::from(per_second),
            burst: f64::from(burst.max(1)),
            bucket: Mutex::new(Bucket {
                tokens: f64::from(burst.max(1)),
                last: Instant::now(),
                suppressed: 0,
            }),
        }
    }

    /// Whether one more line may be written now; when it may, also how many
    /// lines were suppressed since the last one that went through.
    fn admit(&self) -> Option<u64> {
        let mut bucket = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let elapsed = now.duration_since(bucket.last).as_secs_f64();
        bucket.last = now;
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.burst);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Some(std::mem::take(&mut bucket.suppressed))
        } else {
            bucket.suppressed += 1;
            None
        }
    }
}

/// Cuts `line` to [`MAX_LINE_BYTES`] at a character boundary.
pub(crate) fn cut(line: &str) -> std::borrow::Cow<'_, str> {
    if line.len() <= MAX_LINE_BYTES {
        return line.into();
    }
    let mut end = MAX_LINE_BYTES;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &line[..end]).into()
}

impl HostState {
    /// Writes one line attributed to this store's policy, if the rate limit
    /// allows.
    pub(crate) fn emit(&self, level: Level, source: &'static str, line: &str) {
        let Some(suppressed) = self.log.admit() else {
            return;
        };
        let policy = &self.policy;
        if suppressed > 0 {
            tracing::warn!(
                policy = %policy.name, version = %policy.version, kind = %policy.kind,
                suppressed, "policy log lines suppressed by the rate limit"
            );
        }
        let line = cut(line);
        match level {
            Level::Debug => tracing::debug!(
                policy = %policy.name, version = %policy.version, kind = %policy.kind,
                source, "{line}"
            ),
            Level::Info => tracing::info!(
                policy = %policy.name, version = %policy.version, kind = %policy.kind,
                source, "{line}"
            ),
            Level::Warn => tracing::warn!(
                policy = %policy.name, version = %policy.version, kind = %policy.kind,
                source, "{line}"
            ),
            Level::Error => tracing::error!(
                policy = %policy.name, version = %policy.version, kind = %policy.kind,
                source, "{line}"
            ),
        }
    }

    /// Appends bytes written to stdout (`stderr == false`) or stderr and
    /// emits every complete line. A partial line longer than the cap is
    /// emitted as it is, so the buffer never grows past [`MAX_LINE_BYTES`].
    pub(crate) fn write_stdio(&mut self, stderr: bool, bytes: &[u8]) {
        let (level, source) = if stderr {
            (Level::Warn, "stderr")
        } else {
            (Level::Info, "stdout")
        };
        let mut buffer = std::mem::take(if stderr {
            &mut self.stderr
        } else {
            &mut self.stdout
        });
        for &byte in bytes {
            if byte == b'\n' {
                if !buffer.is_empty() {
                    self.emit(level, source, &String::from_utf8_lossy(&buffer));
                }
                buffer.clear();
            } else if buffer.len() < MAX_LINE_BYTES {
                buffer.push(byte);
            } else {
                self.emit(level, source, &String::from_utf8_lossy(&buffer));
                buffer.clear();
                buffer.push(byte);
            }
        }
        *(if stderr {
            &mut self.stderr
        } else {
            &mut self.stdout
        }) = buffer;
    }

    /// Emits what is left of partial stdout/stderr lines (on flush).
    pub(crate) fn flush_stdio(&mut self, stderr: bool) {
        let buffer = std::mem::take(if stderr {
            &mut self.stderr
        } else {
            &mut self.stdout
        });
        if !buffer.is_empty() {
            let (level, source) = if stderr {
                (Level::Warn, "stderr")
            } else {
                (Level::Info, "stdout")
            };
            self.emit(level, source, &String::from_utf8_lossy(&buffer));
        }
    }
}

impl Host for HostState {
    fn log(&mut self, level: Level, message: String) {
        self.emit(level, "log", &message);
    }
}

impl crate::bindings::drift::umbra::policy::types::Host for HostState {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_lets_a_burst_through_then_suppresses_and_counts() {
        let limiter = LogLimiter::new(0, 3);
        assert_eq!(limiter.admit(), Some(0));
        assert_eq!(limiter.admit(), Some(0));
        assert_eq!(limiter.admit(), Some(0));
        assert_eq!(limiter.admit(), None);
        assert_eq!(limiter.admit(), None);
        let bucket = limiter.bucket.lock().unwrap();
        assert_eq!(bucket.suppressed, 2);
    }

    #[test]
    fn long_lines_are_cut_at_a_char_boundary() {
        let line = "é".repeat(MAX_LINE_BYTES);
        let cut = cut(&line);
        assert!(cut.len() <= MAX_LINE_BYTES + '…'.len_utf8());
        assert!(cut.ends_with('…'));
    }
}
