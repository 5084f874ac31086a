//! The accept loop shared by the TCP echo server and the HTTP server: one
//! thread accepts, one thread per connection serves, all stopped by one
//! flag and joined on stop.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::netns::in_namespace;
use crate::{Result, socket_error, spawn};

/// At most this many connections are served at once; more are closed on
/// accept, so a runaway client cannot exhaust threads.
pub(crate) const MAX_CONNECTIONS: usize = 1024;
/// How often the accept loop looks for connections and its stop flag.
const ACCEPT_POLL: Duration = Duration::from_millis(5);

/// A listening socket with its accept thread.
#[derive(Debug)]
pub(crate) struct TcpService {
    local_addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl TcpService {
    /// Binds `bind` in `netns` and serves every accepted connection with
    /// `serve(stream, stop)` on its own thread; `serve` must return soon
    /// after `stop` is set.
    pub(crate) fn start(
        netns: Option<&str>,
        bind: SocketAddr,
        name: &str,
        serve: impl Fn(TcpStream, &AtomicBool) + Send + Sync + 'static,
    ) -> Result<Self> {
        let listener = in_namespace(netns, || {
            TcpListener::bind(bind).map_err(socket_error(format!("bind {name} {bind}")))
        })?;
        // Non-blocking accept polled with a short sleep: std has no accept
        // timeout, and the loop must notice its stop flag.
        listener
            .set_nonblocking(true)
            .map_err(socket_error(format!("{name} non-blocking")))?;
        let local_addr = listener
            .local_addr()
            .map_err(socket_error(format!("{name} address")))?;
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicU64::new(0));
        let thread = spawn(&format!("{name}-accept"), {
            let stop = Arc::clone(&stop);
            let accepted = Arc::clone(&accepted);
            let name = name.to_owned();
            move || accept_loop(&listener, &name, &stop, &accepted, Arc::new(serve))
        })?;
        Ok(Self {
            local_addr,
            stop,
            accepted,
            thread: Some(thread),
        })
    }

    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub(crate) fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Stops accepting and serving; joins every thread.
    pub(crate) fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for TcpService {
    fn drop(&mut self) {
        self.stop();
    }
}

type Serve = dyn Fn(TcpStream, &AtomicBool) + Send + Sync;

fn accept_loop(
    listener: &TcpListener,
    name: &str,
    stop: &Arc<AtomicBool>,
    accepted: &AtomicU64,
    serve: Arc<Serve>,
) {
    let mut connections: Vec<JoinHandle<()>> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, peer)) => {
                connections.retain(|thread| !thread.is_finished());
                if connections.len() >= MAX_CONNECTIONS {
                    tracing::warn!(%peer, "{name}: too many connections, closing");
                    continue;
                }
                accepted.fetch_add(1, Ordering::Relaxed);
                if stream.set_nonblocking(false).is_err() {
                    continue;
                }
                let serve = Arc::clone(&serve);
                let stop = Arc::clone(stop);
                match spawn(&format!("{name}-conn"), move || serve(stream, &stop)) {
                    Ok(thread) => connections.push(thread),
                    Err(err) => tracing::warn!(%err, "{name}: connection dropped"),
                }
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(ACCEPT_POLL);
            }
            Err(err) => {
                // EMFILE, ECONNABORTED and the like: transient for a
                // listener; back off a little instead of spinning.
                tracing::debug!(%err, "{name}: accept failed");
                std::thread::sleep(ACCEPT_POLL);
            }
        }
    }
    for thread in connections {
        let _ = thread.join();
    }
}
