//! The policy's one window on the world: a log line, attributed by the host
//! to the policy's name and version. Natively (tests of a policy crate) the
//! lines are recorded per thread instead, for [`take_native_logs`].

/// Severity of a log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    /// Detail for whoever debugs the policy.
    Debug,
    /// Something worth knowing.
    Info,
    /// Something unexpected the policy coped with.
    Warn,
    /// Something the policy could not cope with.
    Error,
}

/// Writes a log line through the host. The host may rate-limit or truncate
/// lines; a policy should not log on every evaluation at `Info` or above.
pub fn log(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    {
        use crate::bindings::log::Level as Wit;
        let level = match level {
            Level::Debug => Wit::Debug,
            Level::Info => Wit::Info,
            Level::Warn => Wit::Warn,
            Level::Error => Wit::Error,
        };
        crate::bindings::log::log(level, message);
    }
    #[cfg(not(target_arch = "wasm32"))]
    native::record(level, message);
}

/// The lines [`log`] recorded on this thread since the last call, oldest
/// first (natively only: in WebAssembly they go to the host). At most the
/// last [`NATIVE_LOG_CAPACITY`] lines are kept.
#[cfg(not(target_arch = "wasm32"))]
pub fn take_native_logs() -> Vec<(Level, String)> {
    native::take()
}

/// Lines kept by the native recorder before the oldest are dropped.
#[cfg(not(target_arch = "wasm32"))]
pub const NATIVE_LOG_CAPACITY: usize = 1024;

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::cell::RefCell;
    use std::collections::VecDeque;

    use super::{Level, NATIVE_LOG_CAPACITY};

    thread_local! {
        static LINES: RefCell<VecDeque<(Level, String)>> = const { RefCell::new(VecDeque::new()) };
    }

    pub(super) fn record(level: Level, message: &str) {
        LINES.with(|lines| {
            let mut lines = lines.borrow_mut();
            if lines.len() == NATIVE_LOG_CAPACITY {
                lines.pop_front();
            }
            lines.push_back((level, message.to_owned()));
        });
    }

    pub(super) fn take() -> Vec<(Level, String)> {
        LINES.with(|lines| lines.borrow_mut().drain(..).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_lines_are_recorded_in_order_and_bounded() {
        take_native_logs();
        log(Level::Info, "one");
        log(Level::Error, "two");
        assert_eq!(
            take_native_logs(),
            vec![
                (Level::Info, "one".to_owned()),
                (Level::Error, "two".to_owned())
            ]
        );
        assert!(take_native_logs().is_empty());
        for i in 0..NATIVE_LOG_CAPACITY + 5 {
            log(Level::Debug, &i.to_string());
        }
        let lines = take_native_logs();
        assert_eq!(lines.len(), NATIVE_LOG_CAPACITY);
        assert_eq!(lines[0].1, "5");
    }
}
