//! Faults: a policy that ran and misbehaved, classified by what it did.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use wasmtime::Trap;

use crate::policy::PolicyId;
use crate::sandbox::{GuestExit, MemoryCapExceeded};

/// What a policy did wrong. Every fault makes the native fallback answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// The policy trapped: a panic, an `unreachable`, an out-of-bounds access,
    /// a division by zero...
    Trap,
    /// The policy ran past its deadline and was interrupted.
    Deadline,
    /// The policy tried to grow its memory past its cap.
    OutOfMemory,
    /// The policy exhausted its stack (deep recursion).
    StackOverflow,
    /// The policy returned an answer the host refuses: a score outside
    /// [0, 1] or NaN, a text longer than the cap, too many signals...
    InvalidOutput,
    /// The policy called `exit`.
    Exit,
    /// The policy's `configure` refused its configuration on a fresh instance
    /// (it had accepted it when the policy was loaded).
    ConfigRejected,
    /// Anything else wasmtime reported (for instance no free instance slot in
    /// the pooling allocator).
    Other,
}

impl FaultKind {
    /// Every kind, in a fixed order.
    pub const ALL: [FaultKind; 8] = [
        FaultKind::Trap,
        FaultKind::Deadline,
        FaultKind::OutOfMemory,
        FaultKind::StackOverflow,
        FaultKind::InvalidOutput,
        FaultKind::Exit,
        FaultKind::ConfigRejected,
        FaultKind::Other,
    ];

    fn index(self) -> usize {
        self as usize
    }

    /// Kebab-case name, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Trap => "trap",
            FaultKind::Deadline => "deadline",
            FaultKind::OutOfMemory => "out-of-memory",
            FaultKind::StackOverflow => "stack-overflow",
            FaultKind::InvalidOutput => "invalid-output",
            FaultKind::Exit => "exit",
            FaultKind::ConfigRejected => "config-rejected",
            FaultKind::Other => "other",
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One fault of one policy.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Fault {
    /// The policy that faulted.
    pub policy: Arc<PolicyId>,
    /// What it did.
    pub kind: FaultKind,
    /// Details (wasmtime's message, or what was wrong with the output).
    pub message: String,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} by {}: {}", self.kind, self.policy, self.message)
    }
}

impl std::error::Error for Fault {}

impl Fault {
    /// Classifies an error wasmtime returned from instantiating or calling a
    /// policy.
    pub(crate) fn from_wasmtime(policy: &Arc<PolicyId>, error: &wasmtime::Error) -> Self {
        let kind = if error.downcast_ref::<MemoryCapExceeded>().is_some() {
            FaultKind::OutOfMemory
        } else if error.downcast_ref::<GuestExit>().is_some() {
            FaultKind::Exit
        } else {
            match error.downcast_ref::<Trap>() {
                Some(Trap::Interrupt) => FaultKind::Deadline,
                Some(Trap::StackOverflow) => FaultKind::StackOverflow,
                Some(Trap::MemoryOutOfBounds) if shadow_stack_overflow(error) => {
                    return Self {
                        policy: policy.clone(),
                        kind: FaultKind::StackOverflow,
                        message: format!("shadow stack exhausted: {}", one_line(error)),
                    };
                }
                Some(Trap::AllocationTooLarge) => FaultKind::OutOfMemory,
                Some(_) => FaultKind::Trap,
                None => FaultKind::Other,
            }
        };
        Self {
            policy: policy.clone(),
            kind,
            message: one_line(error),
        }
    }

    pub(crate) fn new(policy: &Arc<PolicyId>, kind: FaultKind, message: impl Into<String>) -> Self {
        Self {
            policy: policy.clone(),
            kind,
            message: message.into(),
        }
    }
}

/// Wasmtime's message on one line, root cause first (the trap), then the
/// context (the faulting address, the wasm backtrace), so that a fault is
/// one readable log line.
fn one_line(error: &wasmtime::Error) -> String {
    let mut parts: Vec<String> = error
        .chain()
        .map(|cause| {
            cause
                .to_string()
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .collect();
    let root = parts.pop().unwrap_or_default();
    if parts.is_empty() {
        root
    } else {
        format!("{root} ({})", parts.join("; "))
    }
}

/// Whether an out-of-bounds access is the overflow of the stack Rust (and
/// C) guests keep in linear memory, the "shadow stack": it grows down from
/// 1 MiB towards address 0, and when exhausted the stack pointer wraps
/// below zero, so the next access faults just under (or, with an offset,
/// just over) 4 GiB. No real policy addresses memory up there: its memory
/// is capped far lower. Wasmtime reports the address only in the error's
/// context text, hence the parsing.
fn shadow_stack_overflow(error: &wasmtime::Error) -> bool {
    const PREFIX: &str = "memory fault at wasm address 0x";
    error.chain().any(|cause| {
        let text = cause.to_string();
        text.find(PREFIX)
            .map(|at| &text[at + PREFIX.len()..])
            .and_then(|rest| {
                let hex: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
                u64::from_str_radix(&hex, 16).ok()
            })
            .is_some_and(|address| address >= 0xfff0_0000)
    })
}

/// Fault counters of one policy version, by kind.
#[derive(Debug, Default)]
pub(crate) struct FaultCounters {
    counts: [AtomicU64; FaultKind::ALL.len()],
}

impl FaultCounters {
    pub(crate) fn record(&self, kind: FaultKind) {
        self.counts[kind.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> FaultCounts {
        let get = |kind: FaultKind| self.counts[kind.index()].load(Ordering::Relaxed);
        FaultCounts {
            trap: get(FaultKind::Trap),
            deadline: get(FaultKind::Deadline),
            out_of_memory: get(FaultKind::OutOfMemory),
            stack_overflow: get(FaultKind::StackOverflow),
            invalid_output: get(FaultKind::InvalidOutput),
            exit: get(FaultKind::Exit),
            config_rejected: get(FaultKind::ConfigRejected),
            other: get(FaultKind::Other),
        }
    }
}

/// How many faults of each kind a policy version had.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct FaultCounts {
    /// [`FaultKind::Trap`].
    pub trap: u64,
    /// [`FaultKind::Deadline`].
    pub deadline: u64,
    /// [`FaultKind::OutOfMemory`].
    pub out_of_memory: u64,
    /// [`FaultKind::StackOverflow`].
    pub stack_overflow: u64,
    /// [`FaultKind::InvalidOutput`].
    pub invalid_output: u64,
    /// [`FaultKind::Exit`].
    pub exit: u64,
    /// [`FaultKind::ConfigRejected`].
    pub config_rejected: u64,
    /// [`FaultKind::Other`].
    pub other: u64,
}

impl FaultCounts {
    /// The count of one kind.
    pub fn get(&self, kind: FaultKind) -> u64 {
        match kind {
            FaultKind::Trap => self.trap,
            FaultKind::Deadline => self.deadline,
            FaultKind::OutOfMemory => self.out_of_memory,
            FaultKind::StackOverflow => self.stack_overflow,
            FaultKind::InvalidOutput => self.invalid_output,
            FaultKind::Exit => self.exit,
            FaultKind::ConfigRejected => self.config_rejected,
            FaultKind::Other => self.other,
        }
    }

    /// All faults, whatever their kind.
    pub fn total(&self) -> u64 {
        FaultKind::ALL.iter().map(|&k| self.get(k)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> Arc<PolicyId> {
        Arc::new(PolicyId {
            kind: crate::PolicyKind::Drift,
            name: "p".into(),
            version: "1".into(),
            digest: String::new(),
            wit_version: "0.1.0".into(),
        })
    }

    fn classify(error: wasmtime::Error) -> Fault {
        Fault::from_wasmtime(&id(), &error)
    }

    #[test]
    fn traps_are_classified_by_what_they_are() {
        assert_eq!(classify(Trap::Interrupt.into()).kind, FaultKind::Deadline);
        assert_eq!(
            classify(Trap::StackOverflow.into()).kind,
            FaultKind::StackOverflow
        );
        assert_eq!(
            classify(Trap::UnreachableCodeReached.into()).kind,
            FaultKind::Trap
        );
        assert_eq!(
            classify(Trap::IntegerDivisionByZero.into()).kind,
            FaultKind::Trap
        );
        let oom = wasmtime::Error::new(MemoryCapExceeded { desired: 2, cap: 1 });
        assert_eq!(classify(oom).kind, FaultKind::OutOfMemory);
        let exit = wasmtime::Error::new(GuestExit("code 3".into()));
        assert_eq!(classify(exit).kind, FaultKind::Exit);
        assert_eq!(
            classify(wasmtime::Error::msg("no slot")).kind,
            FaultKind::Other
        );
    }

    #[test]
    fn a_fault_near_four_gib_is_the_shadow_stack_overflowing() {
        let fault = |address: u64| {
            wasmtime::Error::from(Trap::MemoryOutOfBounds).context(format!(
                "memory fault at wasm address 0x{address:x} in linear memory of size 0x110000"
            ))
        };
        let overflow = classify(fault(0x1_0000_0140));
        assert_eq!(overflow.kind, FaultKind::StackOverflow);
        assert!(
            overflow.message.starts_with("shadow stack exhausted: "),
            "{}",
            overflow.message
        );
        assert_eq!(classify(fault(0xffff_fff0)).kind, FaultKind::StackOverflow);
        // An ordinary out-of-bounds access stays a trap.
        assert_eq!(classify(fault(0x20_0000)).kind, FaultKind::Trap);
    }

    #[test]
    fn messages_are_one_line_with_the_trap_first() {
        let error =
            wasmtime::Error::from(Trap::UnreachableCodeReached).context("frame 0\n   frame 1");
        let message = classify(error).message;
        assert!(!message.contains('\n'), "{message}");
        assert!(
            message.starts_with("wasm trap: wasm `unreachable`"),
            "{message}"
        );
        assert!(message.contains("frame 0 | frame 1"), "{message}");
    }

    #[test]
    fn counters_count_by_kind() {
        let counters = FaultCounters::default();
        counters.record(FaultKind::Deadline);
        counters.record(FaultKind::Deadline);
        counters.record(FaultKind::InvalidOutput);
        let counts = counters.snapshot();
        assert_eq!(counts.deadline, 2);
        assert_eq!(counts.get(FaultKind::InvalidOutput), 1);
        assert_eq!(counts.total(), 3);
    }
}
