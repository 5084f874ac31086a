//! Metrics of a namespace: per-interface counters (`IFLA_STATS64` over
//! rtnetlink), conntrack table fill, and CPU/memory of a cgroup v2.
//!
//! `/proc/sys/net` is per network namespace of the *reading thread*, so the
//! conntrack sysctls are read on the namespace's worker thread. `/sys/class/net`
//! would show the namespace sysfs was mounted in, so link counters come from
//! netlink instead.

use std::fs;
use std::path::{Path, PathBuf};

use crate::codec::{self, MessageWriter, NLM_F_DUMP, NLM_F_REQUEST};
use crate::error::{Error, Result};
use crate::netns::{NetNs, NsState};

const RTM_GETLINK: u16 = 18;
const IFLA_IFNAME: u16 = 3;
const IFLA_STATS64: u16 = 23;

/// Counters of one interface (`struct rtnl_link_stats64`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InterfaceStats {
    /// Interface name.
    pub name: String,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Packets received.
    pub rx_packets: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Received packets dropped.
    pub rx_dropped: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Send errors.
    pub tx_errors: u64,
    /// Packets dropped on send.
    pub tx_dropped: u64,
}

/// Resource use of a cgroup v2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CgroupStats {
    /// `cpu.stat` `usage_usec`: CPU time consumed, microseconds.
    pub cpu_usage_usec: u64,
    /// `memory.current` in bytes; `None` when the memory controller is not
    /// enabled for the cgroup.
    pub memory_current: Option<u64>,
}

/// A snapshot of a namespace's metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceMetrics {
    /// Every interface of the namespace, by kernel index order.
    pub interfaces: Vec<InterfaceStats>,
    /// `net.netfilter.nf_conntrack_count`.
    pub conntrack_count: u64,
    /// `net.netfilter.nf_conntrack_max`.
    pub conntrack_max: u64,
    /// CPU and memory of the cgroup asked for.
    pub cgroup: Option<CgroupStats>,
}

pub(crate) struct Link {
    pub(crate) index: u32,
    pub(crate) stats: InterfaceStats,
}

impl NetNs {
    /// Interface counters and conntrack fill of the namespace, plus CPU and
    /// memory of `cgroup` when given (absolute, or relative to the cgroup v2
    /// mount point).
    ///
    /// # Errors
    /// [`Error::File`] if a sysctl or cgroup file cannot be read (conntrack
    /// not available, no such cgroup); netlink errors from the link dump.
    pub fn metrics(&self, cgroup: Option<&Path>) -> Result<NamespaceMetrics> {
        let cgroup = cgroup.map(Path::to_path_buf);
        self.with_state(move |state| {
            let interfaces = dump_links(state)?.into_iter().map(|l| l.stats).collect();
            let conntrack_count =
                read_u64(Path::new("/proc/sys/net/netfilter/nf_conntrack_count"))?;
            let conntrack_max = read_u64(Path::new("/proc/sys/net/netfilter/nf_conntrack_max"))?;
            let cgroup = cgroup.map(|c| cgroup_stats(&c)).transpose()?;
            Ok(NamespaceMetrics {
                interfaces,
                conntrack_count,
                conntrack_max,
                cgroup,
            })
        })
    }
}

/// Every link of the namespace with its counters.
pub(crate) fn dump_links(state: &mut NsState) -> Result<Vec<Link>> {
    let sock = state.route()?;
    let seq = sock.next_seqs(1);
    let mut req = Vec::new();
    let mut m = MessageWriter::begin(&mut req, RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, seq);
    // struct ifinfomsg: family, pad, type, index, flags, change.
    m.put(&[0u8; 16]);
    m.finish();
    let mut links = Vec::new();
    sock.dump(&req, seq, "link dump", |msg| {
        let p = msg.payload;
        let index = codec::ne32(p.get(4..8).unwrap_or_default())?;
        let mut stats = InterfaceStats::default();
        for (ty, d) in codec::attrs(p.get(16..).unwrap_or_default()) {
            match ty {
                IFLA_IFNAME => {
                    stats.name = String::from_utf8_lossy(d.split(|b| *b == 0).next().unwrap_or(d))
                        .into_owned();
                }
                IFLA_STATS64 => {
                    let field = |i: usize| -> Result<u64> {
                        Ok(u64::from_ne_bytes(codec::fixed(
                            d.get(i * 8..).unwrap_or_default(),
                        )?))
                    };
                    // rx_packets, tx_packets, rx_bytes, tx_bytes, rx_errors,
                    // tx_errors, rx_dropped, tx_dropped, ...
                    stats.rx_packets = field(0)?;
                    stats.tx_packets = field(1)?;
                    stats.rx_bytes = field(2)?;
                    stats.tx_bytes = field(3)?;
                    stats.rx_errors = field(4)?;
                    stats.tx_errors = field(5)?;
                    stats.rx_dropped = field(6)?;
                    stats.tx_dropped = field(7)?;
                }
                _ => {}
            }
        }
        links.push(Link { index, stats });
        Ok(())
    })?;
    Ok(links)
}

fn read_file(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(|e| Error::File {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })
}

fn read_u64(path: &Path) -> Result<u64> {
    let text = read_file(path)?;
    text.trim().parse().map_err(|_| Error::File {
        path: path.to_path_buf(),
        detail: format!("not a number: {:?}", text.trim()),
    })
}

/// The cgroup v2 mount point from `/proc/self/mounts` (`/sys/fs/cgroup` on
/// unified hosts, `/sys/fs/cgroup/unified` on hybrid ones).
fn cgroup2_root() -> Result<PathBuf> {
    let mounts = read_file(Path::new("/proc/self/mounts"))?;
    mounts
        .lines()
        .find_map(|line| {
            let mut f = line.split_whitespace();
            let (_, dir, fstype) = (f.next()?, f.next()?, f.next()?);
            (fstype == "cgroup2").then(|| PathBuf::from(dir))
        })
        .ok_or_else(|| Error::File {
            path: "/proc/self/mounts".into(),
            detail: "no cgroup2 file system mounted".into(),
        })
}

/// Reads `cpu.stat` and `memory.current` of a cgroup.
pub(crate) fn cgroup_stats(cgroup: &Path) -> Result<CgroupStats> {
    let dir = if cgroup.is_absolute() {
        cgroup.to_path_buf()
    } else {
        cgroup2_root()?.join(cgroup)
    };
    let cpu_path = dir.join("cpu.stat");
    let cpu = read_file(&cpu_path)?;
    let cpu_usage_usec = cpu
        .lines()
        .find_map(|l| l.strip_prefix("usage_usec "))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| Error::File {
            path: cpu_path,
            detail: "no usage_usec line".into(),
        })?;
    let mem_path = dir.join("memory.current");
    let memory_current = if mem_path.exists() {
        Some(read_u64(&mem_path)?)
    } else {
        None
    };
    Ok(CgroupStats {
        cpu_usage_usec,
        memory_current,
    })
}
