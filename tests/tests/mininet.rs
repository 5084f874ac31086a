//! The failover lab as a Mininet topology (`scripts/mininet/umbra_lab.py`)
//! with Umbra's software switch as its switch node, driven the way a user
//! drives it: the script brings Mininet up (`--no-cli`), two `umbra agent`s
//! serve the devices' namespaces, `umbra run` programs the switch over
//! P4Runtime from an `umbra.toml`, and real packets cross the lab: ping
//! and a TCP session through the primary, `umbra failover`, then ping
//! through the shadow (new ICMP flows for its firewall) and the same TCP
//! session still answering (its conntrack entry was replicated). SIGTERM
//! then takes the lab down, and nothing of it may be left.
//!
//! Needs root and Debian's `mininet` package (scripts/install-deps.sh);
//! fails loudly without them. The lab's names are fixed (namespaces
//! `client`, `server`, `primary`, `shadow`; links `s1-eth1`..`s1-eth8`),
//! so the script refuses to start beside another copy of itself.

use std::fs::{self, File};
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;
use umbra_tests::process::{self, Finished};
use umbra_tests::workspace;

/// The lab's network namespaces, as linked under /var/run/netns.
const NAMESPACES: [&str; 4] = ["client", "server", "primary", "shadow"];
/// The server's address (the script's SERVER_ADDR).
const SERVER_ADDR: &str = "198.18.1.1";
/// The TCP port of the echo server in `server`.
const ECHO_PORT: u16 = 5001;
/// Where the script records a running lab (removed on a clean stop).
const STATE_FILE: &str = "/run/umbra-mininet/lab.json";
/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(100);

#[test]
fn mininet_lab_forwards_through_primary_then_shadow_and_leaves_nothing() -> Result<()> {
    let started = Instant::now();
    require_root();
    require_mininet()?;
    let umbra = workspace::umbra_binary()?;
    let dir = tempfile::tempdir()?;
    let [grpc, management, primary_agent, shadow_agent] = free_local_ports()?;
    let info_path = dir.path().join("lab.json");

    // The lab: Mininet with `umbra switch` as s1.
    let script = workspace::workspace_root().join("scripts/mininet/umbra_lab.py");
    let mut command = Command::new("python3");
    command
        .arg(&script)
        .args(["--switch", "umbra", "--no-cli", "--info"])
        .arg(&info_path)
        .arg("--umbra")
        .arg(&umbra)
        .arg("--grpc-port")
        .arg(grpc.port().to_string())
        .arg("--log-dir")
        .arg(dir.path());
    let lab_started = Instant::now();
    let mut lab = Running::spawn("umbra_lab.py", &mut command, Duration::from_secs(30))?;
    wait_until("the lab's --info file", Duration::from_secs(90), || {
        lab.check_running()?;
        Ok(info_path.is_file())
    })
    .with_context(|| lab.log())?;
    let lab_up = lab_started.elapsed();
    let info: Value = serde_json::from_str(&fs::read_to_string(&info_path)?)?;
    check_info(&info, grpc).with_context(|| format!("--info: {info:#}"))?;
    let switch_pid = info["switch"]["pid"]
        .as_u64()
        .context("--info has no switch pid")?;
    let switch_log = PathBuf::from(info["switch"]["log"].as_str().unwrap_or_default());
    for name in NAMESPACES {
        let link = Path::new("/var/run/netns").join(name);
        ensure!(
            fs::symlink_metadata(&link).is_ok(),
            "{} is missing while the lab runs",
            link.display()
        );
    }

    // The device agents, on loopback, serving the Mininet hosts'
    // namespaces through their /var/run/netns links.
    let mut agents = Vec::new();
    for (name, address, node_id) in [
        ("primary", primary_agent, "1"),
        ("shadow", shadow_agent, "2"),
    ] {
        let mut command = Command::new(&umbra);
        command
            .args(["agent", "--netns", name, "--listen"])
            .arg(address.to_string())
            .args(["--allow-unauthenticated", "--node-id", node_id]);
        agents.push(Running::spawn(
            "umbra agent",
            &mut command,
            Duration::from_secs(5),
        )?);
    }
    for (agent, address) in agents.iter_mut().zip([primary_agent, shadow_agent]) {
        wait_until("an agent listening", Duration::from_secs(30), || {
            agent.check_running()?;
            Ok(TcpStream::connect_timeout(&address, POLL).is_ok())
        })?;
    }

    // The host daemon, programming s1 as host/config/examples/mininet.toml
    // programs bmv2 (Umbra's switch: device id 1, no device config).
    let config = dir.path().join("umbra.toml");
    fs::write(
        &config,
        daemon_config(grpc, management, primary_agent, shadow_agent),
    )?;
    let mut command = Command::new(&umbra);
    command
        .arg("run")
        .arg("--config")
        .arg(&config)
        .current_dir(dir.path());
    let mut daemon = Running::spawn("umbra run", &mut command, Duration::from_secs(10))?;
    let diagnostics = |daemon: &Running, agents: &[Running], lab: &Running| {
        let mut text = format!("{}\n{}", daemon.log(), lab.log());
        for agent in agents {
            text.push_str(&format!("\n{}", agent.log()));
        }
        text.push_str(&format!(
            "\n--- switch log ---\n{}",
            fs::read_to_string(&switch_log).unwrap_or_default()
        ));
        text
    };
    wait_until(
        "the daemon steering pair web through the primary",
        Duration::from_secs(60),
        || {
            daemon.check_running()?;
            lab.check_running()?;
            for agent in &mut agents {
                agent.check_running()?;
            }
            pair_is(&umbra, management, "primary")
        },
    )
    .with_context(|| diagnostics(&daemon, &agents, &lab))?;

    // Through the primary: ping, and a TCP session.
    ping_through("primary", "shadow", &|| diagnostics(&daemon, &agents, &lab))?;
    let flipped = dir.path().join("flipped");
    let mut echo_server = Running::spawn(
        "TCP echo server",
        in_netns("server", "python3")
            .arg("-c")
            .arg(ECHO_SERVER)
            .arg(SERVER_ADDR)
            .arg(ECHO_PORT.to_string()),
        Duration::from_secs(2),
    )?;
    let mut session = None;
    // The server needs a moment to listen; a refused connect is retried.
    wait_until(
        "a TCP session from client to server",
        Duration::from_secs(20),
        || {
            echo_server.check_running()?;
            let mut client = Running::spawn(
                "TCP client",
                in_netns("client", "python3")
                    .arg("-c")
                    .arg(SESSION_CLIENT)
                    .arg(SERVER_ADDR)
                    .arg(ECHO_PORT.to_string())
                    .arg(&flipped),
                Duration::from_secs(2),
            )?;
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if client.log().contains("echoed before") {
                    session = Some(client);
                    return Ok(true);
                }
                if client.exited()?.is_some() {
                    break;
                }
                thread::sleep(POLL);
            }
            Ok(false)
        },
    )
    .with_context(|| format!("{}\n{}", echo_server.log(), lab.log()))?;
    let session = session.expect("set when the wait succeeds");

    // The failover: traffic flows while the daemon verifies the shadow
    // (counters both ways), and the flip is what ping sees of it.
    let flip_ping = Running::spawn(
        "ping during the failover",
        in_netns("client", "ping").args(["-c", "100", "-i", "0.05", "-W", "1", SERVER_ADDR]),
        Duration::from_secs(2),
    )?;
    thread::sleep(Duration::from_millis(500));
    let flip_started = Instant::now();
    let failover = process::run(
        Command::new(&umbra)
            .args(["failover", "web", "--reason", "mininet test", "--addr"])
            .arg(format!("http://{management}")),
        Duration::from_secs(20),
    )?;
    assert!(
        failover.status.success(),
        "umbra failover failed:\n{}",
        failover.transcript()
    );
    wait_until(
        "the daemon steering pair web through the shadow",
        Duration::from_secs(30),
        || {
            daemon.check_running()?;
            pair_is(&umbra, management, "shadow")
        },
    )
    .with_context(|| diagnostics(&daemon, &agents, &lab))?;
    let flip_took = flip_started.elapsed();
    let flip_ping = flip_ping.wait(Duration::from_secs(30))?;
    let (flip_sent, flip_received) = ping_counts(&flip_ping)?;

    // Through the shadow: new ICMP flows, and the old TCP session.
    ping_through("shadow", "primary", &|| diagnostics(&daemon, &agents, &lab))?;
    File::create(&flipped)?;
    let session = session.wait(Duration::from_secs(20))?;
    assert!(
        session.status.success() && session.stdout.contains("echoed after"),
        "the TCP session opened through the primary did not survive the failover \
         (its conntrack entry should have been replicated to the shadow):\n{}",
        session.transcript()
    );
    drop(echo_server);

    // Down: the daemon and agents first (they hold the namespaces open),
    // then SIGTERM to the lab, which must remove everything it made.
    let daemon_status = daemon.stop()?;
    assert!(
        daemon_status.success(),
        "umbra run exited with {daemon_status}:\n{}",
        daemon.log()
    );
    for mut agent in agents {
        agent.stop()?;
    }
    let stop_started = Instant::now();
    let lab_status = lab.stop()?;
    let teardown = stop_started.elapsed();
    let lab_log = lab.log();
    assert!(
        lab_status.success(),
        "umbra_lab.py exited with {lab_status}:\n{lab_log}"
    );
    for name in NAMESPACES {
        let link = Path::new("/var/run/netns").join(name);
        assert!(
            fs::symlink_metadata(&link).is_err(),
            "{} is left after the lab stopped:\n{lab_log}",
            link.display()
        );
    }
    let links: Vec<String> = fs::read_dir("/sys/class/net")?
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("s1-eth"))
        .collect();
    assert!(
        links.is_empty(),
        "links left after the lab stopped: {links:?}\n{lab_log}"
    );
    assert!(
        !Path::new(&format!("/proc/{switch_pid}")).exists(),
        "umbra switch (pid {switch_pid}) still runs after the lab stopped"
    );
    assert!(
        !Path::new(STATE_FILE).exists(),
        "{STATE_FILE} is left after a clean stop"
    );
    assert!(
        !info_path.exists(),
        "the --info file is left after a clean stop"
    );

    eprintln!(
        "mininet: lab up in {lab_up:.1?}; 20/20 pings through the primary, then \
         20/20 through the shadow; failover of web settled (shadow active, phase \
         normal) {flip_took:.1?} after `umbra failover`, ping during it \
         {flip_received}/{flip_sent}; TCP session survived; teardown {teardown:.1?}; \
         total {:.1?}",
        started.elapsed()
    );
    Ok(())
}

/// Echoes every line of one TCP connection (argv: address, port).
const ECHO_SERVER: &str = "
import socket, sys
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind((sys.argv[1], int(sys.argv[2])))
listener.listen(4)
listener.settimeout(60)
while True:
    conn, _ = listener.accept()
    conn.settimeout(60)
    stream = conn.makefile('rwb')
    for line in stream:
        stream.write(line)
        stream.flush()
    conn.close()
";

/// One TCP session (argv: address, port, marker file): a line echoed now,
/// then, once the marker file exists, another on the same connection.
const SESSION_CLIENT: &str = "
import os, socket, sys, time
conn = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)
conn.settimeout(10)
stream = conn.makefile('rwb')
for word, wait_for in ((b'before', None), (b'after', sys.argv[3])):
    deadline = time.monotonic() + 60
    while wait_for and not os.path.exists(wait_for):
        if time.monotonic() > deadline:
            sys.exit('no marker file')
        time.sleep(0.05)
    stream.write(word + b'\\n')
    stream.flush()
    answer = stream.readline()
    if answer != word + b'\\n':
        sys.exit('sent %r, got %r' % (word, answer))
    print('echoed', word.decode(), flush=True)
";

/// The daemon's configuration for the lab (the example's layout: ports
/// 1..=8 as the script numbers them).
fn daemon_config(
    grpc: SocketAddr,
    management: SocketAddr,
    primary_agent: SocketAddr,
    shadow_agent: SocketAddr,
) -> String {
    format!(
        r#"[host]
name = "mininet-test"
election-id = 10

[management]
listen = "{management}"

[[switch]]
name = "s1"
address = "{grpc}"
device-id = 1

[[pair]]
name = "web"
switch = "s1"
service = 1
client-port = 1
server-port = 2
primary = {{ device = 1, client-leg = 3, server-leg = 4, monitor = 8, agent = "{primary_agent}" }}
shadow = {{ device = 2, client-leg = 5, server-leg = 6, monitor = 7, agent = "{shadow_agent}" }}
sampling = {{ mode = "flow", one-in = 50, truncate-bytes = 128 }}
"#
    )
}

/// The script's description names the switch's address and the port map
/// of host/lab/src/failover_lab.rs.
fn check_info(info: &Value, grpc: SocketAddr) -> Result<()> {
    ensure!(info["switch"]["kind"] == "umbra", "switch kind");
    ensure!(
        info["switch"]["grpc"] == grpc.to_string().as_str(),
        "gRPC address"
    );
    ensure!(info["switch"]["device_id"] == 1, "device id");
    ensure!(info["switch"]["cpu_port"] == 255, "CPU port");
    let expected = [
        (1, "client", "client-eth0"),
        (2, "server", "server-eth0"),
        (3, "primary", "legc"),
        (4, "primary", "legs"),
        (5, "shadow", "legc"),
        (6, "shadow", "legs"),
        (7, "shadow", "mon0"),
        (8, "primary", "mon0"),
    ];
    let ports = info["ports"].as_array().context("no ports")?;
    ensure!(ports.len() == expected.len(), "{} ports", ports.len());
    for (port, (number, node, interface)) in ports.iter().zip(expected) {
        ensure!(
            port["port"] == number
                && port["switch_interface"] == format!("s1-eth{number}").as_str()
                && port["node"] == node
                && port["interface"] == interface,
            "port {number}: {port}"
        );
    }
    for name in NAMESPACES {
        ensure!(
            info["namespaces"][name] == format!("/var/run/netns/{name}").as_str(),
            "namespace {name}"
        );
    }
    Ok(())
}

/// Whether `umbra status` shows pair `web` settled (phase normal, this
/// host the P4Runtime primary) with `active` carrying its traffic.
fn pair_is(umbra: &Path, management: SocketAddr, active: &str) -> Result<bool> {
    let status = process::run(
        Command::new(umbra)
            .args(["status", "--json", "--addr"])
            .arg(format!("http://{management}")),
        Duration::from_secs(10),
    )?;
    if !status.status.success() {
        // Not listening yet.
        return Ok(false);
    }
    let status: Value = serde_json::from_str(&status.stdout)
        .with_context(|| format!("umbra status --json:\n{}", status.transcript()))?;
    let pair = &status["pairs"][0];
    Ok(pair["name"] == "web"
        && pair["phase"] == "normal"
        && pair["p4runtime_primary"] == true
        && pair["active_device"] == active)
}

/// Pings the server 20 times from the client: every echo answered, every
/// request through `through`'s client leg and none through `other`'s.
fn ping_through(through: &str, other: &str, diagnostics: &dyn Fn() -> String) -> Result<()> {
    let through_before = rx_packets(through, "legc")?;
    let other_before = rx_packets(other, "legc")?;
    let (sent, received) = ping(20)?;
    let through_count = rx_packets(through, "legc")? - through_before;
    let other_count = rx_packets(other, "legc")? - other_before;
    assert_eq!(
        (sent, received),
        (20, 20),
        "ping through the {through} lost packets\n{}",
        diagnostics()
    );
    assert!(
        through_count >= 20 && other_count == 0,
        "the echo requests did not all go through the {through}: its client leg \
         received {through_count} packets, the {other}'s {other_count}"
    );
    Ok(())
}

/// `ping -c COUNT -i 0.05` from client to server: (sent, received).
fn ping(count: u32) -> Result<(u32, u32)> {
    let finished = process::run(
        in_netns("client", "ping").args([
            "-c",
            &count.to_string(),
            "-i",
            "0.05",
            "-W",
            "1",
            SERVER_ADDR,
        ]),
        Duration::from_secs(30),
    )?;
    ping_counts(&finished)
}

/// ping's summary: "N packets transmitted, M received, ...".
fn ping_counts(finished: &Finished) -> Result<(u32, u32)> {
    let line = finished
        .stdout
        .lines()
        .find(|line| line.contains("packets transmitted"))
        .with_context(|| format!("no ping summary:\n{}", finished.transcript()))?;
    let numbers: Vec<u32> = line
        .split(',')
        .take(2)
        .filter_map(|part| part.split_whitespace().next()?.parse().ok())
        .collect();
    match numbers[..] {
        [sent, received] => Ok((sent, received)),
        _ => bail!("cannot read ping's summary {line:?}"),
    }
}

/// Packets `ifname` in namespace `netns` has received.
fn rx_packets(netns: &str, ifname: &str) -> Result<u64> {
    let finished = process::run(
        in_netns(netns, "cat").arg(format!("/sys/class/net/{ifname}/statistics/rx_packets")),
        Duration::from_secs(10),
    )?;
    ensure!(finished.status.success(), "{}", finished.transcript());
    Ok(finished.stdout.trim().parse()?)
}

/// `ip netns exec NETNS PROGRAM`.
fn in_netns(netns: &str, program: &str) -> Command {
    let mut command = Command::new("ip");
    command.args(["netns", "exec", netns, program]);
    command
}

/// Loopback addresses with distinct ports that were free a moment ago
/// (all bound at once: one after the other, the kernel may hand out the
/// same port twice).
fn free_local_ports<const N: usize>() -> Result<[SocketAddr; N]> {
    let listeners = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()?;
    let addresses = listeners
        .iter()
        .map(TcpListener::local_addr)
        .collect::<std::io::Result<Vec<_>>>()?;
    Ok(addresses.try_into().expect("N addresses"))
}

/// Polls `ready` until it says yes, for at most `timeout`.
fn wait_until(
    what: &str,
    timeout: Duration,
    mut ready: impl FnMut() -> Result<bool>,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if ready().with_context(|| format!("waiting for {what}"))? {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("no {what} after {timeout:?}");
        }
        thread::sleep(POLL);
    }
}

/// Fails loudly unless we are root: a skipped network test would pass
/// without proving anything.
fn require_root() {
    let status = fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let euid = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|line| line.split_whitespace().nth(1))
        .expect("a Uid line");
    assert_eq!(
        euid, "0",
        "the Mininet lab test creates network namespaces and links and needs root \
         (CI runs it as root)"
    );
}

/// Debian's `mininet` package, for Debian's python3 (the script re-executes
/// itself with it).
fn require_mininet() -> Result<()> {
    let probe = process::run(
        Command::new("/usr/bin/python3").args(["-c", "import mininet.net"]),
        Duration::from_secs(30),
    );
    match probe {
        Ok(finished) if finished.status.success() => Ok(()),
        Ok(finished) => bail!(
            "Mininet is not installed: run scripts/install-deps.sh as root \
             (apt-get install --no-install-recommends mininet)\n{}",
            finished.transcript()
        ),
        Err(error) => Err(error.context("running /usr/bin/python3 (Debian's python3)")),
    }
}

/// A long-running child (stdin closed; stdout and stderr to a temporary
/// file), stopped with SIGTERM, then SIGKILL after `grace`, on drop.
struct Running {
    what: &'static str,
    child: Child,
    output: tempfile::NamedTempFile,
    grace: Duration,
}

impl Running {
    fn spawn(what: &'static str, command: &mut Command, grace: Duration) -> Result<Self> {
        let output = tempfile::Builder::new()
            .prefix("umbra-mininet-test-")
            .tempfile()?;
        let child = command
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::from(output.reopen()?))
            .stderr(Stdio::from(output.reopen()?))
            .spawn()
            .with_context(|| format!("starting {command:?}"))?;
        Ok(Self {
            what,
            child,
            output,
            grace,
        })
    }

    /// Everything it printed so far, labelled.
    fn log(&self) -> String {
        let mut text = String::new();
        let _ = File::open(self.output.path()).and_then(|mut f| f.read_to_string(&mut text));
        format!("--- {} (pid {}) ---\n{text}", self.what, self.child.id())
    }

    fn exited(&mut self) -> Result<Option<ExitStatus>> {
        Ok(self.child.try_wait()?)
    }

    /// Fails if it has exited.
    fn check_running(&mut self) -> Result<()> {
        if let Some(status) = self.exited()? {
            bail!("{} exited ({status})\n{}", self.what, self.log());
        }
        Ok(())
    }

    /// Waits for it to exit by itself, at most `timeout` (then it is
    /// stopped and this fails).
    fn wait(mut self, timeout: Duration) -> Result<Finished> {
        let started = Instant::now();
        while started.elapsed() < timeout {
            if let Some(status) = self.exited()? {
                let mut stdout = String::new();
                File::open(self.output.path())?.read_to_string(&mut stdout)?;
                return Ok(Finished {
                    status,
                    stdout,
                    stderr: String::new(),
                    elapsed: started.elapsed(),
                });
            }
            thread::sleep(POLL);
        }
        bail!(
            "{} did not finish within {timeout:?}\n{}",
            self.what,
            self.log()
        )
    }

    /// SIGTERM, then SIGKILL after the grace period; its exit status.
    fn stop(&mut self) -> Result<ExitStatus> {
        if let Some(status) = self.exited()? {
            return Ok(status);
        }
        // Our own child, by its pid.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + self.grace;
        while Instant::now() < deadline {
            if let Some(status) = self.exited()? {
                return Ok(status);
            }
            thread::sleep(POLL);
        }
        self.child.kill()?;
        Ok(self.child.wait()?)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Err(error) = self.stop() {
            eprintln!(
                "cannot stop {} (pid {}): {error:#}",
                self.what,
                self.child.id()
            );
        }
    }
}
