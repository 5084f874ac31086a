//! The simulated device: the same state model as a Linux router/firewall,
//! in memory. Sessions are created at a configured rate and live an
//! exponentially distributed time; TCP ones go through the handshake
//! (SYN_SENT → SYN_RECV → ESTABLISHED), close (FIN_WAIT → TIME_WAIT) and
//! expire, UDP and ICMP ones see their reply and expire; a fifth are
//! source-NATed. It has routes in the `main` table and an `inet filter`
//! nftables table, and metrics that follow the session load.
//!
//! Time is compressed: handshake and close steps take milliseconds, so a
//! short test sees whole session lifecycles. Entries written by Apply are
//! replicas: they keep their timeout value and carry no simulated traffic
//! until they are replaced or deleted.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::{Backend, ChangeQueue, CommitReport, InterfaceReading, MetricsReading};
use crate::error::Result;
use crate::model::{
    ConntrackKey, ConntrackValue, IPS_ASSURED, IPS_CONFIRMED, IPS_SEEN_REPLY, IPS_SRC_NAT, Key, L4,
    LocalChange, NftFamily, NftTableKey, NftTableValue, Prefix, Rejected, RouteKey, RouteValue,
    TcpState, Tuple, Value,
};

/// Routing tables every Linux device knows: `default`, `main`, `local`.
pub const BUILTIN_ROUTE_TABLES: [u32; 3] = [253, 254, 255];

/// How the simulated device behaves.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// New sessions per second.
    pub session_rate: f64,
    /// Mean time a session carries traffic (exponentially distributed).
    pub mean_session_lifetime: Duration,
    /// Conntrack table size: new sessions beyond it are refused (and their
    /// first packet counted as a drop), as with `nf_conntrack_max`.
    pub conntrack_max: u64,
    /// Simulation step of [`SimBackend::drive`].
    pub tick: Duration,
    /// Seed of the session generator; the same seed and steps give the same
    /// sessions.
    pub seed: u64,
    /// Routing tables known besides [`BUILTIN_ROUTE_TABLES`].
    pub route_tables: Vec<u32>,
    /// Interfaces of the device (the first faces clients, the second
    /// servers).
    pub interfaces: Vec<String>,
    /// Capacity of the change queue towards the agent.
    pub change_queue: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            session_rate: 200.0,
            mean_session_lifetime: Duration::from_secs(30),
            conntrack_max: 262_144,
            tick: Duration::from_millis(10),
            seed: 1,
            route_tables: vec![100],
            interfaces: vec!["eth0".into(), "eth1".into()],
            change_queue: 1 << 18,
        }
    }
}

/// Packets per second each active session sends in each direction.
const SESSION_PPS: f64 = 10.0;
/// Bytes per simulated packet.
const PACKET_BYTES: f64 = 700.0;
/// Duration of one handshake or close step.
const STEP: Duration = Duration::from_millis(2);
/// Conntrack timeouts (seconds) the kernel uses for each stage.
const TIMEOUT_SYN: u32 = 120;
const TIMEOUT_SYN_RECV: u32 = 60;
const TIMEOUT_ESTABLISHED: u32 = 432_000;
const TIMEOUT_FIN_WAIT: u32 = 120;
const TIMEOUT_TIME_WAIT: u32 = 120;
const TIMEOUT_UDP: u32 = 30;
const TIMEOUT_UDP_STREAM: u32 = 120;
const TIMEOUT_ICMP: u32 = 30;

#[derive(Debug)]
struct Session {
    value: ConntrackValue,
    /// The session generator's id for sessions it created; `None` for
    /// replicas written by Apply.
    owned: Option<u64>,
    /// Carries traffic (established TCP, answered UDP/ICMP).
    active: bool,
}

#[derive(Debug, Default, Clone, Copy)]
struct Counters {
    rx_bytes: f64,
    tx_bytes: f64,
    rx_packets: f64,
    tx_packets: f64,
    rx_drops: f64,
}

#[derive(Debug)]
struct SimState {
    rng: StdRng,
    routes: HashMap<RouteKey, RouteValue>,
    nft: HashMap<NftTableKey, NftTableValue>,
    sessions: HashMap<ConntrackKey, Session>,
    /// (due, session id, key): stale ones (the session was replaced or
    /// deleted) are skipped when they fire.
    timers: BinaryHeap<Reverse<(Instant, u64, ConntrackKey)>>,
    next_id: u64,
    last_step: Option<Instant>,
    /// Fractional sessions carried to the next step.
    carry: f64,
    active: u64,
    counters: Vec<Counters>,
    created_per_second: f64,
    refused: u64,
}

/// The simulated device. Cheap to share (`Arc`); drive it with
/// [`SimBackend::drive`] or step it by hand with [`SimBackend::step`].
#[derive(Debug)]
pub struct SimBackend {
    config: SimConfig,
    known_tables: HashSet<u32>,
    // Synchronous: no `.await` happens under this lock.
    state: Mutex<SimState>,
    queue: Arc<ChangeQueue>,
}

fn ip(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn initial_routes(interfaces: &[String]) -> HashMap<RouteKey, RouteValue> {
    let client = interfaces.first().cloned().unwrap_or_default();
    let server = interfaces.get(1).cloned().unwrap_or_else(|| client.clone());
    let route = |dst: IpAddr, len, metric, gateway: Option<IpAddr>, dev: &String| {
        (
            RouteKey {
                table: 254,
                destination: Prefix::new(dst, len).unwrap_or_else(|e| unreachable!("{e}")),
                metric,
            },
            RouteValue {
                gateway,
                output_interface: dev.clone(),
            },
        )
    };
    [
        route(ip(0, 0, 0, 0), 0, 0, Some(ip(198, 18, 0, 1)), &client),
        route(ip(198, 18, 0, 0), 16, 0, None, &client),
        route(ip(198, 19, 0, 0), 24, 0, None, &server),
        route(
            ip(198, 19, 1, 0),
            24,
            100,
            Some(ip(198, 19, 0, 254)),
            &server,
        ),
    ]
    .into_iter()
    .collect()
}

fn initial_nft() -> (NftTableKey, NftTableValue) {
    let json = serde_json::json!({"nftables": [
        {"metainfo": {"json_schema_version": 1}},
        {"table": {"family": "inet", "name": "filter", "handle": 1}},
        {"chain": {"family": "inet", "table": "filter", "name": "forward", "handle": 1,
                   "type": "filter", "hook": "forward", "prio": 0, "policy": "drop"}},
        {"rule": {"family": "inet", "table": "filter", "chain": "forward", "handle": 2,
                  "expr": [{"match": {"op": "in", "left": {"ct": {"key": "state"}},
                                      "right": ["established", "related"]}},
                           {"accept": null}]}},
        {"rule": {"family": "inet", "table": "filter", "chain": "forward", "handle": 3,
                  "expr": [{"match": {"op": "in", "left": {"ct": {"key": "state"}},
                                      "right": "invalid"}},
                           {"drop": null}]}},
        {"rule": {"family": "inet", "table": "filter", "chain": "forward", "handle": 4,
                  "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}},
                                      "right": {"set": [80, 443, 5432]}}},
                           {"accept": null}]}}
    ]});
    (
        NftTableKey {
            family: NftFamily::Inet,
            name: "filter".into(),
        },
        NftTableValue {
            ruleset_json: json.to_string(),
        },
    )
}

impl SimBackend {
    /// A simulated device with its initial routes and nftables table and no
    /// sessions.
    pub fn new(config: SimConfig) -> Self {
        let (nft_key, nft_value) = initial_nft();
        let state = SimState {
            rng: StdRng::seed_from_u64(config.seed),
            routes: initial_routes(&config.interfaces),
            nft: HashMap::from([(nft_key, nft_value)]),
            sessions: HashMap::new(),
            timers: BinaryHeap::new(),
            next_id: 1,
            last_step: None,
            carry: 0.0,
            active: 0,
            counters: vec![Counters::default(); config.interfaces.len()],
            created_per_second: 0.0,
            refused: 0,
        };
        let known_tables = BUILTIN_ROUTE_TABLES
            .iter()
            .chain(&config.route_tables)
            .copied()
            .collect();
        Self {
            queue: Arc::new(ChangeQueue::new(config.change_queue)),
            known_tables,
            state: Mutex::new(state),
            config,
        }
    }

    fn lock(&self) -> MutexGuard<'_, SimState> {
        // The state stays consistent between statements; keep simulating
        // after a panic elsewhere.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The configuration.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// Sessions in the conntrack table.
    pub fn session_count(&self) -> usize {
        self.lock().sessions.len()
    }

    /// Sessions refused because the conntrack table was full.
    pub fn refused_sessions(&self) -> u64 {
        self.lock().refused
    }

    /// Steps the simulation every `tick` until `shutdown`.
    pub async fn drive(self: Arc<Self>, shutdown: CancellationToken) {
        let mut ticks = tokio::time::interval(self.config.tick);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                now = ticks.tick() => self.step(now),
            }
        }
    }

    /// Advances the simulation to `now`: creates the sessions due since the
    /// last step, moves sessions whose next stage is due, and accounts
    /// their traffic.
    pub fn step(&self, now: Instant) {
        let mut guard = self.lock();
        let state = &mut *guard;
        let elapsed = state
            .last_step
            .map_or(Duration::ZERO, |last| now.saturating_duration_since(last));
        state.last_step = Some(now);
        let seconds = elapsed.as_secs_f64();

        // Traffic of the active sessions over the elapsed time.
        let packets = state.active as f64 * SESSION_PPS * seconds;
        let (client, server) = (0, state.counters.len().min(2).saturating_sub(1));
        if let Some(c) = state.counters.get_mut(client) {
            c.rx_packets += packets;
            c.rx_bytes += packets * PACKET_BYTES;
            c.tx_packets += packets;
            c.tx_bytes += packets * PACKET_BYTES;
        }
        if server != client
            && let Some(s) = state.counters.get_mut(server)
        {
            s.rx_packets += packets;
            s.rx_bytes += packets * PACKET_BYTES;
            s.tx_packets += packets;
            s.tx_bytes += packets * PACKET_BYTES;
        }

        // New sessions. When the agent lags far behind, the device holds
        // back (fewer new sessions) rather than overflow the queue.
        state.carry += self.config.session_rate * seconds;
        let due = state.carry.floor();
        state.carry -= due;
        let mut created = 0u64;
        if self.queue.len() < self.queue.capacity() / 2 {
            for _ in 0..(due as u64) {
                if self.create_session(state, now) {
                    created += 1;
                }
            }
        }
        if seconds > 0.0 {
            // Smoothed creation rate, for the CPU model.
            let rate = created as f64 / seconds;
            state.created_per_second = 0.8 * state.created_per_second + 0.2 * rate;
        }

        while let Some(Reverse((when, _, _))) = state.timers.peek() {
            if *when > now {
                break;
            }
            let Some(Reverse((when, id, key))) = state.timers.pop() else {
                break;
            };
            self.advance_session(state, when, id, key);
        }
    }

    fn create_session(&self, state: &mut SimState, now: Instant) -> bool {
        let rng = &mut state.rng;
        let source = ip(198, 18, rng.random(), rng.random_range(1..=254));
        let destination = ip(198, 19, 0, rng.random_range(10..=20));
        let kind = rng.random_range(0..100u32);
        let l4 = if kind < 80 {
            L4::Ports {
                protocol: 6,
                source: rng.random_range(32_768..61_000),
                destination: [80, 443, 5432][rng.random_range(0..3)],
            }
        } else if kind < 95 {
            L4::Ports {
                protocol: 17,
                source: rng.random_range(32_768..61_000),
                destination: [53, 123, 4789][rng.random_range(0..3)],
            }
        } else {
            L4::Icmp {
                protocol: 1,
                kind: 8,
                code: 0,
                id: rng.random(),
            }
        };
        let original = Tuple {
            source,
            destination,
            l4,
        };
        let key = ConntrackKey { zone: 0, original };
        if state.sessions.contains_key(&key) {
            return false;
        }
        if state.sessions.len() as u64 >= self.config.conntrack_max {
            state.refused += 1;
            if let Some(c) = state.counters.first_mut() {
                c.rx_drops += 1.0;
            }
            return false;
        }
        let mut reply = original.inverted();
        let mut status = IPS_CONFIRMED;
        if rng.random_range(0..5u32) == 0 {
            // Source NAT to the device's outside address: replies come back
            // to it, on another port for port-based protocols.
            reply.destination = ip(198, 19, 255, 1);
            if let L4::Ports { destination, .. } = &mut reply.l4 {
                *destination = rng.random_range(1_024..65_535);
            }
            status |= IPS_SRC_NAT;
        }
        let (tcp_state, timeout_seconds) = match l4.protocol() {
            6 => (TcpState::SynSent, TIMEOUT_SYN),
            17 => (TcpState::None, TIMEOUT_UDP),
            _ => (TcpState::None, TIMEOUT_ICMP),
        };
        let value = ConntrackValue {
            reply,
            mark: 0,
            status,
            timeout_seconds,
            tcp_state,
            labels: 0,
        };
        let id = state.next_id;
        state.next_id += 1;
        state.sessions.insert(
            key,
            Session {
                value,
                owned: Some(id),
                active: false,
            },
        );
        state.timers.push(Reverse((now + STEP, id, key)));
        self.report(Key::Conntrack(key), Some(Value::Conntrack(value)));
        true
    }

    fn lifetime(&self, rng: &mut StdRng) -> Duration {
        // Exponential with the configured mean; 1 - U is in (0, 1].
        let u: f64 = rng.random();
        self.config
            .mean_session_lifetime
            .mul_f64(-(1.0 - u).ln())
            .max(STEP)
    }

    fn advance_session(&self, state: &mut SimState, now: Instant, id: u64, key: ConntrackKey) {
        let Some(session) = state.sessions.get_mut(&key) else {
            return;
        };
        if session.owned != Some(id) {
            return;
        }
        let value = &mut session.value;
        // What happens next: `Some(delay)` schedules the following stage,
        // `None` deletes the session.
        let next = match (value.reply.l4.protocol(), value.tcp_state) {
            (6, TcpState::SynSent) => {
                value.tcp_state = TcpState::SynRecv;
                value.status |= IPS_SEEN_REPLY;
                value.timeout_seconds = TIMEOUT_SYN_RECV;
                Some(STEP)
            }
            (6, TcpState::SynRecv) => {
                value.tcp_state = TcpState::Established;
                value.status |= IPS_ASSURED;
                value.timeout_seconds = TIMEOUT_ESTABLISHED;
                session.active = true;
                state.active += 1;
                Some(self.lifetime(&mut state.rng))
            }
            (6, TcpState::Established) => {
                value.tcp_state = TcpState::FinWait;
                value.timeout_seconds = TIMEOUT_FIN_WAIT;
                session.active = false;
                state.active -= 1;
                Some(STEP)
            }
            (6, TcpState::FinWait) => {
                value.tcp_state = TcpState::TimeWait;
                value.timeout_seconds = TIMEOUT_TIME_WAIT;
                Some((self.config.mean_session_lifetime / 20).clamp(STEP, Duration::from_secs(2)))
            }
            (_, _) if value.status & IPS_SEEN_REPLY == 0 => {
                value.status |= IPS_SEEN_REPLY | IPS_ASSURED;
                value.timeout_seconds = if value.reply.l4.protocol() == 17 {
                    TIMEOUT_UDP_STREAM
                } else {
                    TIMEOUT_ICMP
                };
                session.active = true;
                state.active += 1;
                Some(self.lifetime(&mut state.rng))
            }
            _ => None,
        };
        match next {
            Some(delay) => {
                let value = *value;
                state.timers.push(Reverse((now + delay, id, key)));
                self.report(Key::Conntrack(key), Some(Value::Conntrack(value)));
            }
            None => {
                if let Some(gone) = state.sessions.remove(&key)
                    && gone.active
                {
                    state.active -= 1;
                }
                self.report(Key::Conntrack(key), None);
            }
        }
    }

    fn report(&self, key: Key, value: Option<Value>) {
        self.queue.push(LocalChange { key, value });
    }
}

impl Backend for SimBackend {
    fn kind(&self) -> &'static str {
        "sim"
    }

    /// Simulated sessions carry no sequence windows: nothing to commit.
    fn commit(&self) -> Result<CommitReport> {
        Ok(CommitReport::default())
    }

    fn snapshot(&self) -> Result<Vec<(Key, Value)>> {
        let state = self.lock();
        let mut out =
            Vec::with_capacity(state.routes.len() + state.nft.len() + state.sessions.len());
        out.extend(
            state
                .routes
                .iter()
                .map(|(k, v)| (Key::Route(k.clone()), Value::Route(v.clone()))),
        );
        out.extend(
            state
                .nft
                .iter()
                .map(|(k, v)| (Key::NftTable(k.clone()), Value::NftTable(v.clone()))),
        );
        out.extend(
            state
                .sessions
                .iter()
                .map(|(k, s)| (Key::Conntrack(*k), Value::Conntrack(s.value))),
        );
        Ok(out)
    }

    fn apply(&self, key: &Key, value: Option<&Value>) -> Result<(), Rejected> {
        let mut guard = self.lock();
        let state = &mut *guard;
        match (key, value) {
            (Key::Route(k), value) => {
                if !self.known_tables.contains(&k.table) {
                    return Err(Rejected(format!("unknown routing table {}", k.table)));
                }
                match value {
                    Some(Value::Route(r)) => {
                        if !r.output_interface.is_empty()
                            && !self.config.interfaces.contains(&r.output_interface)
                        {
                            return Err(Rejected(format!(
                                "unknown output interface {:?}",
                                r.output_interface
                            )));
                        }
                        state.routes.insert(k.clone(), r.clone());
                    }
                    _ => {
                        state.routes.remove(k);
                    }
                }
            }
            (Key::NftTable(k), value) => match value {
                Some(Value::NftTable(t)) => {
                    state.nft.insert(k.clone(), t.clone());
                }
                _ => {
                    state.nft.remove(k);
                }
            },
            (Key::Conntrack(k), value) => match value {
                Some(Value::Conntrack(c)) => {
                    let exists = state.sessions.contains_key(k);
                    if !exists && state.sessions.len() as u64 >= self.config.conntrack_max {
                        return Err(Rejected(format!(
                            "conntrack table full ({} entries)",
                            self.config.conntrack_max
                        )));
                    }
                    let replica = Session {
                        value: *c,
                        owned: None,
                        active: false,
                    };
                    if let Some(old) = state.sessions.insert(*k, replica)
                        && old.active
                    {
                        state.active -= 1;
                    }
                }
                _ => {
                    if let Some(old) = state.sessions.remove(k)
                        && old.active
                    {
                        state.active -= 1;
                    }
                }
            },
        }
        drop(guard);
        self.report(key.clone(), value.cloned());
        Ok(())
    }

    fn changes(&self) -> Arc<ChangeQueue> {
        Arc::clone(&self.queue)
    }

    fn metrics(&self) -> MetricsReading {
        let state = self.lock();
        let sessions = state.sessions.len() as u64;
        let pps = state.active as f64 * SESSION_PPS * 2.0;
        let cpu = (0.02 + pps / 2_000_000.0 + state.created_per_second / 200_000.0).min(1.0);
        MetricsReading {
            cpu,
            memory_used_bytes: (512 << 20) + sessions * 400 + state.routes.len() as u64 * 200,
            memory_total_bytes: 4 << 30,
            interfaces: self
                .config
                .interfaces
                .iter()
                .zip(&state.counters)
                .map(|(name, c)| InterfaceReading {
                    name: name.clone(),
                    rx_bytes: c.rx_bytes as u64,
                    tx_bytes: c.tx_bytes as u64,
                    rx_packets: c.rx_packets as u64,
                    tx_packets: c.tx_packets as u64,
                    rx_drops: c.rx_drops as u64,
                    tx_drops: 0,
                })
                .collect(),
            conntrack_count: sessions,
            conntrack_max: self.config.conntrack_max,
        }
    }

    fn problems(&self) -> Vec<String> {
        let state = self.lock();
        let mut problems = Vec::new();
        if state.sessions.len() as u64 >= self.config.conntrack_max {
            problems.push(format!(
                "conntrack table full ({} entries); {} sessions refused",
                self.config.conntrack_max, state.refused
            ));
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Delivery;

    fn drain(queue: &ChangeQueue) -> Vec<LocalChange> {
        match queue.try_take(usize::MAX) {
            Some(Delivery::Changes(c)) => c,
            Some(Delivery::Lost) => panic!("lost"),
            None => Vec::new(),
        }
    }

    #[test]
    fn sessions_churn_through_their_states_and_traffic_follows() {
        let sim = SimBackend::new(SimConfig {
            session_rate: 10_000.0,
            mean_session_lifetime: Duration::from_millis(200),
            ..SimConfig::default()
        });
        let queue = sim.changes();
        let start = Instant::now();
        let mut tcp_states = HashSet::new();
        let mut deleted = 0;
        let mut peak = 0;
        for ms in (0..=2_000).step_by(5) {
            sim.step(start + Duration::from_millis(ms));
            peak = peak.max(sim.session_count());
            for change in drain(&queue) {
                match change.value {
                    Some(Value::Conntrack(c)) => {
                        tcp_states.insert(c.tcp_state);
                    }
                    None => deleted += 1,
                    _ => {}
                }
            }
        }
        for state in [
            TcpState::SynSent,
            TcpState::SynRecv,
            TcpState::Established,
            TcpState::FinWait,
            TcpState::TimeWait,
        ] {
            assert!(tcp_states.contains(&state), "{state:?} never seen");
        }
        // ~10k/s for 2 s with a 200 ms mean lifetime: thousands expired and
        // the table holds about rate × lifetime, not everything ever made.
        assert!(deleted > 10_000, "{deleted}");
        let live = sim.session_count();
        assert!((1_000..8_000).contains(&live), "{live}");
        let m = sim.metrics();
        assert_eq!(m.conntrack_count, live as u64);
        assert!(m.interfaces[0].rx_packets > 10_000, "{m:?}");
        assert!(m.cpu > 0.02);

        // Stop creating: everything expires, traffic stops growing.
        let quiet = SimBackend::new(SimConfig {
            session_rate: 0.0,
            ..SimConfig::default()
        });
        quiet.step(start);
        quiet.step(start + Duration::from_secs(1));
        assert_eq!(quiet.session_count(), 0);
        assert!(peak > live / 2);
    }

    #[test]
    fn a_full_table_refuses_new_sessions_and_counts_drops() {
        let sim = SimBackend::new(SimConfig {
            session_rate: 10_000.0,
            conntrack_max: 100,
            ..SimConfig::default()
        });
        let start = Instant::now();
        sim.step(start);
        sim.step(start + Duration::from_millis(100));
        assert_eq!(sim.session_count(), 100);
        assert!(sim.refused_sessions() > 800);
        assert!(sim.metrics().interfaces[0].rx_drops > 800);
        assert!(!sim.problems().is_empty());
    }

    #[test]
    fn apply_checks_tables_and_interfaces_and_reports_the_change() {
        let sim = SimBackend::new(SimConfig::default());
        let queue = sim.changes();
        let key = |table| {
            Key::Route(RouteKey {
                table,
                destination: Prefix::new(ip(198, 19, 2, 0), 24).unwrap(),
                metric: 0,
            })
        };
        let value = |dev: &str| {
            Value::Route(RouteValue {
                gateway: Some(ip(198, 19, 0, 254)),
                output_interface: dev.into(),
            })
        };
        assert!(
            sim.apply(&key(77), Some(&value("eth1")))
                .unwrap_err()
                .0
                .contains("table 77")
        );
        assert!(
            sim.apply(&key(254), Some(&value("wlan9")))
                .unwrap_err()
                .0
                .contains("wlan9")
        );
        assert!(drain(&queue).is_empty(), "refusals change nothing");
        sim.apply(&key(100), Some(&value("eth1"))).unwrap();
        assert_eq!(
            drain(&queue),
            [LocalChange {
                key: key(100),
                value: Some(value("eth1"))
            }]
        );
        assert!(sim.snapshot().unwrap().iter().any(|(k, _)| *k == key(100)));
        sim.apply(&key(100), None).unwrap();
        assert!(!sim.snapshot().unwrap().iter().any(|(k, _)| *k == key(100)));
    }
}
