//! The switch lab: a client, a server, a primary and a shadow device, each in
//! its own network namespace, joined through `umbra switch` (in process, its
//! ports in a namespace of their own) and programmed by the host's P4Runtime
//! client. Traffic runs through the primary, a sample of it is mirrored to
//! the shadow's monitor leg, then ONE P4Runtime write moves the service to
//! the shadow while traffic keeps flowing; the counters show where every
//! packet went.
//!
//! The devices are Linux bridges (transparent L2 devices): the point here is
//! the switch, not the devices. Addresses are 198.18.0.0/15 only and live
//! only inside the lab's namespaces, which are removed when the lab drops.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use umbra_p4rt::{
    Atomicity, ClientConfig, CloneSession, Connection, P4RuntimeClient, TableEntry, Update,
};
use umbra_switch::SwitchOptions;
use umbra_switch::dataplane::veth_lab::VethLab;

use crate::{LabError, Result};

/// Switch port numbers of the lab (the P4 program assigns no roles itself).
pub mod port {
    /// Client-facing port.
    pub const CLIENT: u16 = 1;
    /// Server-facing port.
    pub const SERVER: u16 = 2;
    /// Primary device, client leg.
    pub const PRIMARY_CLIENT_LEG: u16 = 3;
    /// Primary device, server leg.
    pub const PRIMARY_SERVER_LEG: u16 = 4;
    /// Shadow device, client leg.
    pub const SHADOW_CLIENT_LEG: u16 = 5;
    /// Shadow device, server leg.
    pub const SHADOW_SERVER_LEG: u16 = 6;
    /// Shadow device, monitor leg (receives mirrored samples only).
    pub const SHADOW_MONITOR: u16 = 7;
}

/// Device numbers in `service_selector` / `device_portmap`.
pub const PRIMARY: u8 = 1;
/// See [`PRIMARY`].
pub const SHADOW: u8 = 2;
/// The protected service.
pub const SERVICE: u16 = 1;
/// Clone session towards the shadow's monitor leg.
pub const MIRROR_SESSION: u32 = 100;

const CLIENT_ADDR: &str = "198.18.0.1";
const SERVER_ADDR: &str = "198.18.0.2";

/// What to run.
#[derive(Debug, Clone)]
pub struct SwitchLabOptions {
    /// Probes (ICMP echo requests) the client sends to the server.
    pub probes: u32,
    /// Time between probes.
    pub probe_interval: Duration,
    /// Mirror one packet in this many to the shadow (per-packet sampling).
    pub sample_one_in_n: u32,
    /// Mirrored samples are cut to this many bytes.
    pub mirror_truncate_bytes: u32,
}

impl Default for SwitchLabOptions {
    fn default() -> Self {
        Self {
            probes: 1000,
            probe_interval: Duration::from_millis(2),
            sample_one_in_n: 10,
            mirror_truncate_bytes: 64,
        }
    }
}

/// Packets a device carried, read from the switch's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeviceTraffic {
    /// Client → server packets steered to the device (`steer_hits`).
    pub to_server: u64,
    /// Server → client packets steered to the device (`steer_hits`).
    pub to_client: u64,
}

/// What happened, from the switch's counters and the client's probes.
#[derive(Debug, Clone, Default)]
pub struct SwitchLabReport {
    /// Probes sent by the client.
    pub probes_sent: u64,
    /// Probe replies the client received.
    pub probes_answered: u64,
    /// Traffic through the primary before the flip.
    pub primary_before_flip: DeviceTraffic,
    /// Traffic through the primary after the flip (in-flight packets only).
    pub primary_after_flip: DeviceTraffic,
    /// Traffic through the shadow before the flip.
    pub shadow_before_flip: DeviceTraffic,
    /// Traffic through the shadow after the flip.
    pub shadow_after_flip: DeviceTraffic,
    /// Samples the switch sent to the shadow's monitor leg (`port_tx`).
    pub mirrored: u64,
    /// Packets from the client and server ports (`port_rx`), the sampled
    /// population.
    pub service_packets: u64,
    /// Time the one P4Runtime write of the flip took.
    pub flip_write: Duration,
}

fn device_traffic(direct: &[(TableEntry, umbra_p4rt::CounterData)], device: u8) -> DeviceTraffic {
    let mut traffic = DeviceTraffic::default();
    for (entry, data) in direct {
        let field = |name: &str| match entry.key().field(name) {
            Some(umbra_p4rt::FieldMatch::Exact { value }) => value.as_u64(),
            _ => None,
        };
        if field("device") != Some(u64::from(device)) {
            continue;
        }
        match field("direction") {
            Some(0) => traffic.to_server += data.packets,
            Some(1) => traffic.to_client += data.packets,
            _ => {}
        }
    }
    traffic
}

fn minus(after: DeviceTraffic, before: DeviceTraffic) -> DeviceTraffic {
    DeviceTraffic {
        to_server: after.to_server - before.to_server,
        to_client: after.to_client - before.to_client,
    }
}

/// Builds the namespaces: `sw` holds the switch's port interfaces, the
/// others are the hosts and the two devices.
fn build_topology(lab: &mut VethLab) -> std::io::Result<(String, String)> {
    let sw = lab.add_namespace("sw")?;
    let client = lab.add_namespace("client")?;
    let server = lab.add_namespace("server")?;
    let primary = lab.add_namespace("primary")?;
    let shadow = lab.add_namespace("shadow")?;
    let legs = [
        (port::CLIENT, &client, "eth0"),
        (port::SERVER, &server, "eth0"),
        (port::PRIMARY_CLIENT_LEG, &primary, "legc"),
        (port::PRIMARY_SERVER_LEG, &primary, "legs"),
        (port::SHADOW_CLIENT_LEG, &shadow, "legc"),
        (port::SHADOW_SERVER_LEG, &shadow, "legs"),
        (port::SHADOW_MONITOR, &shadow, "mon0"),
    ];
    for (number, namespace, ifname) in legs {
        lab.add_veth_pair((&sw, &format!("p{number}")), (namespace, ifname))?;
    }
    for device in [&primary, &shadow] {
        lab_ip(device, &["link", "add", "br0", "type", "bridge"])?;
        for leg in ["legc", "legs"] {
            lab_ip(device, &["link", "set", leg, "master", "br0"])?;
        }
        lab_ip(device, &["link", "set", "br0", "up"])?;
    }
    lab_ip(
        &client,
        &["addr", "add", &format!("{CLIENT_ADDR}/24"), "dev", "eth0"],
    )?;
    lab_ip(
        &server,
        &["addr", "add", &format!("{SERVER_ADDR}/24"), "dev", "eth0"],
    )?;
    Ok((sw, client))
}

fn lab_ip(namespace: &str, args: &[&str]) -> std::io::Result<()> {
    let output = std::process::Command::new("ip")
        .arg("-n")
        .arg(namespace)
        .args(args)
        .output()?;
    if output.status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "ip -n {namespace} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}

/// Installs steering through the primary, sampling to the shadow's monitor
/// leg and truncation of the samples. Every name is resolved through the
/// P4Info by the client.
async fn program_switch(client: &P4RuntimeClient, options: &SwitchLabOptions) -> Result<()> {
    let schema = client.schema()?;
    let mut entries = Vec::new();
    for (port, direction) in [(port::CLIENT, 0u8), (port::SERVER, 1u8)] {
        entries.push(
            schema
                .table("UmbraIngress.port_classify")
                .exact("ingress_port", port)
                .action("UmbraIngress.set_service")
                .param("service_id", SERVICE)
                .param("direction", direction)
                .build()?,
        );
        entries.push(
            schema
                .table("UmbraIngress.mirror_sampling")
                .exact("ingress_port", port)
                .action("UmbraIngress.sample_per_packet")
                .param("one_in_n", options.sample_one_in_n)
                .param("session", MIRROR_SESSION)
                .build()?,
        );
    }
    for (leg, towards) in [
        (port::PRIMARY_CLIENT_LEG, port::CLIENT),
        (port::PRIMARY_SERVER_LEG, port::SERVER),
        (port::SHADOW_CLIENT_LEG, port::CLIENT),
        (port::SHADOW_SERVER_LEG, port::SERVER),
    ] {
        entries.push(
            schema
                .table("UmbraIngress.port_classify")
                .exact("ingress_port", leg)
                .action("UmbraIngress.forward_to_port")
                .param("port", towards)
                .build()?,
        );
    }
    for (device, client_leg, server_leg) in [
        (PRIMARY, port::PRIMARY_CLIENT_LEG, port::PRIMARY_SERVER_LEG),
        (SHADOW, port::SHADOW_CLIENT_LEG, port::SHADOW_SERVER_LEG),
    ] {
        for (direction, leg) in [(0u8, client_leg), (1u8, server_leg)] {
            entries.push(
                schema
                    .table("UmbraIngress.device_portmap")
                    .exact("device", device)
                    .exact("direction", direction)
                    .action("UmbraIngress.steer_to_port")
                    .param("port", leg)
                    .build()?,
            );
        }
    }
    entries.push(selector(client, PRIMARY)?);
    entries.push(
        schema
            .table("UmbraEgress.mirror_truncate")
            .exact("egress_port", port::SHADOW_MONITOR)
            .action("UmbraEgress.truncate_mirror")
            .param("length", options.mirror_truncate_bytes)
            .build()?,
    );
    let mut updates = vec![Update::InsertCloneSession(
        CloneSession::builder(MIRROR_SESSION)
            .replica(u32::from(port::SHADOW_MONITOR), 0)
            .build()?,
    )];
    updates.extend(entries.into_iter().map(Update::InsertEntry));
    client.write(updates, Atomicity::RollbackOnError).await?;
    Ok(())
}

/// The one entry a failover rewrites: the active device of the service.
fn selector(client: &P4RuntimeClient, device: u8) -> Result<TableEntry> {
    Ok(client
        .schema()?
        .table("UmbraIngress.service_selector")
        .exact("service_id", SERVICE)
        .action("UmbraIngress.set_active_device")
        .param("device", device)
        .build()?)
}

/// Runs the lab once. `progress` gets one line per step.
///
/// # Errors
/// [`LabError`] when the lab cannot be built (not root, tools missing), the
/// switch or client fails, or `shutdown` is cancelled (Ctrl-C).
pub async fn run(
    options: SwitchLabOptions,
    shutdown: CancellationToken,
    mut progress: impl FnMut(&str),
) -> Result<SwitchLabReport> {
    let mut lab = VethLab::new("lab");
    let (sw, client_ns) = build_topology(&mut lab).map_err(LabError::Topology)?;
    progress("lab: namespaces client, server, primary, shadow and sw built (198.18.0.0/24)");

    let tasks = TaskTracker::new();
    let stop = shutdown.child_token();
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .map_err(LabError::Topology)?;
    let grpc = listener.local_addr().map_err(LabError::Topology)?;
    let switch_options = SwitchOptions {
        grpc,
        ports: (1..=7).map(|n| (n, format!("p{n}"))).collect(),
        netns: Some(sw.clone()),
        ..SwitchOptions::default()
    };
    let switch = tasks.spawn(umbra_switch::serve(listener, switch_options, stop.clone()));
    progress(&format!(
        "switch: umbra switch serving P4Runtime on {grpc}, 7 ports in {sw}"
    ));

    let result = drive(&options, grpc, &client_ns, &stop, &tasks, &mut progress).await;
    stop.cancel();
    tasks.close();
    tasks.wait().await;
    if let Ok(Err(error)) = switch.await {
        return Err(LabError::Switch(error));
    }
    drop(lab);
    progress("lab: namespaces removed");
    result
}

async fn drive(
    options: &SwitchLabOptions,
    grpc: SocketAddr,
    client_ns: &str,
    stop: &CancellationToken,
    tasks: &TaskTracker,
    progress: &mut impl FnMut(&str),
) -> Result<SwitchLabReport> {
    let Connection {
        client, supervisor, ..
    } = P4RuntimeClient::connect(ClientConfig::new(grpc.to_string())).await?;
    tasks.spawn(supervisor.run(stop.clone()));
    client
        .push_pipeline(
            umbra_p4info::umbra_p4info().clone(),
            Vec::new(),
            0x0b5e_55ed,
        )
        .await?;
    program_switch(&client, options).await?;
    progress(&format!(
        "host: pipeline pushed; steering through the primary, 1-in-{} sampling to the shadow's monitor leg (cut to {} bytes)",
        options.sample_one_in_n, options.mirror_truncate_bytes
    ));

    let count = options.probes.to_string();
    let interval = format!("{:.3}", options.probe_interval.as_secs_f64());
    let ping = tokio::process::Command::new("ip")
        .args(["netns", "exec", client_ns, "ping", "-n", "-q", "-c", &count])
        .args(["-i", &interval, "-W", "1", SERVER_ADDR])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(LabError::Topology)?;
    progress(&format!(
        "traffic: {} ICMP probes client → server, one every {:?}",
        options.probes, options.probe_interval
    ));

    // Flip once half the probes have gone through the primary (not after
    // half the nominal run time: on a loaded machine ping falls behind its
    // interval), or when the run should long be over.
    let run_time = options.probe_interval * options.probes;
    let deadline = Instant::now() + run_time * 5;
    let half = u64::from(options.probes / 2);
    let before = loop {
        let counters = client
            .read_direct_counters("UmbraIngress.device_portmap")
            .await?;
        if device_traffic(&counters, PRIMARY).to_server >= half || Instant::now() >= deadline {
            break counters;
        }
        tokio::select! {
            () = tokio::time::sleep(options.probe_interval * 5) => {}
            () = stop.cancelled() => return Err(LabError::Cancelled),
        }
    };
    let flip = selector(&client, SHADOW)?;
    let started = Instant::now();
    client.modify(flip).await?;
    let flip_write = started.elapsed();
    progress(&format!(
        "failover: service {SERVICE} moved to the shadow with one P4Runtime write ({flip_write:?})"
    ));

    let output = tokio::select! {
        output = ping.wait_with_output() => output.map_err(LabError::Topology)?,
        () = stop.cancelled() => return Err(LabError::Cancelled),
    };
    let (sent, answered) = parse_ping(&String::from_utf8_lossy(&output.stdout))
        .ok_or(LabError::Traffic("ping printed no summary"))?;
    let after = client
        .read_direct_counters("UmbraIngress.device_portmap")
        .await?;
    let mirrored = client
        .read_counter("UmbraEgress.port_tx", i64::from(port::SHADOW_MONITOR))
        .await?
        .packets;
    let mut service_packets = 0;
    for service_port in [port::CLIENT, port::SERVER] {
        service_packets += client
            .read_counter("UmbraIngress.port_rx", i64::from(service_port))
            .await?
            .packets;
    }
    let report = SwitchLabReport {
        probes_sent: sent,
        probes_answered: answered,
        primary_before_flip: device_traffic(&before, PRIMARY),
        primary_after_flip: minus(
            device_traffic(&after, PRIMARY),
            device_traffic(&before, PRIMARY),
        ),
        shadow_before_flip: device_traffic(&before, SHADOW),
        shadow_after_flip: minus(
            device_traffic(&after, SHADOW),
            device_traffic(&before, SHADOW),
        ),
        mirrored,
        service_packets,
        flip_write,
    };
    Ok(report)
}

/// (transmitted, received) from ping's summary line.
fn parse_ping(output: &str) -> Option<(u64, u64)> {
    let line = output.lines().find(|l| l.contains("packets transmitted"))?;
    let mut numbers = line
        .split(',')
        .filter_map(|part| part.split_whitespace().next()?.parse::<u64>().ok());
    Some((numbers.next()?, numbers.next()?))
}

impl SwitchLabReport {
    /// A human summary, one fact per line.
    pub fn summary(&self) -> String {
        let lost = self.probes_sent - self.probes_answered;
        format!(
            "probes: {} sent, {} answered, {lost} lost\n\
             before the flip: primary carried {} → server and {} → client; shadow {} and {}\n\
             after the flip:  shadow carried {} → server and {} → client; primary {} and {} (between the counter snapshot and the flip)\n\
             mirrored to the shadow's monitor leg: {} of {} service packets ({:.1} %)\n\
             failover write: {:?}",
            self.probes_sent,
            self.probes_answered,
            self.primary_before_flip.to_server,
            self.primary_before_flip.to_client,
            self.shadow_before_flip.to_server,
            self.shadow_before_flip.to_client,
            self.shadow_after_flip.to_server,
            self.shadow_after_flip.to_client,
            self.primary_after_flip.to_server,
            self.primary_after_flip.to_client,
            self.mirrored,
            self.service_packets,
            100.0 * self.mirrored as f64 / self.service_packets.max(1) as f64,
            self.flip_write,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ping_summaries() {
        let out = "--- 198.18.0.2 ping statistics ---\n1000 packets transmitted, 998 received, 0.2% packet loss, time 2100ms\n";
        assert_eq!(parse_ping(out), Some((1000, 998)));
        assert_eq!(parse_ping("nothing"), None);
    }
}
