//! A handle on a network namespace: one dedicated thread that has entered it
//! and runs every operation aimed at it.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Weak, mpsc};
use std::thread::JoinHandle;

use nix::sched::{CloneFlags, setns};

use crate::error::{Error, Facility, Result};
use crate::socket::NlSocket;

/// Which network namespace a [`NetNs`] operates in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NsTarget {
    /// The namespace of the process that opens the handle.
    Current,
    /// A namespace created by `ip netns add NAME` (`/run/netns/NAME`).
    Named(String),
    /// Any namespace file: `/run/netns/NAME`, `/proc/PID/ns/net`, a bind mount.
    Path(PathBuf),
}

impl NsTarget {
    /// The namespace file to open, or `None` for the current namespace.
    pub fn path(&self) -> Option<PathBuf> {
        match self {
            NsTarget::Current => None,
            NsTarget::Named(name) => Some(Path::new("/run/netns").join(name)),
            NsTarget::Path(path) => Some(path.clone()),
        }
    }
}

/// Per-namespace state living on the worker thread: its netlink sockets,
/// opened on first use.
pub(crate) struct NsState {
    conntrack: Option<NlSocket>,
    route: Option<NlSocket>,
    /// The netlink port of `conntrack` while it is open, 0 otherwise
    /// (shared with the handle: [`NetNs::conntrack_writer`]).
    conntrack_port: Arc<WriterPort>,
}

impl Drop for NsState {
    fn drop(&mut self) {
        // The subscriptions' kernel filters let the port's events through
        // again before the socket closes and the port is free for others.
        self.reset();
    }
}

impl NsState {
    pub(crate) fn conntrack(&mut self) -> Result<&mut NlSocket> {
        if self.conntrack.is_none() {
            let sock = NlSocket::open(
                netlink_sys::protocols::NETLINK_NETFILTER,
                Facility::Conntrack,
            )?;
            self.conntrack_port.set(sock.port());
            self.conntrack = Some(sock);
        }
        Ok(self.conntrack.as_mut().expect("just set"))
    }

    pub(crate) fn route(&mut self) -> Result<&mut NlSocket> {
        if self.route.is_none() {
            self.route = Some(NlSocket::open(
                netlink_sys::protocols::NETLINK_ROUTE,
                Facility::Route,
            )?);
        }
        Ok(self.route.as_mut().expect("just set"))
    }

    /// Drops the sockets after an error that may have left unread answers.
    pub(crate) fn reset(&mut self) {
        // Cleared before the socket closes: once closed, its port may be
        // another socket's.
        self.conntrack_port.set(0);
        self.conntrack = None;
        self.route = None;
    }
}

type Job = Box<dyn FnOnce(&mut NsState) + Send>;

/// The conntrack socket of a [`NetNs`] handle, as the kernel names it in
/// the events its writes cause: the netlink port of the socket while it is
/// open (it is reopened after an error, with another port), 0 otherwise.
/// No other socket of the namespace can hold that port meanwhile, so an
/// event carrying it was caused by this handle's write.
#[derive(Debug, Clone)]
pub struct ConntrackWriter {
    port: Arc<WriterPort>,
}

impl ConntrackWriter {
    /// The port, 0 while the socket is closed (no event carries 0 as a
    /// writer: the kernel's own events do).
    pub fn port(&self) -> u32 {
        self.port.port.load(Ordering::Acquire)
    }

    /// Has the kernel drop, before they are queued on `sock`, the events
    /// of this writer's creates and updates, for as long as `sock` lives:
    /// its filter follows the writer's port whenever the socket is
    /// reopened (and lets every event through while it is closed).
    pub(crate) fn filter(&self, sock: &Arc<netlink_sys::Socket>) -> Result<()> {
        self.port.subscribe(sock)
    }
}

/// The port of a handle's conntrack socket and the event sockets whose
/// kernel filters skip its events.
#[derive(Debug, Default)]
pub(crate) struct WriterPort {
    port: AtomicU32,
    // Synchronous: no `.await` happens under this lock. Held while the
    // port changes, so that a filter never names a port the writer no
    // longer holds.
    subscribers: Mutex<Vec<Weak<netlink_sys::Socket>>>,
}

impl WriterPort {
    /// Records the writer's new port (0: closed) and refilters every live
    /// subscriber: called before a socket closes (with 0) and after one
    /// is bound, before its first request.
    fn set(&self, port: u32) {
        let mut subscribers = self.subscribers.lock().unwrap_or_else(|p| p.into_inner());
        self.port.store(port, Ordering::Release);
        subscribers.retain(|weak| match weak.upgrade() {
            Some(sock) => {
                // A subscriber whose filter cannot be set still skips the
                // writer's events itself (the reader compares the port);
                // with port 0 it receives them all.
                let _ = crate::conntrack::skip_writer_filter(&sock, port);
                true
            }
            None => false,
        });
    }

    fn subscribe(&self, sock: &Arc<netlink_sys::Socket>) -> Result<()> {
        let mut subscribers = self.subscribers.lock().unwrap_or_else(|p| p.into_inner());
        subscribers.retain(|weak| weak.strong_count() > 0);
        crate::conntrack::skip_writer_filter(sock, self.port.load(Ordering::Acquire))?;
        subscribers.push(Arc::downgrade(sock));
        Ok(())
    }
}

/// A handle on one network namespace.
///
/// Opening it spawns a thread that enters the namespace with `setns(2)`;
/// netlink sockets are created on that thread (so they belong to the
/// namespace) and all I/O runs there, one operation at a time. Dropping the
/// handle stops the thread. The caller's threads never change namespace.
pub struct NetNs {
    target: NsTarget,
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
    conntrack_port: Arc<WriterPort>,
}

impl std::fmt::Debug for NetNs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetNs")
            .field("target", &self.target)
            .finish()
    }
}

impl NetNs {
    /// Opens a handle on `target`.
    ///
    /// # Errors
    /// [`Error::Namespace`] if the namespace file cannot be opened or entered.
    pub fn open(target: NsTarget) -> Result<NetNs> {
        let path = target.path();
        let file = match &path {
            Some(p) => Some(File::open(p).map_err(|source| Error::Namespace {
                path: p.clone(),
                source,
            })?),
            None => None,
        };
        let (jobs_tx, jobs_rx) = mpsc::channel::<Job>();
        let conntrack_port = Arc::new(WriterPort::default());
        let worker_port = Arc::clone(&conntrack_port);
        let (ready_tx, ready_rx) = mpsc::sync_channel::<std::result::Result<(), nix::Error>>(1);
        let name = format!(
            "netns-{}",
            path.as_deref()
                .and_then(Path::file_name)
                .map_or("current".into(), |n| n.to_string_lossy().into_owned())
        );
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                if let Some(file) = file {
                    let entered = setns(&file, CloneFlags::CLONE_NEWNET);
                    let failed = entered.is_err();
                    let _ = ready_tx.send(entered);
                    if failed {
                        return;
                    }
                } else {
                    let _ = ready_tx.send(Ok(()));
                }
                let mut state = NsState {
                    conntrack: None,
                    route: None,
                    conntrack_port: worker_port,
                };
                while let Ok(job) = jobs_rx.recv() {
                    job(&mut state);
                }
            })
            .map_err(|source| Error::Namespace {
                path: path.clone().unwrap_or_default(),
                source,
            })?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(NetNs {
                target,
                jobs: Some(jobs_tx),
                thread: Some(thread),
                conntrack_port,
            }),
            Ok(Err(errno)) => Err(Error::Namespace {
                path: path.unwrap_or_default(),
                source: errno.into(),
            }),
            Err(_) => Err(Error::WorkerGone),
        }
    }

    /// Opens a handle on the namespace `ip netns` calls `name`.
    ///
    /// # Errors
    /// As [`NetNs::open`].
    pub fn named(name: &str) -> Result<NetNs> {
        NetNs::open(NsTarget::Named(name.to_owned()))
    }

    /// The namespace this handle operates in.
    pub fn target(&self) -> &NsTarget {
        &self.target
    }

    /// Who writes conntrack entries through this handle, for an event
    /// subscription that skips the events of those writes
    /// ([`crate::Conntrack::subscribe_skipping`]).
    pub fn conntrack_writer(&self) -> ConntrackWriter {
        ConntrackWriter {
            port: Arc::clone(&self.conntrack_port),
        }
    }

    /// Runs `f` on the namespace's thread, so sockets it creates and
    /// processes it spawns live in the namespace, and returns its result.
    ///
    /// # Errors
    /// [`Error::WorkerGone`] if the thread has died (a previous job panicked).
    pub fn run<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce() -> R + Send + 'static,
    {
        self.with_state(move |_| Ok(f()))
    }

    /// Runs `f` with the namespace's socket state on its thread. On an error
    /// the sockets are reset, since a failed exchange may have left answers
    /// unread.
    pub(crate) fn with_state<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut NsState) -> Result<R> + Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |state| {
            let out = f(state);
            if matches!(out, Err(Error::Socket { .. } | Error::Malformed(_))) {
                state.reset();
            }
            let _ = tx.send(out);
        });
        self.jobs
            .as_ref()
            .ok_or(Error::WorkerGone)?
            .send(job)
            .map_err(|_| Error::WorkerGone)?;
        rx.recv().map_err(|_| Error::WorkerGone)?
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        // Closing the job channel ends the worker's loop.
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
