//! The whole lab traffic in one value: [`Traffic::start`] puts every server
//! in the server namespace and every generator in the client namespace, per
//! a [`TrafficPlan`]; [`Traffic::snapshot`] shows live progress and
//! [`Traffic::stop`] returns the [`TrafficReport`] that `umbra demo` prints.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::Result;
use crate::http::{HttpFaults, HttpLoad, HttpReport, HttpServer, HttpServerStats};
use crate::probe::{
    DEFAULT_PROBE_HZ, LossDirection, ProbeReflector, ProbeReport, ProbeStream, ReflectorStats,
};
use crate::session::{DEFAULT_SESSION_INTERVAL, SessionEchoServer, Sessions, SessionsReport};
use crate::stats::ms;

/// What traffic to run. A zero rate or count turns that component off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrafficPlan {
    /// UDP probes per second (DESIGN.md: 1 kHz).
    pub probes_hz: u32,
    /// Long-lived TCP sessions.
    pub sessions: usize,
    /// Interval between each session's messages.
    pub session_interval: Duration,
    /// HTTP requests per second.
    pub http_rate: u32,
    /// The probe reflector's UDP port on the server (0 = pick one).
    pub probe_port: u16,
    /// The session echo server's TCP port (0 = pick one).
    pub session_port: u16,
    /// The HTTP server's TCP port (0 = pick one).
    pub http_port: u16,
}

impl Default for TrafficPlan {
    fn default() -> Self {
        Self {
            probes_hz: DEFAULT_PROBE_HZ,
            sessions: 8,
            session_interval: DEFAULT_SESSION_INTERVAL,
            http_rate: 20,
            probe_port: 0,
            session_port: 0,
            http_port: 0,
        }
    }
}

/// Everything measured, for `umbra demo`'s report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrafficReport {
    /// The server's address.
    pub server_addr: IpAddr,
    /// How long the traffic ran.
    pub duration_ms: f64,
    /// The probe stream, if it ran.
    pub probes: Option<ProbeReport>,
    /// Where the lost probes died, from the reflector's one-way record.
    pub probe_loss: Option<LossDirection>,
    /// What the reflector saw.
    pub reflector: Option<ReflectorStats>,
    /// The TCP sessions, if they ran.
    pub sessions: Option<SessionsReport>,
    /// The HTTP load, if it ran.
    pub http: Option<HttpReport>,
    /// What the HTTP server answered.
    pub http_server: Option<HttpServerStats>,
}

/// Live progress, cheap to take.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct TrafficSnapshot {
    /// Since start.
    pub elapsed_ms: f64,
    /// Probes sent.
    pub probes_sent: u64,
    /// Distinct probes echoed.
    pub probes_received: u64,
    /// Probes sent and not (yet) echoed: lost or in flight.
    pub probes_unanswered: u64,
    /// How long no echo has arrived.
    pub current_gap_ms: f64,
    /// TCP sessions still running.
    pub sessions_alive: usize,
    /// TCP sessions that failed.
    pub sessions_failed: usize,
    /// TCP sessions with an echo in the last second (data flowing, not
    /// stalled).
    pub sessions_flowing: usize,
    /// HTTP requests attempted.
    pub http_requests: u64,
    /// HTTP 5xx answers.
    pub http_5xx: u64,
    /// HTTP requests failed without an answer.
    pub http_errors: u64,
}

/// Servers in one namespace, generators in another, all running.
#[derive(Debug)]
pub struct Traffic {
    server_addr: IpAddr,
    start: Instant,
    // Generators are declared (and so dropped) before the servers they use.
    probe_stream: Option<ProbeStream>,
    sessions: Option<Sessions>,
    http_load: Option<HttpLoad>,
    reflector: Option<ProbeReflector>,
    echo_server: Option<SessionEchoServer>,
    http_server: Option<HttpServer>,
}

impl Traffic {
    /// Starts the servers bound to `server_addr` in `server_ns`, then the
    /// generators in `client_ns` aimed at them.
    ///
    /// # Errors
    /// If a namespace cannot be entered, a server cannot bind, a generator
    /// cannot reach its server, or the plan is invalid. Whatever had
    /// started is stopped again.
    pub fn start(
        client_ns: Option<&str>,
        server_ns: Option<&str>,
        server_addr: IpAddr,
        plan: &TrafficPlan,
    ) -> Result<Self> {
        let mut traffic = Self {
            server_addr,
            start: Instant::now(),
            probe_stream: None,
            sessions: None,
            http_load: None,
            reflector: None,
            echo_server: None,
            http_server: None,
        };
        // On any error below, `traffic` is dropped and stops what it holds.
        if plan.probes_hz > 0 {
            let bind = SocketAddr::new(server_addr, plan.probe_port);
            traffic.reflector = Some(ProbeReflector::start(server_ns, bind)?);
        }
        if plan.sessions > 0 {
            let bind = SocketAddr::new(server_addr, plan.session_port);
            traffic.echo_server = Some(SessionEchoServer::start(server_ns, bind)?);
        }
        if plan.http_rate > 0 {
            let bind = SocketAddr::new(server_addr, plan.http_port);
            traffic.http_server = Some(HttpServer::start(server_ns, bind)?);
        }
        traffic.start = Instant::now();
        if let Some(reflector) = &traffic.reflector {
            traffic.probe_stream = Some(ProbeStream::start(
                client_ns,
                reflector.local_addr(),
                plan.probes_hz,
            )?);
        }
        if let Some(echo_server) = &traffic.echo_server {
            traffic.sessions = Some(Sessions::start(
                client_ns,
                echo_server.local_addr(),
                plan.sessions,
                plan.session_interval,
            )?);
        }
        if let Some(http_server) = &traffic.http_server {
            traffic.http_load = Some(HttpLoad::start(
                client_ns,
                &http_server.url(),
                plan.http_rate,
            )?);
        }
        Ok(traffic)
    }

    /// The HTTP server's fault knobs (for the lab's `http5xx` fault).
    pub fn http_faults(&self) -> Option<Arc<HttpFaults>> {
        self.http_server.as_ref().map(HttpServer::faults)
    }

    /// The HTTP server's URL, for health checks.
    pub fn http_url(&self) -> Option<String> {
        self.http_server.as_ref().map(HttpServer::url)
    }

    /// The probe reflector's address.
    pub fn probe_addr(&self) -> Option<SocketAddr> {
        self.reflector.as_ref().map(ProbeReflector::local_addr)
    }

    /// The session echo server's address.
    pub fn session_addr(&self) -> Option<SocketAddr> {
        self.echo_server.as_ref().map(SessionEchoServer::local_addr)
    }

    /// Live progress.
    pub fn snapshot(&self) -> TrafficSnapshot {
        let mut snapshot = TrafficSnapshot {
            elapsed_ms: ms(self.start.elapsed()),
            ..TrafficSnapshot::default()
        };
        if let Some(probes) = &self.probe_stream {
            snapshot.probes_sent = probes.sent();
            snapshot.probes_received = probes.received();
            snapshot.probes_unanswered = snapshot
                .probes_sent
                .saturating_sub(snapshot.probes_received);
            snapshot.current_gap_ms = ms(probes.current_gap());
        }
        if let Some(sessions) = &self.sessions {
            snapshot.sessions_alive = sessions.alive();
            snapshot.sessions_failed = sessions.failed();
            snapshot.sessions_flowing = sessions.flowing(Duration::from_secs(1));
        }
        if let Some(load) = &self.http_load {
            snapshot.http_requests = load.requests();
            snapshot.http_5xx = load.server_errors();
            snapshot.http_errors = load.errors();
        }
        snapshot
    }

    /// Stops the generators (sessions and HTTP first, then the probes with
    /// their grace wait for stragglers), then the servers, and reports.
    pub fn stop(mut self) -> TrafficReport {
        let duration = self.start.elapsed();
        let sessions = self.sessions.take().map(Sessions::stop);
        let http = self.http_load.take().map(HttpLoad::stop);
        let probes = self.probe_stream.take().map(ProbeStream::stop);
        let probe_loss = match (&self.reflector, &probes) {
            (Some(reflector), Some(probes)) => Some(reflector.split_loss(probes)),
            _ => None,
        };
        let reflector = self.reflector.take().map(ProbeReflector::stop);
        if let Some(echo_server) = self.echo_server.take() {
            echo_server.stop();
        }
        let http_server = self.http_server.take().map(HttpServer::stop);
        TrafficReport {
            server_addr: self.server_addr,
            duration_ms: ms(duration),
            probes,
            probe_loss,
            reflector,
            sessions,
            http,
            http_server,
        }
    }
}
