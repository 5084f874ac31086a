//! The devices' applications and their management links, where the
//! application faults (`http5xx`, `db`) live.
//!
//! Each device gets a management link to the host (a veth pair, the host
//! end in the host's namespace, a /30 of 198.19.0.0/16 per device) and
//! serves on it what a virtual network function's health checks look at:
//! its HTTP application (`http://ADDR:8080/`) and its database endpoint
//! (`ADDR:5432`, a TCP service). The host's health checks reach each
//! device directly, so they judge that device and not whichever one the
//! switch steers through. On the primary, the `http5xx` fault's intensity
//! becomes the fraction of HTTP requests answered 503, and the `db`
//! fault's becomes the fraction of database connections refused (an
//! nftables `reject with tcp reset` on a random share); the hard failure
//! makes both total.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Serialize;
use umbra_traffic::{HttpFaults, HttpServer, SessionEchoServer};

use super::{FaultLevel, command, ip, netns_exec};

/// The devices' HTTP application port.
pub const APP_PORT: u16 = 8080;
/// The devices' database endpoint port.
pub const DB_PORT: u16 = 5432;
/// How often the bridge reads the fault levels.
const BRIDGE_EVERY: Duration = Duration::from_millis(50);

/// One device's management link and applications, as the host reaches
/// them.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceManagement {
    /// The host's end of the link (in the host's namespace).
    pub host_interface: String,
    /// The host's address on the link.
    pub host_address: Ipv4Addr,
    /// The device's address on the link.
    pub address: Ipv4Addr,
    /// The device's HTTP application.
    pub app_url: String,
    /// The device's database endpoint.
    pub db: SocketAddr,
}

/// Both devices' management.
#[derive(Debug, Clone, Serialize)]
pub struct LabManagement {
    /// The primary's.
    pub primary: DeviceManagement,
    /// The shadow's.
    pub shadow: DeviceManagement,
}

/// The running applications; stopped on drop.
pub(crate) struct DeviceApps {
    http: Vec<HttpServer>,
    db: Vec<SessionEchoServer>,
    stop: Arc<AtomicBool>,
    bridge: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for DeviceApps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceApps").finish_non_exhaustive()
    }
}

/// A /30 of 198.19.0.0/16 for device `index` (0, 1) of the lab with
/// namespace prefix `prefix`: (host, device) addresses. Labs of different
/// processes pick different subnets (by a hash of the prefix).
fn subnet(prefix: &str, index: u32) -> (Ipv4Addr, Ipv4Addr) {
    let hash = prefix.bytes().fold(2_166_136_261_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(16_777_619)
    });
    // 8 addresses per lab (two /30s), 8 192 labs.
    let base = (hash % 8_192) * 8 + index * 4;
    let [_, _, c, d] = base.to_be_bytes();
    (
        Ipv4Addr::new(198, 19, c, d + 2),
        Ipv4Addr::new(198, 19, c, d + 1),
    )
}

/// The host end's interface name (at most 15 bytes).
fn host_interface(prefix: &str, index: u32) -> String {
    let hash = prefix
        .bytes()
        .fold(5_381_u32, |h, b| h.wrapping_mul(33) ^ u32::from(b));
    format!("umg{:08x}{}", hash, ["p", "s"][index as usize])
}

/// Builds the management links of `devices` (primary, shadow).
pub(crate) fn build_links(prefix: &str, devices: [&str; 2]) -> std::io::Result<LabManagement> {
    let mut out = Vec::new();
    for (index, namespace) in (0_u32..).zip(devices) {
        let (host, device) = subnet(prefix, index);
        let host_if = host_interface(prefix, index);
        // Created in the device's namespace with the peer in the host's
        // (that of pid 1); deleting the namespace deletes both ends.
        ip(
            namespace,
            &[
                "link", "add", "mgmt0", "type", "veth", "peer", "name", &host_if, "netns", "1",
            ],
        )?;
        ip(
            namespace,
            &["addr", "add", &format!("{device}/30"), "dev", "mgmt0"],
        )?;
        ip(namespace, &["link", "set", "mgmt0", "up"])?;
        command(
            "ip",
            &["addr", "add", &format!("{host}/30"), "dev", &host_if],
        )?;
        command("ip", &["link", "set", &host_if, "up"])?;
        out.push(DeviceManagement {
            host_interface: host_if,
            host_address: host,
            address: device,
            app_url: format!("http://{device}:{APP_PORT}/"),
            db: SocketAddr::from((device, DB_PORT)),
        });
    }
    let shadow = out.pop().expect("two devices");
    let primary = out.pop().expect("two devices");
    Ok(LabManagement { primary, shadow })
}

/// The nftables table the `db` fault's rule lives in.
pub(crate) const DB_FAULT_TABLE: &str = "umbra_appfault";

/// Replaces the primary's `db` fault rule with one refusing `percent` %
/// of new connections to the database endpoint.
fn set_db_refusal(namespace: &str, percent: u32) -> std::io::Result<()> {
    let rule = if percent == 0 {
        String::new()
    } else if percent >= 100 {
        format!("tcp dport {DB_PORT} ct state new reject with tcp reset")
    } else {
        format!(
            "tcp dport {DB_PORT} ct state new numgen random mod 100 < {percent} reject with tcp reset"
        )
    };
    let mut script = format!(
        "table inet {DB_FAULT_TABLE} {{\n\tchain input {{\n\t\ttype filter hook input priority -10; policy accept;\n\t}}\n}}\nflush chain inet {DB_FAULT_TABLE} input\n"
    );
    if !rule.is_empty() {
        script.push_str(&format!("add rule inet {DB_FAULT_TABLE} input {rule}\n"));
    }
    let path = std::env::temp_dir().join(format!("{namespace}-dbfault.nft"));
    std::fs::write(&path, script)?;
    let result = netns_exec(namespace, &["nft", "-f", &path.to_string_lossy()]);
    let _ = std::fs::remove_file(&path);
    result.map(drop)
}

impl DeviceApps {
    /// Starts each device's HTTP application and database endpoint on its
    /// management address, and the bridge from the primary's fault
    /// levels (and hard failure) to them.
    pub(crate) fn start(
        namespaces: [&str; 2],
        management: &LabManagement,
        http5xx: Arc<FaultLevel>,
        db: Arc<FaultLevel>,
        failed: Arc<AtomicBool>,
    ) -> std::io::Result<Self> {
        let to_io = |e: umbra_traffic::TrafficError| std::io::Error::other(e.to_string());
        let mut apps = Self {
            http: Vec::new(),
            db: Vec::new(),
            stop: Arc::new(AtomicBool::new(false)),
            bridge: None,
        };
        for (namespace, device) in namespaces
            .into_iter()
            .zip([&management.primary, &management.shadow])
        {
            apps.http.push(
                HttpServer::start(
                    Some(namespace),
                    SocketAddr::from((device.address, APP_PORT)),
                )
                .map_err(to_io)?,
            );
            apps.db
                .push(SessionEchoServer::start(Some(namespace), device.db).map_err(to_io)?);
        }
        let faults: Arc<HttpFaults> = apps.http[0].faults();
        let (stop, primary) = (Arc::clone(&apps.stop), namespaces[0].to_owned());
        apps.bridge = Some(
            std::thread::Builder::new()
                .name("lab-app-faults".into())
                .spawn(move || {
                    let mut refused = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let down = failed.load(Ordering::Relaxed);
                        faults.set_error_fraction(if down { 1.0 } else { http5xx.get() });
                        let percent = if down {
                            100
                        } else {
                            (db.get() * 100.0).round() as u32
                        };
                        if percent != refused {
                            // Tried once per level: a failure is logged, not
                            // repeated every step.
                            refused = percent;
                            if let Err(error) = set_db_refusal(&primary, percent) {
                                tracing::warn!(%error, "the db fault's nftables rule");
                            }
                        }
                        std::thread::sleep(BRIDGE_EVERY);
                    }
                })?,
        );
        Ok(apps)
    }
}

impl Drop for DeviceApps {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.bridge.take() {
            let _ = thread.join();
        }
        for server in self.http.drain(..) {
            let _ = server.stop();
        }
        for server in self.db.drain(..) {
            server.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_lab_and_device_gets_its_own_subnet_in_the_benchmark_range() {
        let (h0, d0) = subnet("umbra-fo-100-0", 0);
        let (h1, d1) = subnet("umbra-fo-100-0", 1);
        for a in [h0, d0, h1, d1] {
            let [a0, a1, _, _] = a.octets();
            assert_eq!((a0, a1), (198, 19), "{a} is outside 198.18.0.0/15");
        }
        assert_ne!(d0, d1);
        assert_eq!(u32::from(h0) & !3, u32::from(d0) & !3, "one /30 per device");
        assert_ne!(subnet("umbra-fo-101-0", 0), subnet("umbra-fo-100-0", 0));
        assert!(host_interface("umbra-fo-100-0", 1).len() <= 15);
    }
}
