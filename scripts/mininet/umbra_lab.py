#!/usr/bin/python3
"""Umbra's failover lab (DESIGN.md, "The lab") as a Mininet topology.

    client ── s1 ──┬── primary (client leg, server leg, monitor leg)
    server ──┘     └── shadow  (client leg, server leg, monitor leg)

One P4 switch `s1` between the hosts `client` and `server` and two
forwarding devices, `primary` and `shadow`, that carry the same addresses
and MAC addresses on their legs: the switch steers the service through one
of them (umbra.p4's `service_selector`), so a failover is one table write
and the hosts' ARP entries stay valid. Each device is a Linux router with a
stateful nftables firewall and `nf_conntrack_tcp_loose=0`, the ruleset of
host/lab/src/failover_lab.rs.

The switch node runs umbra.p4 on either Umbra's software switch
(`--switch umbra`: `umbra switch`) or bmv2 (`--switch bmv2`:
`simple_switch_grpc`, fed umbra.p4 compiled by p4c when the host pushes the
pipeline). There is no OpenFlow controller and no Open vSwitch: the switch
is programmed over P4Runtime, by `umbra run` (host/config/examples/
mininet.toml) or any P4Runtime client.

The P4 port numbers are the failover lab's (host/lab/src/failover_lab.rs
`port`), and Mininet's switch interface `s1-ethN` is P4 port N.

Each Mininet host's network namespace is linked as /var/run/netns/NAME, so
`ip netns exec primary ...` and `umbra agent --netns primary` work. The lab
drops into the Mininet CLI, or with --no-cli writes a JSON description
(--info FILE) and runs until SIGTERM or SIGINT. Either way it stops the
switch, Mininet's nodes and links, and removes the namespace links.

Addresses are 198.18.0.0/15 only (reserved for benchmarking) and exist
only inside the lab's namespaces. Run as root, with Debian's python3 (the
`mininet` package); another python3 re-executes this file with it.
"""

import os
import sys

DEBIAN_PYTHON = "/usr/bin/python3"

try:
    import mininet  # noqa: F401  (only probing for Debian's package)
except ImportError:
    # A python3 from pyenv or a venv earlier on PATH does not see the
    # packages of Debian's python3; run this file with that one instead.
    if os.path.exists(DEBIAN_PYTHON) and os.environ.get("UMBRA_MININET_REEXEC") != "1":
        os.environ["UMBRA_MININET_REEXEC"] = "1"
        os.execv(DEBIAN_PYTHON, [DEBIAN_PYTHON] + sys.argv)
    sys.exit(
        "umbra_lab.py: the `mininet` Python package is missing; install it with "
        "`apt-get install -y --no-install-recommends mininet` (or run "
        "scripts/install-deps.sh as root)"
    )

import argparse
import functools
import json
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from mininet.cli import CLI
from mininet.log import info, setLogLevel
from mininet.net import Mininet
from mininet.node import Host, Switch
from mininet.topo import Topo

# Addresses and MAC addresses of the lab (host/lab/src/failover_lab.rs).
CLIENT_ADDR = "198.18.0.1"
SERVER_ADDR = "198.18.1.1"
CLIENT_GATEWAY = "198.18.0.254"
SERVER_GATEWAY = "198.18.1.254"
PREFIX_LEN = 24
CLIENT_LEG_MAC = "02:00:5e:12:00:fe"
SERVER_LEG_MAC = "02:00:5e:12:01:fe"

SWITCH = "s1"
HOSTS = ("client", "server")
DEVICES = ("primary", "shadow")

# The devices' interfaces: the same names on both, as in
# host/lab/src/failover_lab.rs. Not Mininet's `primary-eth0` style: the
# agents replicate the primary's nftables tables to the shadow, and a
# firewall naming `primary-legc` would match nothing there (the shadow
# would drop every new flow after a failover).
CLIENT_LEG, SERVER_LEG, MONITOR = "legc", "legs", "mon0"

# P4 port number -> (node, the node's interface, role). The switch's end
# of each link is `s1-eth<port>`.
PORTS = {
    1: ("client", "client-eth0", "client"),
    2: ("server", "server-eth0", "server"),
    3: ("primary", CLIENT_LEG, "primary client leg"),
    4: ("primary", SERVER_LEG, "primary server leg"),
    5: ("shadow", CLIENT_LEG, "shadow client leg"),
    6: ("shadow", SERVER_LEG, "shadow server leg"),
    7: ("shadow", MONITOR, "shadow monitor"),
    8: ("primary", MONITOR, "primary monitor"),
}

CPU_PORT = 255

# The devices' stateful firewall, host/lab/src/failover_lab.rs FIREWALL:
# replies and related traffic pass, new connections only from the client
# side to the server side; anything else, including mid-stream TCP the
# device has no conntrack entry for, is dropped.
FIREWALL = """table inet fw {
    chain forward {
        type filter hook forward priority 0; policy drop;
        ct state established,related accept
        iifname "%s" oifname "%s" ct state new accept
    }
}""" % (CLIENT_LEG, SERVER_LEG)

NETNS_DIR = "/var/run/netns"
STATE_DIR = "/run/umbra-mininet"
STATE_FILE = os.path.join(STATE_DIR, "lab.json")

# How long a switch may take to listen on its gRPC address.
SWITCH_START_TIMEOUT = 30.0


class LabError(Exception):
    """The lab cannot be built or run; the message says why."""


class Stop(Exception):
    """SIGTERM or SIGINT arrived: tear the lab down."""


def run(args, what=None):
    """Runs a command in this (the root) namespace; fails with its stderr."""
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise LabError(
            "%s failed (exit %d): %s"
            % (what or " ".join(args), done.returncode, done.stderr.strip())
        )
    return done.stdout


def node_run(node, args):
    """Runs a command in a Mininet node's namespace; fails with its stderr.
    (`node.cmd` would swallow a failure.)"""
    out, err, code = node.pexec(args)
    if code != 0:
        raise LabError(
            "%s: `%s` failed (exit %d): %s" % (node.name, " ".join(args), code, err.strip())
        )
    return out


def wire_like(run_in, ifname):
    """IPv6 off (no router solicitation or DAD frame on a lab port) and
    checksum/segmentation offloads off: the switch must see frames as a
    wire carries them, not GRO super-frames or partial checksums."""
    run_in(["sysctl", "-qw", "net.ipv6.conf.%s.disable_ipv6=1" % ifname])
    run_in(
        ["ethtool", "-K", ifname]
        + ["rx", "off", "tx", "off", "gro", "off", "gso", "off", "tso", "off"]
    )
    run_in(["ip", "link", "set", ifname, "up"])


class LabHost(Host):
    """A host of the lab: IPv6 off, every interface wire-like."""

    def config(self, **params):
        result = super().config(**params)
        run_in = functools.partial(node_run, self)
        run_in(
            [
                "sysctl",
                "-qw",
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            ]
        )
        for intf in self.intfList():
            if intf.name != "lo":
                wire_like(run_in, intf.name)
        return result


class FailoverDevice(LabHost):
    """A protected device: a router between the client and server legs
    (the same addresses and MAC addresses on primary and shadow), a
    monitor leg without an address for mirrored samples, and the stateful
    firewall."""

    def config(self, **params):
        result = super().config(**params)
        run_in = functools.partial(node_run, self)
        for leg, addr, mac in (
            (CLIENT_LEG, CLIENT_GATEWAY, CLIENT_LEG_MAC),
            (SERVER_LEG, SERVER_GATEWAY, SERVER_LEG_MAC),
        ):
            run_in(["ip", "link", "set", leg, "address", mac])
            run_in(["ip", "addr", "flush", "dev", leg])
            run_in(["ip", "addr", "add", "%s/%d" % (addr, PREFIX_LEN), "dev", leg])
        for sysctl in (
            "net.ipv4.ip_forward=1",
            # The monitor leg only receives samples.
            "net.ipv4.conf.all.rp_filter=0",
            "net.ipv4.conf.default.rp_filter=0",
        ):
            run_in(["sysctl", "-qw", sysctl])
        run_in(["nft", FIREWALL])
        # The ruleset's `ct` expressions loaded conntrack, which owns this
        # sysctl: unknown mid-stream TCP is invalid, not picked up.
        run_in(["sysctl", "-qw", "net.netfilter.nf_conntrack_tcp_loose=0"])
        return result


class P4Switch(Switch):
    """A P4 switch process in the root namespace on the interfaces
    `s1-ethN` (P4 port N), serving P4Runtime on `grpc`. No OpenFlow:
    Mininet's controller is not used. Subclasses say which program."""

    kind = None

    def __init__(self, name, grpc="127.0.0.1:9559", device_id=1, log_dir=None, **params):
        super().__init__(name, **params)
        self.grpc = grpc
        self.device_id = device_id
        self.log_path = os.path.join(log_dir or tempfile.gettempdir(), "%s.log" % name)
        self.process = None

    def p4_ports(self):
        """[(P4 port, interface name)] of the data ports (not `lo`)."""
        return sorted(
            (port, intf.name) for port, intf in self.intfs.items() if intf.name != "lo"
        )

    def command(self):
        raise NotImplementedError

    def start(self, controllers):
        del controllers  # P4Runtime, not OpenFlow
        for _, ifname in self.p4_ports():
            wire_like(run, ifname)
        argv = self.command()
        info("*** %s: %s\n" % (self.name, " ".join(argv)))
        with open(self.log_path, "ab") as log:
            try:
                self.process = subprocess.Popen(
                    argv,
                    env=dict(os.environ, NO_COLOR="1"),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    # Its own session: a Ctrl-C at the CLI is not its stop.
                    start_new_session=True,
                )
            except OSError as error:
                raise LabError("%s: cannot start %s: %s" % (self.name, argv[0], error))
        self.wait_listening()

    def wait_listening(self):
        host, port = self.grpc.rsplit(":", 1)
        deadline = time.monotonic() + SWITCH_START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise LabError(
                    "%s: %s exited (%s); its log, %s:\n%s"
                    % (self.name, self.kind, self.process.returncode, self.log_path, self.log())
                )
            try:
                with socket.create_connection((host, int(port)), timeout=0.2):
                    return
            except OSError:
                pass
            if time.monotonic() >= deadline:
                raise LabError(
                    "%s: %s does not listen on %s after %.0f s; its log, %s:\n%s"
                    % (
                        self.name,
                        self.kind,
                        self.grpc,
                        SWITCH_START_TIMEOUT,
                        self.log_path,
                        self.log(),
                    )
                )
            time.sleep(0.05)

    def log(self):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as log:
                return log.read()[-4000:]
        except OSError:
            return ""

    def running(self):
        return self.process is not None and self.process.poll() is None

    def stop_process(self):
        """SIGTERM, then SIGKILL after 5 s; our own child, by its pid."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

    def stop(self, deleteIntfs=True):  # noqa: N803  (Mininet's signature)
        self.stop_process()
        super().stop(deleteIntfs)


class UmbraSwitch(P4Switch):
    """Umbra's software switch: `umbra switch` runs umbra.p4 built in and
    accepts its P4Info (this repository's or p4c's)."""

    kind = "umbra switch"

    def __init__(self, name, umbra="umbra", **params):
        super().__init__(name, **params)
        self.umbra = umbra

    def command(self):
        argv = [
            self.umbra,
            "switch",
            "--grpc",
            self.grpc,
            "--device-id",
            str(self.device_id),
        ]
        for port, ifname in self.p4_ports():
            argv += ["--port", "%d=%s" % (port, ifname)]
        return argv + ["--cpu-port", str(CPU_PORT)]


class Bmv2Switch(P4Switch):
    """bmv2's `simple_switch_grpc`, started without a program (`--no-p4`):
    the P4Runtime client pushes umbra.p4's P4Info with p4c's bmv2 JSON as
    the device config. Written from simple_switch_grpc's documented
    command line; not run in Umbra's CI (bmv2 is not a Debian package)."""

    kind = "simple_switch_grpc"

    def __init__(self, name, simple_switch_grpc="simple_switch_grpc", **params):
        super().__init__(name, **params)
        self.binary = simple_switch_grpc

    def command(self):
        argv = [self.binary, "--device-id", str(self.device_id)]
        for port, ifname in self.p4_ports():
            argv += ["-i", "%d@%s" % (port, ifname)]
        return argv + [
            "--no-p4",
            "--",
            "--grpc-server-addr",
            self.grpc,
            "--cpu-port",
            str(CPU_PORT),
        ]


class FailoverLabTopo(Topo):
    """client, server, primary and shadow around the switch s1."""

    def build(self):
        switch = self.addSwitch(SWITCH)
        self.addHost(
            "client",
            cls=LabHost,
            ip="%s/%d" % (CLIENT_ADDR, PREFIX_LEN),
            defaultRoute="via %s" % CLIENT_GATEWAY,
        )
        self.addHost(
            "server",
            cls=LabHost,
            ip="%s/%d" % (SERVER_ADDR, PREFIX_LEN),
            defaultRoute="via %s" % SERVER_GATEWAY,
        )
        for device in DEVICES:
            # ip=None: the device sets its legs' addresses itself (Mininet
            # would otherwise hand its first interface one of its own).
            self.addHost(device, cls=FailoverDevice, ip=None)
        for port in sorted(PORTS):
            node, ifname, _ = PORTS[port]
            self.addLink(
                switch,
                node,
                port1=port,
                intfName1="%s-eth%d" % (SWITCH, port),
                intfName2=ifname,
            )


def switch_ifnames():
    return ["%s-eth%d" % (SWITCH, port) for port in sorted(PORTS)]


def link_exists(ifname):
    return os.path.exists("/sys/class/net/%s" % ifname)


def pid_runs(pid, needle):
    """Whether process `pid` is alive and its command line contains
    `needle` (so a recycled pid is never taken for ours)."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as cmdline:
            return needle.encode() in cmdline.read()
    except (OSError, ValueError, TypeError):
        return False


class LabState:
    """What a running lab holds, in STATE_FILE, so that a lab whose
    process was killed (SIGKILL: no teardown ran) is recognised and its
    leftovers (node shells, switch process, links, namespace links) are
    removed by the next run, and a live one is not disturbed."""

    def __init__(self):
        self.data = {
            "pid": os.getpid(),
            "shells": {},
            "switch_pid": None,
            "switch_binary": None,
            "links": switch_ifnames(),
            "netns": [],
        }

    def save(self):
        os.makedirs(STATE_DIR, exist_ok=True)
        write_atomically(STATE_FILE, json.dumps(self.data, indent=2) + "\n")

    def remove(self):
        try:
            os.unlink(STATE_FILE)
        except FileNotFoundError:
            pass


def write_atomically(path, text):
    tmp = "%s.tmp-%d" % (path, os.getpid())
    with open(tmp, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(tmp, path)


def sweep_stale_lab():
    """Removes what a killed lab left behind, or fails if a lab runs."""
    try:
        with open(STATE_FILE, encoding="utf-8") as state_file:
            stale = json.load(state_file)
    except FileNotFoundError:
        return
    except (OSError, ValueError):
        stale = {}
    pid = stale.get("pid")
    if isinstance(pid, int) and pid != os.getpid() and pid_runs(pid, "umbra_lab.py"):
        raise LabError(
            "another Umbra Mininet lab runs (pid %d, %s); stop it first" % (pid, STATE_FILE)
        )
    info("*** Removing the leftovers of a lab whose process is gone (pid %s)\n" % pid)
    for name, shell in stale.get("shells", {}).items():
        if pid_runs(shell, "mininet:%s" % name):
            os.kill(shell, signal.SIGKILL)
    switch_pid, binary = stale.get("switch_pid"), stale.get("switch_binary")
    if switch_pid and binary and pid_runs(switch_pid, os.path.basename(binary)):
        os.kill(switch_pid, signal.SIGKILL)
    for ifname in stale.get("links", []):
        if link_exists(ifname):
            subprocess.run(["ip", "link", "del", ifname], check=False)
    for name in stale.get("netns", []):
        unlink_netns(name)
    os.unlink(STATE_FILE)


def check_free():
    """Refuses to touch namespaces or links this lab did not create."""
    taken = []
    for name in HOSTS + DEVICES:
        path = os.path.join(NETNS_DIR, name)
        if os.path.lexists(path):
            taken.append(path)
    taken += ["link %s" % ifname for ifname in switch_ifnames() if link_exists(ifname)]
    if taken:
        raise LabError(
            "already present, and not left by an earlier run of this lab: %s "
            "(another Mininet or `ip netns` lab? remove them first)" % ", ".join(taken)
        )


def link_netns(node):
    """/var/run/netns/NAME -> the node shell's namespace, for `ip netns`."""
    os.makedirs(NETNS_DIR, exist_ok=True)
    os.symlink("/proc/%d/ns/net" % node.pid, os.path.join(NETNS_DIR, node.name))


def unlink_netns(name):
    """Removes /var/run/netns/NAME if it is a link (never a namespace that
    `ip netns add` made: that is a file with a mount on it)."""
    path = os.path.join(NETNS_DIR, name)
    if os.path.islink(path):
        os.unlink(path)


def describe(net, args, log_dir):
    """The lab, as --info writes it and the banner prints it."""
    switch = net.get(SWITCH)
    ports = []
    for port in sorted(PORTS):
        node, ifname, role = PORTS[port]
        ports.append(
            {
                "port": port,
                "switch_interface": "%s-eth%d" % (SWITCH, port),
                "node": node,
                "interface": ifname,
                "role": role,
            }
        )
    return {
        "pid": os.getpid(),
        "switch": {
            "name": SWITCH,
            "kind": args.switch,
            "grpc": switch.grpc,
            "device_id": switch.device_id,
            "cpu_port": CPU_PORT,
            "pid": switch.process.pid,
            "log": switch.log_path,
        },
        "ports": ports,
        "namespaces": {name: os.path.join(NETNS_DIR, name) for name in HOSTS + DEVICES},
        "addresses": {
            "client": "%s/%d" % (CLIENT_ADDR, PREFIX_LEN),
            "server": "%s/%d" % (SERVER_ADDR, PREFIX_LEN),
            "client_gateway": CLIENT_GATEWAY,
            "server_gateway": SERVER_GATEWAY,
            "client_leg_mac": CLIENT_LEG_MAC,
            "server_leg_mac": SERVER_LEG_MAC,
        },
        "log_dir": log_dir,
    }


def banner(description):
    sw = description["switch"]
    lines = [
        "*** Umbra failover lab: %s `%s` on %s (device id %d, CPU port %d), log %s"
        % (sw["name"], sw["kind"], sw["grpc"], sw["device_id"], sw["cpu_port"], sw["log"]),
    ]
    for p in description["ports"]:
        lines.append(
            "    port %d  %-8s %-12s %s"
            % (p["port"], p["switch_interface"], p["interface"], p["role"])
        )
    a = description["addresses"]
    lines += [
        "    client %s via %s, server %s via %s"
        % (a["client"], a["client_gateway"], a["server"], a["server_gateway"]),
        "    primary and shadow: client leg %s (%s), server leg %s (%s)"
        % (a["client_gateway"], a["client_leg_mac"], a["server_gateway"], a["server_leg_mac"]),
        "    namespaces: %s" % " ".join(description["namespaces"].values()),
        "*** Nothing forwards until a P4Runtime client programs the switch: start the",
        "    device agents, then umbra run --config host/config/examples/mininet.toml",
        "    (scripts/mininet/README.md)",
    ]
    return "\n".join(lines) + "\n"


def teardown(net, state, linked, switch):
    """Stops everything, whatever state the build reached. Mininet first;
    then, by name and pid, whatever it could not remove."""
    problems = []
    if switch is not None:
        try:
            switch.stop_process()
        except Exception as error:  # noqa: BLE001  (keep tearing down)
            problems.append("stopping the switch: %s" % error)
    if net is not None:
        try:
            net.stop()
        except Exception as error:  # noqa: BLE001
            problems.append("net.stop(): %s" % error)
        for node in net.hosts + net.switches:
            shell = node.shell
            if shell is not None and shell.poll() is None:
                try:
                    os.killpg(shell.pid, signal.SIGKILL)
                except OSError:
                    pass
    for ifname in switch_ifnames():
        if link_exists(ifname):
            subprocess.run(["ip", "link", "del", ifname], check=False)
    for name in linked:
        unlink_netns(name)
    left = [ifname for ifname in switch_ifnames() if link_exists(ifname)]
    left += [
        os.path.join(NETNS_DIR, name)
        for name in linked
        if os.path.lexists(os.path.join(NETNS_DIR, name))
    ]
    if left:
        problems.append("still present: %s" % ", ".join(left))
    else:
        state.remove()
    return problems


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Umbra's failover lab as a Mininet topology (run as root).",
    )
    parser.add_argument(
        "--switch",
        choices=("umbra", "bmv2"),
        default="umbra",
        help="the P4 switch of node s1: `umbra switch` or bmv2's simple_switch_grpc",
    )
    parser.add_argument(
        "--umbra", default="umbra", help="the umbra binary (--switch umbra; default: umbra on PATH)"
    )
    parser.add_argument(
        "--simple-switch-grpc",
        default="simple_switch_grpc",
        help="bmv2's simple_switch_grpc binary (--switch bmv2; default: on PATH)",
    )
    parser.add_argument(
        "--grpc-port", type=int, default=9559, help="P4Runtime port on 127.0.0.1 (default 9559)"
    )
    parser.add_argument(
        "--device-id",
        type=int,
        help="P4Runtime device id (default: 1 for umbra, 0 for bmv2, as in the example configs)",
    )
    parser.add_argument(
        "--log-dir", help="where the switch writes s1.log (default: a new directory under /tmp)"
    )
    parser.add_argument(
        "--no-cli",
        action="store_true",
        help="no Mininet CLI: write --info and run until SIGTERM or SIGINT",
    )
    parser.add_argument("--info", help="write the lab's description (JSON) here once it is up")
    parser.add_argument("--verbose", action="store_true", help="Mininet's debug log")
    args = parser.parse_args(argv)
    if args.device_id is None:
        args.device_id = 1 if args.switch == "umbra" else 0
    return args


def main(argv):
    args = parse_args(argv)
    if os.geteuid() != 0:
        sys.exit("umbra_lab.py: Mininet needs root")
    setLogLevel("debug" if args.verbose else "info")
    if args.switch == "umbra":
        binary, flag = args.umbra, "--umbra"
    else:
        binary, flag = args.simple_switch_grpc, "--simple-switch-grpc"
    if shutil.which(binary) is None:
        sys.exit("umbra_lab.py: %s not found (%s)" % (binary, flag))
    binary = os.path.abspath(shutil.which(binary))
    log_dir = args.log_dir or tempfile.mkdtemp(prefix="umbra-mininet-")
    os.makedirs(log_dir, exist_ok=True)

    # "starting", "up", then "down" (tearing down: no signal interrupts
    # that). A signal before "down" raises Stop wherever the lab is, the
    # Mininet CLI included; the finally tears down what was built.
    phase = {"now": "starting", "signal": None}

    def on_signal(signum, _frame):
        phase["signal"] = signum
        if phase["now"] != "down":
            raise Stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    if args.no_cli:
        # At the CLI, Ctrl-C interrupts the running command (Mininet's).
        signal.signal(signal.SIGINT, on_signal)

    if args.switch == "umbra":
        switch_cls = functools.partial(UmbraSwitch, umbra=binary)
    else:
        switch_cls = functools.partial(Bmv2Switch, simple_switch_grpc=binary)
    switch_cls = functools.partial(
        switch_cls,
        grpc="127.0.0.1:%d" % args.grpc_port,
        device_id=args.device_id,
        log_dir=log_dir,
    )

    net, switch, linked = None, None, []
    state = LabState()
    status = 0
    try:
        sweep_stale_lab()
        check_free()
        state.data["switch_binary"] = binary
        state.save()
        net = Mininet(
            topo=FailoverLabTopo(),
            switch=switch_cls,
            controller=None,
            ipBase="198.18.0.0/15",  # never Mininet's default 10.0.0.0/8
            autoSetMacs=False,
            build=False,
            waitConnected=False,
        )
        net.build()
        state.data["shells"] = {node.name: node.pid for node in net.hosts + net.switches}
        state.save()
        for name in HOSTS + DEVICES:
            link_netns(net.get(name))
            linked.append(name)
            state.data["netns"] = list(linked)
            state.save()
        switch = net.get(SWITCH)
        net.start()
        state.data["switch_pid"] = switch.process.pid
        state.save()
        description = describe(net, args, log_dir)
        phase["now"] = "up"
        sys.stdout.write(banner(description))
        sys.stdout.flush()
        if args.info:
            write_atomically(args.info, json.dumps(description, indent=2) + "\n")
        if args.no_cli:
            while True:
                if not switch.running():
                    raise LabError(
                        "%s exited (%s); its log, %s:\n%s"
                        % (switch.kind, switch.process.returncode, switch.log_path, switch.log())
                    )
                time.sleep(0.2)
        else:
            CLI(net)
    except Stop:
        if phase["now"] == "up":
            info("*** Signal %d: stopping the lab\n" % phase["signal"])
        else:
            info("*** Signal %d while starting: stopping the lab\n" % phase["signal"])
            status = 1
    except KeyboardInterrupt:
        info("*** Interrupted while starting: stopping the lab\n")
        status = 1
    except LabError as error:
        sys.stderr.write("umbra_lab.py: %s\n" % error)
        status = 1
    finally:
        phase["now"] = "down"
        problems = teardown(net, state, linked, switch)
        if args.info and os.path.exists(args.info) and not problems:
            # The lab it describes is gone.
            os.unlink(args.info)
        for problem in problems:
            sys.stderr.write("umbra_lab.py: teardown: %s\n" % problem)
        if problems:
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
