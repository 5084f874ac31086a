//! The failover lab: `client` and `server` joined through `umbra switch`
//! (in process, its ports in namespace `sw`) to two Linux routers with a
//! stateful nftables firewall, `primary` and `shadow`, each served by a
//! device agent (the Linux backend, `umbra.device.v1` on loopback gRPC),
//! plus fault injection on the primary ([`fault`]).
//!
//! The lab builds and serves; it does not program the switch: the host's
//! P4Runtime client does (port classification, device port map, selector,
//! mirroring), with the port map [`LabInfo`] describes. Both devices carry
//! the same addresses and MAC addresses on their legs, so the switch can
//! move the service between them with one selector write and the hosts'
//! ARP entries stay valid. Their firewalls run with
//! `nf_conntrack_tcp_loose=0`: a mid-stream TCP packet the device has no
//! conntrack entry for is dropped, which makes session replication
//! observable. Window tracking is the kernel's default (strict): a
//! failback works because drain-and-commit's commit makes the old device's
//! own TCP entries liberal before the redirect.
//!
//! Addresses are 198.18.0.0/15 only and live only inside the lab's
//! namespaces; namespaces, cgroups and the lab's threads are removed when
//! the lab is dropped (or [`FailoverLab::down`]).

mod apps;
mod backend;
mod cgroup;
pub mod fault;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use umbra_agent::{Agent, AgentConfig, LinuxBackend, LinuxConfig, Security};
use umbra_switch::SwitchOptions;
use umbra_switch::dataplane::veth_lab::VethLab;

use crate::{LabError, Result};
use apps::DeviceApps;
pub use apps::{APP_PORT, DB_PORT, DeviceManagement, LabManagement};
use backend::LabBackend;
pub use cgroup::CgroupInfo;
use cgroup::DeviceCgroup;
pub use fault::{FaultHandle, FaultKind, FaultLevel, FaultPlan, FaultTimeline};

/// Switch port numbers of the lab (`p1`..`p8` in namespace `sw`).
pub mod port {
    /// The client.
    pub const CLIENT: u16 = 1;
    /// The server.
    pub const SERVER: u16 = 2;
    /// Primary device, client leg (`legc`).
    pub const PRIMARY_CLIENT_LEG: u16 = 3;
    /// Primary device, server leg (`legs`).
    pub const PRIMARY_SERVER_LEG: u16 = 4;
    /// Shadow device, client leg (`legc`).
    pub const SHADOW_CLIENT_LEG: u16 = 5;
    /// Shadow device, server leg (`legs`).
    pub const SHADOW_SERVER_LEG: u16 = 6;
    /// Shadow device, monitor leg (`mon0`): mirrored samples while the
    /// shadow is the standby.
    pub const SHADOW_MONITOR: u16 = 7;
    /// Primary device, monitor leg (`mon0`): mirrored samples after a
    /// failover, when the old primary is the standby.
    pub const PRIMARY_MONITOR: u16 = 8;
}

/// The client's address (its default route goes via [`CLIENT_GATEWAY`]).
pub const CLIENT_ADDR: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// The server's address (its default route goes via [`SERVER_GATEWAY`]).
pub const SERVER_ADDR: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 1);
/// The devices' client leg address (the same on primary and shadow).
pub const CLIENT_GATEWAY: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 254);
/// The devices' server leg address (the same on primary and shadow).
pub const SERVER_GATEWAY: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 254);
/// Prefix length of both lab subnets.
pub const PREFIX_LEN: u8 = 24;
/// MAC address of the devices' client leg (the same on both devices).
pub const CLIENT_LEG_MAC: &str = "02:00:5e:12:00:fe";
/// MAC address of the devices' server leg (the same on both devices).
pub const SERVER_LEG_MAC: &str = "02:00:5e:12:01:fe";

/// The stateful firewall of both devices: replies and related traffic
/// pass, new connections only from the client side to the server side,
/// everything else (including mid-stream packets of connections the device
/// has no entry for, which `nf_conntrack_tcp_loose=0` makes invalid) is
/// dropped.
const FIREWALL: &str = "table inet fw {
    chain forward {
        type filter hook forward priority 0; policy drop;
        ct state established,related accept
        iifname \"legc\" oifname \"legs\" ct state new accept
    }
}";

/// How to build the lab.
#[derive(Debug, Clone)]
pub struct FailoverLabOptions {
    /// Loopback port of the switch's P4Runtime server; 0 picks one.
    pub switch_port: u16,
    /// P4Runtime device id of the switch.
    pub switch_device_id: u64,
    /// Loopback port of the primary's agent; 0 picks one.
    pub primary_agent_port: u16,
    /// Loopback port of the shadow's agent; 0 picks one.
    pub shadow_agent_port: u16,
    /// Node id of the primary's agent (the origin of its changes).
    pub primary_node_id: u64,
    /// Node id of the shadow's agent; must differ from the primary's.
    pub shadow_node_id: u64,
    /// Routing tables the agents replicate. Not `main` (254) by default:
    /// the hard failure takes the primary's legs down, and the kernel's
    /// removal of their connected routes must not replicate to the shadow.
    pub route_tables: Vec<u32>,
    /// How often the agents read routes and nftables for changes.
    pub agent_poll_interval: Duration,
    /// Put each device in a cgroup of its own (CPU and memory metrics, the
    /// CPU and memory faults' caps) when the host's cgroups allow it.
    pub cgroups: bool,
    /// CPU the `cpu` fault may use at full intensity, in cores (capped by
    /// the cgroup's quota so the switch's threads keep running).
    pub cpu_fault_cores: f64,
    /// Memory the `memory` fault's process grows to at full intensity.
    pub memory_fault_bytes: u64,
    /// Growth of the `memory` fault's process per step.
    pub memory_fault_step_bytes: u64,
    /// Conntrack entries the `conntrack` fault adds at full intensity;
    /// `None`: 95 % of `nf_conntrack_max` minus the entries present.
    pub conntrack_fault_entries: Option<u64>,
    /// Packet loss of the `loss` fault at full intensity (0..1).
    pub loss_fault_max: f64,
}

impl Default for FailoverLabOptions {
    fn default() -> Self {
        Self {
            switch_port: 0,
            switch_device_id: 1,
            primary_agent_port: 0,
            shadow_agent_port: 0,
            primary_node_id: 1,
            shadow_node_id: 2,
            route_tables: vec![100],
            agent_poll_interval: Duration::from_millis(200),
            cgroups: true,
            cpu_fault_cores: 0.8,
            memory_fault_bytes: 256 << 20,
            memory_fault_step_bytes: 8 << 20,
            conntrack_fault_entries: None,
            loss_fault_max: 0.30,
        }
    }
}

/// The namespaces of the lab, as `ip netns` names them.
#[derive(Debug, Clone, Serialize)]
pub struct LabNamespaces {
    /// The client host.
    pub client: String,
    /// The server host.
    pub server: String,
    /// The primary device.
    pub primary: String,
    /// The shadow device.
    pub shadow: String,
    /// The switch's port interfaces `p1`..`p8`.
    pub switch: String,
}

/// The switch, as the host's P4Runtime client reaches it.
#[derive(Debug, Clone, Serialize)]
pub struct LabSwitch {
    /// P4Runtime gRPC address (loopback).
    pub p4runtime: SocketAddr,
    /// P4Runtime device id.
    pub device_id: u64,
}

/// The switch ports of the lab ([`port`]).
#[derive(Debug, Clone, Serialize)]
pub struct LabPorts {
    /// The client.
    pub client: u16,
    /// The server.
    pub server: u16,
    /// Primary device, client leg.
    pub primary_client_leg: u16,
    /// Primary device, server leg.
    pub primary_server_leg: u16,
    /// Primary device, monitor leg.
    pub primary_monitor: u16,
    /// Shadow device, client leg.
    pub shadow_client_leg: u16,
    /// Shadow device, server leg.
    pub shadow_server_leg: u16,
    /// Shadow device, monitor leg.
    pub shadow_monitor: u16,
}

/// One device's agent.
#[derive(Debug, Clone, Serialize)]
pub struct LabAgent {
    /// gRPC URL (`http://127.0.0.1:PORT`, no authentication).
    pub url: String,
    /// Node id.
    pub node_id: u64,
    /// The device's cgroup, when it has one.
    pub cgroup: Option<CgroupInfo>,
}

/// Addresses of the hosts and the devices' legs.
#[derive(Debug, Clone, Serialize)]
pub struct LabAddresses {
    /// The client.
    pub client: Ipv4Addr,
    /// The server.
    pub server: Ipv4Addr,
    /// The devices' client leg (the client's gateway).
    pub client_gateway: Ipv4Addr,
    /// The devices' server leg (the server's gateway).
    pub server_gateway: Ipv4Addr,
    /// Prefix length of both subnets.
    pub prefix_len: u8,
}

/// Everything a daemon's configuration needs to drive the lab.
#[derive(Debug, Clone, Serialize)]
pub struct LabInfo {
    /// Namespace names.
    pub namespaces: LabNamespaces,
    /// The switch.
    pub switch: LabSwitch,
    /// The port map.
    pub ports: LabPorts,
    /// The primary's agent.
    pub primary_agent: LabAgent,
    /// The shadow's agent.
    pub shadow_agent: LabAgent,
    /// Addresses.
    pub addresses: LabAddresses,
    /// Routing tables the agents replicate.
    pub route_tables: Vec<u32>,
    /// Each device's management link and applications (what the host's
    /// health checks reach).
    pub management: LabManagement,
}

/// Which device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Device {
    /// The device faults are injected on.
    Primary,
    /// The warm standby.
    Shadow,
}

/// What a fault needs to reach the primary, shared with fault threads.
#[derive(Debug)]
pub(crate) struct FaultTarget {
    pub(crate) namespace: String,
    pub(crate) cgroup: Option<Arc<DeviceCgroup>>,
    pub(crate) options: FailoverLabOptions,
    /// Set while a hard failure is in force; the primary's agent reports
    /// it as a problem.
    pub(crate) failed: Arc<AtomicBool>,
    /// Set when the lab goes down: fault threads undo and exit.
    pub(crate) lab_down: Arc<AtomicBool>,
    pub(crate) http5xx: Arc<FaultLevel>,
    pub(crate) db: Arc<FaultLevel>,
}

/// The running lab. Dropping it (or [`FailoverLab::down`]) stops the
/// switch and the agents and removes the namespaces and cgroups.
pub struct FailoverLab {
    info: LabInfo,
    target: Arc<FaultTarget>,
    /// The primary's and the shadow's agent servers.
    agents: [std::sync::Mutex<AgentServer>; 2],
    shadow_cgroup: Option<Arc<DeviceCgroup>>,
    stop: CancellationToken,
    server_thread: Option<JoinHandle<()>>,
    namespaces: Option<VethLab>,
    apps: Option<DeviceApps>,
    switch_server: std::sync::Mutex<SwitchServer>,
}

impl std::fmt::Debug for FailoverLab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FailoverLab")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl FailoverLab {
    /// Builds the namespaces, devices and cgroups, and starts the switch
    /// and the two agents on a runtime of the lab's own (so the lab can be
    /// used, and dropped, from synchronous and asynchronous code alike).
    /// Blocks while it runs `ip`, `nft` and `sysctl`.
    ///
    /// # Errors
    /// [`LabError::Topology`] when the namespaces cannot be built (not
    /// root, tools missing) or a port cannot be bound; [`LabError::Agent`]
    /// when an agent cannot open its namespace.
    pub fn up(options: FailoverLabOptions) -> Result<FailoverLab> {
        if options.primary_node_id == options.shadow_node_id || options.primary_node_id == 0 {
            return Err(LabError::Topology(std::io::Error::other(
                "the agents need distinct, non-zero node ids",
            )));
        }
        let mut lab = VethLab::new("fo");
        let namespaces = build_topology(&mut lab).map_err(LabError::Topology)?;
        let prefix = namespaces
            .primary
            .strip_suffix("-primary")
            .unwrap_or(&namespaces.primary)
            .to_owned();
        let management = apps::build_links(&prefix, [&namespaces.primary, &namespaces.shadow])
            .map_err(LabError::Topology)?;

        let (primary_cgroup, shadow_cgroup) = if options.cgroups {
            (
                DeviceCgroup::create(&namespaces.primary).map(Arc::new),
                DeviceCgroup::create(&namespaces.shadow).map(Arc::new),
            )
        } else {
            tracing::info!("failover lab: cgroups off; the agents report no CPU or memory use");
            (None, None)
        };
        if let Some(cgroup) = &primary_cgroup {
            cgroup.set_memory_limit(options.memory_fault_bytes + (64 << 20));
        }

        let failed = Arc::new(AtomicBool::new(false));
        let recipe = |namespace: &str, node_id: u64, cgroup: &Option<Arc<DeviceCgroup>>, failed| {
            AgentRecipe {
                namespace: namespace.to_owned(),
                node_id,
                route_tables: options.route_tables.clone(),
                poll_interval: options.agent_poll_interval,
                cgroup: cgroup.clone(),
                failed,
            }
        };
        let recipes = [
            recipe(
                &namespaces.primary,
                options.primary_node_id,
                &primary_cgroup,
                Some(Arc::clone(&failed)),
            ),
            recipe(
                &namespaces.shadow,
                options.shadow_node_id,
                &shadow_cgroup,
                None,
            ),
        ];

        let stop = CancellationToken::new();
        let (server_thread, addrs) =
            start_servers(&options, &namespaces.switch, recipes, stop.clone())?;
        let ServerAddrs {
            switch: switch_addr,
            switch_server,
            agents: [primary_server, shadow_server],
        } = addrs;
        let (primary_addr, shadow_addr) = (primary_server.addr, shadow_server.addr);

        let info = LabInfo {
            namespaces,
            switch: LabSwitch {
                p4runtime: switch_addr,
                device_id: options.switch_device_id,
            },
            ports: LabPorts {
                client: port::CLIENT,
                server: port::SERVER,
                primary_client_leg: port::PRIMARY_CLIENT_LEG,
                primary_server_leg: port::PRIMARY_SERVER_LEG,
                primary_monitor: port::PRIMARY_MONITOR,
                shadow_client_leg: port::SHADOW_CLIENT_LEG,
                shadow_server_leg: port::SHADOW_SERVER_LEG,
                shadow_monitor: port::SHADOW_MONITOR,
            },
            primary_agent: LabAgent {
                url: format!("http://{primary_addr}"),
                node_id: options.primary_node_id,
                cgroup: primary_cgroup.as_ref().map(|c| c.info()),
            },
            shadow_agent: LabAgent {
                url: format!("http://{shadow_addr}"),
                node_id: options.shadow_node_id,
                cgroup: shadow_cgroup.as_ref().map(|c| c.info()),
            },
            addresses: LabAddresses {
                client: CLIENT_ADDR,
                server: SERVER_ADDR,
                client_gateway: CLIENT_GATEWAY,
                server_gateway: SERVER_GATEWAY,
                prefix_len: PREFIX_LEN,
            },
            route_tables: options.route_tables.clone(),
            management,
        };
        tracing::info!(
            switch = %info.switch.p4runtime,
            primary = %info.primary_agent.url,
            shadow = %info.shadow_agent.url,
            "failover lab up"
        );
        let target = Arc::new(FaultTarget {
            namespace: info.namespaces.primary.clone(),
            cgroup: primary_cgroup,
            options,
            failed,
            lab_down: Arc::new(AtomicBool::new(false)),
            http5xx: Arc::new(FaultLevel::default()),
            db: Arc::new(FaultLevel::default()),
        });
        let apps = DeviceApps::start(
            [&info.namespaces.primary, &info.namespaces.shadow],
            &info.management,
            Arc::clone(&target.http5xx),
            Arc::clone(&target.db),
            Arc::clone(&target.failed),
        )
        .map_err(LabError::Topology)?;
        Ok(FailoverLab {
            apps: Some(apps),
            info,
            target,
            agents: [
                std::sync::Mutex::new(primary_server),
                std::sync::Mutex::new(shadow_server),
            ],
            shadow_cgroup,
            stop,
            server_thread: Some(server_thread),
            switch_server: std::sync::Mutex::new(switch_server),
            namespaces: Some(lab),
        })
    }

    /// What a daemon needs to drive the lab.
    pub fn info(&self) -> LabInfo {
        self.info.clone()
    }

    /// A device's agent (in process; the one its URL serves now).
    pub fn agent(&self, device: Device) -> Arc<Agent> {
        Arc::clone(&self.agent_server(device).agent)
    }

    fn agent_server(&self, device: Device) -> std::sync::MutexGuard<'_, AgentServer> {
        let index = match device {
            Device::Primary => 0,
            Device::Shadow => 1,
        };
        self.agents[index]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Restarts a device's agent as a crash of its process would: its
    /// server stops (its streams end), its port stays closed for
    /// `down_for`, then a fresh agent (same node id, a new change-log
    /// epoch, its state read from the kernel again) serves the same
    /// address. The device itself, its kernel state and its traffic, is
    /// untouched. Blocks; call it from outside an async context.
    ///
    /// # Errors
    /// [`LabError::Agent`] when the new agent cannot open its namespace,
    /// [`LabError::Topology`] when the address cannot be bound again.
    pub fn restart_agent(&self, device: Device, down_for: Duration) -> Result<()> {
        let mut server = self.agent_server(device);
        server.stop.cancel();
        let runtime = server.runtime.clone();
        if let Some(task) = server.task.take() {
            let _ = runtime.block_on(task);
        }
        tracing::warn!(
            device = server.name,
            down_ms = down_for.as_millis(),
            "failover lab: an agent is down"
        );
        std::thread::sleep(down_for);
        server.agent = server.recipe.build()?;
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(server.addr))
            .map_err(LabError::Topology)?;
        server.spawn(listener);
        tracing::warn!(device = server.name, "failover lab: the agent is back");
        Ok(())
    }

    /// The intensity (0..1) of the `http5xx` fault, for the lab's HTTP
    /// server to read.
    pub fn http5xx_level(&self) -> Arc<FaultLevel> {
        Arc::clone(&self.target.http5xx)
    }

    /// The intensity (0..1) of the `db` fault, for the lab's DB proxy to
    /// read.
    pub fn db_level(&self) -> Arc<FaultLevel> {
        Arc::clone(&self.target.db)
    }

    /// Memory charged to a device's cgroup, read by the lab itself (cgroup
    /// v2 `memory.current`, or the v1 memory controller on hybrid hosts);
    /// `None` without a memory-accounting cgroup.
    pub fn device_memory_bytes(&self, device: Device) -> Option<u64> {
        match device {
            Device::Primary => self.target.cgroup.as_ref()?.memory_bytes(),
            Device::Shadow => self.shadow_cgroup.as_ref()?.memory_bytes(),
        }
    }

    /// Starts injecting `kind` on the primary as `plan` says, on a thread
    /// of its own; the fault is undone when the handle is stopped or
    /// dropped, or when the lab goes down.
    ///
    /// # Errors
    /// [`LabError::Fault`] when the fault's thread cannot be started.
    pub fn inject(&self, kind: FaultKind, plan: FaultPlan) -> Result<FaultHandle> {
        fault::start(Arc::clone(&self.target), kind, plan)
    }

    /// Restarts the switch as a crash would: it stops (its tables, clone
    /// sessions and pipeline gone with it), its port stays closed for
    /// `down_for`, then a fresh switch with no pipeline listens on the same
    /// address and ports. Blocks; call it from outside an async context.
    ///
    /// # Errors
    /// [`LabError::Topology`] when the address cannot be bound again.
    pub fn restart_switch(&self, down_for: Duration) -> Result<()> {
        let mut server = self
            .switch_server
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        server.stop.cancel();
        let runtime = server.runtime.clone();
        if let Some(task) = server.task.take() {
            let _ = runtime.block_on(task);
        }
        tracing::warn!(
            down_ms = down_for.as_millis(),
            "failover lab: the switch is down"
        );
        std::thread::sleep(down_for);
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(self.info.switch.p4runtime))
            .map_err(LabError::Topology)?;
        server.spawn(listener);
        tracing::warn!("failover lab: the switch is back, empty");
        Ok(())
    }

    /// Stops the switch and the agents and removes the namespaces and
    /// cgroups (what dropping the lab does).
    pub fn down(mut self) {
        self.teardown();
    }

    fn teardown(&mut self) {
        self.target.lab_down.store(true, Ordering::SeqCst);
        // The applications' sockets live in the devices' namespaces.
        self.apps.take();
        self.stop.cancel();
        if let Some(thread) = self.server_thread.take() {
            let _ = thread.join();
        }
        for cgroup in [&self.target.cgroup, &self.shadow_cgroup]
            .into_iter()
            .flatten()
        {
            cgroup.remove();
        }
        if self.namespaces.take().is_some() {
            tracing::info!("failover lab down: namespaces removed");
        }
    }
}

impl Drop for FailoverLab {
    fn drop(&mut self) {
        self.teardown();
    }
}

/// Builds the namespaces and links, the devices' routing and firewalls,
/// and the hosts' addresses and routes.
fn build_topology(lab: &mut VethLab) -> std::io::Result<LabNamespaces> {
    let namespaces = LabNamespaces {
        switch: lab.add_namespace("sw")?,
        client: lab.add_namespace("client")?,
        server: lab.add_namespace("server")?,
        primary: lab.add_namespace("primary")?,
        shadow: lab.add_namespace("shadow")?,
    };
    let LabNamespaces {
        switch: sw,
        client,
        server,
        primary,
        shadow,
    } = &namespaces;
    let legs = [
        (port::CLIENT, client, "eth0"),
        (port::SERVER, server, "eth0"),
        (port::PRIMARY_CLIENT_LEG, primary, "legc"),
        (port::PRIMARY_SERVER_LEG, primary, "legs"),
        (port::SHADOW_CLIENT_LEG, shadow, "legc"),
        (port::SHADOW_SERVER_LEG, shadow, "legs"),
        (port::SHADOW_MONITOR, shadow, "mon0"),
        (port::PRIMARY_MONITOR, primary, "mon0"),
    ];
    for (number, namespace, ifname) in legs {
        lab.add_veth_pair((sw, &format!("p{number}")), (namespace, ifname))?;
    }
    for (namespace, addr, gateway) in [
        (client, CLIENT_ADDR, CLIENT_GATEWAY),
        (server, SERVER_ADDR, SERVER_GATEWAY),
    ] {
        ip(
            namespace,
            &[
                "addr",
                "add",
                &format!("{addr}/{PREFIX_LEN}"),
                "dev",
                "eth0",
            ],
        )?;
        ip(
            namespace,
            &["route", "add", "default", "via", &gateway.to_string()],
        )?;
    }
    for device in [primary, shadow] {
        for (leg, addr, mac) in [
            ("legc", CLIENT_GATEWAY, CLIENT_LEG_MAC),
            ("legs", SERVER_GATEWAY, SERVER_LEG_MAC),
        ] {
            ip(device, &["link", "set", leg, "address", mac])?;
            ip(
                device,
                &["addr", "add", &format!("{addr}/{PREFIX_LEN}"), "dev", leg],
            )?;
        }
        for sysctl in [
            "net.ipv4.ip_forward=1",
            // The monitor leg only receives samples.
            "net.ipv4.conf.all.rp_filter=0",
            "net.ipv4.conf.default.rp_filter=0",
        ] {
            netns_exec(device, &["sysctl", "-qw", sysctl])?;
        }
        netns_exec(device, &["nft", FIREWALL])?;
        // The ruleset's `ct` expressions loaded conntrack, which owns this
        // sysctl: unknown mid-stream TCP is invalid, not picked up.
        netns_exec(
            device,
            &["sysctl", "-qw", "net.netfilter.nf_conntrack_tcp_loose=0"],
        )?;
        // Window tracking stays strict (`tcp_be_liberal=0`, the default):
        // after a failback the old device's own entries have not seen the
        // sequence numbers that went through the other one; the commit of
        // drain-and-commit makes them liberal before the redirect.
    }
    Ok(namespaces)
}

/// `ip -n NAMESPACE ARGS...`.
pub(crate) fn ip(namespace: &str, args: &[&str]) -> std::io::Result<()> {
    let mut full = vec!["-n", namespace];
    full.extend_from_slice(args);
    command("ip", &full).map(drop)
}

/// `ip netns exec NAMESPACE ARGS...`.
pub(crate) fn netns_exec(namespace: &str, args: &[&str]) -> std::io::Result<String> {
    let mut full = vec!["netns", "exec", namespace];
    full.extend_from_slice(args);
    command("ip", &full)
}

/// Runs a command; a non-zero exit is an error carrying its stderr.
pub(crate) fn command(program: &str, args: &[&str]) -> std::io::Result<String> {
    let output = std::process::Command::new(program)
        .args(args)
        .output()
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot run {program}: {e}")))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(std::io::Error::other(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}

/// Where the lab's servers listen.
struct ServerAddrs {
    switch: SocketAddr,
    switch_server: SwitchServer,
    /// The primary's and the shadow's.
    agents: [AgentServer; 2],
}

/// How a device's agent is made, so that it can be made again after a
/// crash.
#[derive(Clone)]
struct AgentRecipe {
    namespace: String,
    node_id: u64,
    route_tables: Vec<u32>,
    poll_interval: Duration,
    cgroup: Option<Arc<DeviceCgroup>>,
    /// The primary's hard-failure flag, reported as a problem.
    failed: Option<Arc<AtomicBool>>,
}

impl AgentRecipe {
    fn build(&self) -> Result<Arc<Agent>> {
        let backend = LinuxBackend::open(LinuxConfig {
            route_tables: self.route_tables.clone(),
            poll_interval: self.poll_interval,
            cgroup: self.cgroup.as_ref().and_then(|c| c.agent_path()),
            local_nft_tables: vec![apps::DB_FAULT_TABLE.to_owned()],
            local_conntrack_mark: Some(fault::LOCAL_CONNTRACK_MARK),
            ..LinuxConfig::new(&self.namespace)
        })
        .map_err(LabError::Agent)?;
        Agent::new(
            AgentConfig {
                node_id: self.node_id,
                ..AgentConfig::default()
            },
            Arc::new(LabBackend::new(backend, self.failed.clone())),
        )
        .map_err(LabError::Agent)
    }
}

/// A running agent and how to make it again, so that it can be restarted.
struct AgentServer {
    name: &'static str,
    addr: SocketAddr,
    agent: Arc<Agent>,
    recipe: AgentRecipe,
    runtime: tokio::runtime::Handle,
    /// The lab's tracker: the lab waits for its agents when it stops.
    tasks: TaskTracker,
    /// The lab's token; each incarnation of the agent runs under a child.
    lab_stop: CancellationToken,
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl AgentServer {
    fn spawn(&mut self, listener: tokio::net::TcpListener) {
        self.stop = self.lab_stop.child_token();
        // Labs only: the agents serve loopback without authentication.
        let security = Security {
            allow_unauthenticated: true,
            ..Security::default()
        };
        let (agent, stop, name) = (Arc::clone(&self.agent), self.stop.clone(), self.name);
        self.task = Some(self.tasks.spawn_on(
            async move {
                if let Err(error) = umbra_agent::serve(listener, agent, security, stop).await {
                    tracing::error!(error = %error, device = name, "failover lab: an agent failed");
                }
            },
            &self.runtime,
        ));
    }
}

/// The running switch, so that it can be restarted.
struct SwitchServer {
    runtime: tokio::runtime::Handle,
    options: SwitchOptions,
    /// The lab's token; each incarnation of the switch runs under a child.
    lab_stop: CancellationToken,
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl SwitchServer {
    fn spawn(&mut self, listener: tokio::net::TcpListener) {
        self.stop = self.lab_stop.child_token();
        let (options, stop) = (self.options.clone(), self.stop.clone());
        self.task = Some(self.runtime.spawn(async move {
            if let Err(error) = umbra_switch::serve(listener, options, stop).await {
                tracing::error!(error = %error, "failover lab: the switch failed");
            }
        }));
    }
}

/// Starts the switch and both agents on a runtime owned by a thread of the
/// lab, which runs until `stop` is cancelled; returns once they listen.
/// The runtime lives on its own thread so that `up` and `drop` work from
/// synchronous and asynchronous callers alike (a runtime may be neither
/// entered nor dropped inside another one).
fn start_servers(
    options: &FailoverLabOptions,
    switch_netns: &str,
    recipes: [AgentRecipe; 2],
    stop: CancellationToken,
) -> Result<(JoinHandle<()>, ServerAddrs)> {
    let [primary_agent, shadow_agent] = [recipes[0].build()?, recipes[1].build()?];
    let loopback = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
    let ports = [
        loopback(options.switch_port),
        loopback(options.primary_agent_port),
        loopback(options.shadow_agent_port),
    ];
    let mut switch_options = SwitchOptions {
        device_id: options.switch_device_id,
        ports: (1..=8).map(|n| (n, format!("p{n}"))).collect(),
        netns: Some(switch_netns.to_owned()),
        ..SwitchOptions::default()
    };
    let (ready, listening) = std::sync::mpsc::sync_channel(1);
    let thread = std::thread::Builder::new()
        .name("failover-lab".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("failover-lab")
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(error) => {
                    let _ = ready.send(Err(error));
                    return;
                }
            };
            runtime.block_on(async move {
                let mut listeners = Vec::new();
                for addr in ports {
                    match tokio::net::TcpListener::bind(addr)
                        .await
                        .and_then(|l| Ok((l.local_addr()?, l)))
                    {
                        Ok(bound) => listeners.push(bound),
                        Err(error) => {
                            let _ = ready.send(Err(error));
                            return;
                        }
                    }
                }
                let mut listeners = listeners.into_iter();
                let (Some(switch), Some(primary), Some(shadow)) =
                    (listeners.next(), listeners.next(), listeners.next())
                else {
                    return;
                };
                switch_options.grpc = switch.0;
                let tasks = TaskTracker::new();
                let mut switch_server = SwitchServer {
                    runtime: tokio::runtime::Handle::current(),
                    options: switch_options,
                    lab_stop: stop.clone(),
                    stop: stop.child_token(),
                    task: None,
                };
                switch_server.spawn(switch.1);
                let [primary_recipe, shadow_recipe] = recipes;
                let agents = [
                    (primary, primary_agent, primary_recipe, "primary"),
                    (shadow, shadow_agent, shadow_recipe, "shadow"),
                ]
                .map(|((addr, listener), agent, recipe, name)| {
                    let mut server = AgentServer {
                        name,
                        addr,
                        agent,
                        recipe,
                        runtime: tokio::runtime::Handle::current(),
                        tasks: tasks.clone(),
                        lab_stop: stop.clone(),
                        stop: stop.child_token(),
                        task: None,
                    };
                    server.spawn(listener);
                    server
                });
                let _ = ready.send(Ok(ServerAddrs {
                    switch: switch.0,
                    switch_server,
                    agents,
                }));
                stop.cancelled().await;
                tasks.close();
                if tokio::time::timeout(Duration::from_secs(10), tasks.wait())
                    .await
                    .is_err()
                {
                    tracing::warn!("failover lab: servers did not stop within 10 s");
                }
            });
            runtime.shutdown_timeout(Duration::from_secs(2));
        })
        .map_err(LabError::Topology)?;
    match listening.recv() {
        Ok(Ok(addrs)) => Ok((thread, addrs)),
        Ok(Err(error)) => {
            let _ = thread.join();
            Err(LabError::Topology(error))
        }
        Err(_) => {
            let _ = thread.join();
            Err(LabError::Topology(std::io::Error::other(
                "the lab's server thread ended before listening",
            )))
        }
    }
}
