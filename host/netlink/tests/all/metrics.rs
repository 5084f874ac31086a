//! Namespace metrics against `ip -s`, the conntrack sysctls and cgroup files.

use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use umbra_netlink::{ConntrackEntry, ConntrackTuple, L4Tuple};

use crate::lab::{Lab, run, run_in};

#[test]
fn interface_counters_and_conntrack_fill_match_the_kernel() {
    let mut lab = Lab::new();
    let a = lab.ns("m-a");
    let b = lab.ns("m-b");
    lab.link(&a, "v0", "198.18.40.1/24", &b, "v1", "198.18.40.2/24");
    let (na, nb) = (lab.handle(&a), lab.handle(&b));

    let rx = nb
        .run(|| UdpSocket::bind("198.18.40.2:9999"))
        .unwrap()
        .unwrap();
    let tx = na
        .run(|| UdpSocket::bind("198.18.40.1:0"))
        .unwrap()
        .unwrap();
    for _ in 0..50 {
        tx.send_to(&[0u8; 100], "198.18.40.2:9999").unwrap();
    }
    rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 200];
    for _ in 0..50 {
        rx.recv_from(&mut buf).unwrap();
    }

    for i in 0..7u16 {
        let t = ConntrackTuple {
            src: "198.18.41.1".parse().unwrap(),
            dst: "198.18.41.2".parse().unwrap(),
            protocol: 17,
            l4: L4Tuple::Ports {
                src: 2000 + i,
                dst: 53,
            },
        };
        na.conntrack().create(&ConntrackEntry::new(t, 60)).unwrap();
    }

    let ma = na.metrics(None).unwrap();
    let mb = nb.metrics(None).unwrap();
    let v0 = ma.interfaces.iter().find(|i| i.name == "v0").expect("v0");
    let v1 = mb.interfaces.iter().find(|i| i.name == "v1").expect("v1");
    assert!(v0.tx_packets >= 50 && v0.tx_bytes >= 50 * 128, "{v0:?}");
    assert!(v1.rx_packets >= 50 && v1.rx_bytes >= 50 * 128, "{v1:?}");
    assert!(ma.interfaces.iter().any(|i| i.name == "lo"));
    assert!(
        !ma.interfaces.iter().any(|i| i.name == "v1"),
        "only A's interfaces"
    );

    // The same counters as `ip -s` reports (no traffic in between: IPv6 is off).
    let out = run(&["ip", "-n", &a, "-j", "-s", "link", "show", "v0"]);
    let link: Vec<Value> = serde_json::from_str(&out).unwrap();
    let stats = &link[0]["stats64"];
    assert_eq!(stats["tx"]["packets"].as_u64(), Some(v0.tx_packets));
    assert_eq!(stats["tx"]["bytes"].as_u64(), Some(v0.tx_bytes));
    assert_eq!(stats["rx"]["packets"].as_u64(), Some(v0.rx_packets));
    assert_eq!(stats["rx"]["dropped"].as_u64(), Some(v0.rx_dropped));

    assert_eq!(ma.conntrack_count, 7);
    assert_eq!(mb.conntrack_count, 0);
    let max: u64 = run_in(&a, &["cat", "/proc/sys/net/netfilter/nf_conntrack_max"])
        .trim()
        .parse()
        .unwrap();
    assert_eq!(ma.conntrack_max, max);
    assert!(ma.cgroup.is_none());
}

/// A cgroup v2 directory removed on drop.
struct Cgroup(PathBuf);

impl Drop for Cgroup {
    fn drop(&mut self) {
        for _ in 0..50 {
            if std::fs::remove_dir(&self.0).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn cgroup2_root() -> PathBuf {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    mounts
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[2] == "cgroup2").then(|| PathBuf::from(f[1]))
        })
        .expect("a cgroup2 mount (CI has one)")
}

#[test]
fn cgroup_cpu_usage_grows_with_work_in_it() {
    let mut lab = Lab::new();
    let a = lab.ns("m-cg");
    let ns = lab.handle(&a);
    let root = cgroup2_root();
    let name = format!("{a}-cg");
    let cg = Cgroup(root.join(&name));
    std::fs::create_dir(&cg.0).unwrap();

    let before = ns.metrics(Some(name.as_ref())).unwrap().cgroup.unwrap();
    assert_eq!(before.cpu_usage_usec, 0);
    // A shell that moves itself into the cgroup and spins for 0.3 s.
    let procs = cg.0.join("cgroup.procs");
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "echo $$ > {} && end=$(($(date +%s%N) + 300000000)); while [ $(date +%s%N) -lt $end ]; do :; done",
            procs.display()
        ))
        .status()
        .unwrap();
    assert!(status.success());
    let after = ns.metrics(Some(&cg.0)).unwrap().cgroup.unwrap();
    assert!(after.cpu_usage_usec > 10_000, "{after:?}");
    let file = std::fs::read_to_string(cg.0.join("cpu.stat")).unwrap();
    assert!(file.contains(&format!("usage_usec {}", after.cpu_usage_usec)));
    assert_eq!(
        after.memory_current.is_some(),
        cg.0.join("memory.current").exists()
    );
}
