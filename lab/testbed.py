"""The seed's floating-IP testbed, built for real out of network namespaces.

What the seed chapter ("Troubleshooting / Floating IPs") describes, and what is built::

    vm (10.99.0.2/22, eth0)                                       outside host
      |  vnet0                                                    (203.0.113.10 stands in
    compute-1: br100 (no IP) -- eth2 ... flat network ...          for www.google.com)
      |                                                               | eth0 198.51.100.1
    network-node: br100 10.99.0.1/22 (flat_interface eth2)            |
                  eth0 10.0.0.7/24    default via 10.0.0.1            |
                  eth1 172.16.0.7/16  (nova's public_interface)       |
                  nova-network's nat rules; floating IP 172.16.1.1/32 |
      |  eth0, eth1 (and compute-1's eth0) are ports vnetN of ...     |
    gks-061 (the physical node): br1 10.0.0.1/24 -- eth0 198.51.100.61/24 (uplink)
                                 default via 198.51.100.1

The physical node's "one big bridge" br1 joins the nodes' management *and* public
interfaces, so 172.16.0.0/16 really is behind br1 - which is why the seed's fix
``route add -net 172.16.0.0/16 dev br1`` works. The flat network between compute-1 and
network-node is its own segment here (the seed saw it on br1 too; keeping it apart
keeps the VM's ARP answered by br100 alone, so captures are deterministic).

The outside host answers for 203.0.113.10 but, like the real internet, has no route to
any of the lab's private ranges: replies come back only if the physical node
masquerades the floating range behind its uplink address.

Where the lab knowingly differs from the seed's machines (none changes a fault's effect):
the flat network is its own segment (above); the network node has arp_ignore=1 so the
interface holding an address is the one that answers ARP for it (eth0 and eth1 share
br1); IPv6 is off everywhere; 203.0.113.10 lives on the outside host's loopback; a small
listener stands in for sshd on the VM's tcp 22; and ``ip addr show`` names veth peers
(``eth0@if3 ... link-netns <namespace>``) where the seed's machines had real NICs.

Faults (the seed's four problems, plus ip_forward as a variant of the fourth), each a
flag with a fixed state; :meth:`Testbed.fix` applies the seed's fix, :meth:`Testbed.inject`
puts the fault back:

``snat_wrong_interface``
    nova's ``public_interface`` is an interface the default route does not use (the seed:
    SNAT ``-o eth1`` while ``default via 10.0.0.1 dev eth0``); the VM's packets leave
    un-NATed. Fix: ``public_interface`` = the default route's interface, restart
    nova-network (rules re-rendered, floating IP moved).
``gateway_no_return_route``
    the physical node does not know 172.16.0.0/16 lives behind br1, so replies to the
    floating IP leave by its default route. Fix: ``route add -net 172.16.0.0/16 dev br1``.
``gateway_no_masquerade``
    no ``-s 172.16.0.0/16 -o eth0 -j MASQUERADE`` on the physical node: the outside sees
    the private floating address and cannot answer. Fix: add the rule.
``gateway_forward_blocked``
    the physical node's FORWARD policy is DROP. Fix: ``iptables -P FORWARD ACCEPT``.
``gateway_ip_forward_off``
    net.ipv4.ip_forward=0 on the physical node. Fix: ``sysctl -w net.ipv4.ip_forward=1``.

``route_style="public"`` builds the seed's *other* fix instead: the physical node gets a
"public" address (``br1:0 172.16.0.1/16``) and the network node's default route goes
``via 172.16.0.1 dev eth1``, so ``public_interface=eth1`` is then the right value.

All names and addresses come from a :class:`LabNaming`; :data:`SEED` is the chapter's,
:data:`OTHER` shares none of them, so tests can show nothing depends on the seed's names.
"""
from __future__ import annotations

import hashlib
import ipaddress
import select
import shlex
import subprocess
import sys
from dataclasses import dataclass, fields
from typing import Iterable

from lab import netns
from lab.netns import CommandResult, Namespace, NetnsSession, add_veth

# --------------------------------------------------------------------------- roles
VM, COMPUTE, NETWORK, GATEWAY, OUTSIDE = "vm", "compute", "network", "gateway", "outside"
ROLES = (VM, COMPUTE, NETWORK, GATEWAY, OUTSIDE)
"""Machines of the testbed, in build order. ``gateway`` is the seed's physical node."""

# --------------------------------------------------------------------------- faults
SNAT_WRONG_INTERFACE = "snat_wrong_interface"
GATEWAY_NO_RETURN_ROUTE = "gateway_no_return_route"
GATEWAY_NO_MASQUERADE = "gateway_no_masquerade"
GATEWAY_FORWARD_BLOCKED = "gateway_forward_blocked"
GATEWAY_IP_FORWARD_OFF = "gateway_ip_forward_off"

# Probe names (lab.capture runs them): what a person in the seed tries first.
VM_TO_OUTSIDE = "vm-to-outside"              # ping www.google.com from the VM
GATEWAY_TO_FLOATING = "gateway-to-floating"  # nc to the VM's floating IP, tcp 22, from gks-061
PROBES = (VM_TO_OUTSIDE, GATEWAY_TO_FLOATING)


@dataclass(frozen=True)
class Fault:
    """One sabotage of the testbed: what is wrong, the seed's fix, which probes it breaks."""

    name: str
    node: str            # role of the machine the fault lives on
    summary: str
    seed_fix: str        # the fix as the seed chapter types it
    breaks: frozenset    # probe names that fail with this fault alone


FAULTS: dict[str, Fault] = {f.name: f for f in (
    Fault(SNAT_WRONG_INTERFACE, NETWORK,
          "nova-network SNATs only on public_interface, but the default route leaves by another interface",
          "sed -i 's/public_interface.*/public_interface=eth0/' /etc/nova/nova.conf; service nova-network restart",
          frozenset({VM_TO_OUTSIDE})),
    Fault(GATEWAY_NO_RETURN_ROUTE, GATEWAY,
          "the physical node has no route back to the floating range",
          "route add -net 172.16.0.0/16 dev br1",
          frozenset({VM_TO_OUTSIDE, GATEWAY_TO_FLOATING})),
    Fault(GATEWAY_NO_MASQUERADE, GATEWAY,
          "the physical node does not MASQUERADE the private floating range on its uplink",
          "iptables -A POSTROUTING -t nat -o eth0 -s 172.16.0.0/16 -j MASQUERADE",
          frozenset({VM_TO_OUTSIDE})),
    Fault(GATEWAY_FORWARD_BLOCKED, GATEWAY,
          "the physical node's FORWARD chain drops everything (policy DROP)",
          "iptables -P FORWARD ACCEPT",
          frozenset({VM_TO_OUTSIDE})),
    Fault(GATEWAY_IP_FORWARD_OFF, GATEWAY,
          "the physical node does not forward at all (net.ipv4.ip_forward = 0)",
          "sysctl -w net.ipv4.ip_forward=1",
          frozenset({VM_TO_OUTSIDE})),
)}

SEED_FAULTS = frozenset({SNAT_WRONG_INTERFACE, GATEWAY_NO_RETURN_ROUTE,
                         GATEWAY_NO_MASQUERADE, GATEWAY_FORWARD_BLOCKED})
"""The seed's starting state: "the current configuration is not working"."""

ROUTE_STYLES = ("management", "public")


# --------------------------------------------------------------------------- naming
@dataclass(frozen=True)
class LabNaming:
    """Every name and address in the testbed. Defaults are none: see :data:`SEED`, :data:`OTHER`."""

    label: str
    # host names, as prompts and /etc/hosts show them
    vm_host: str
    compute_host: str
    network_host: str
    gateway_host: str
    outside_host: str
    # the VM
    vm_iface: str
    vm_ip: str
    # compute node: a bridge carrying the VM's tap and the flat interface
    compute_bridge: str
    compute_tap: str
    compute_flat_iface: str
    compute_mgmt_iface: str
    compute_mgmt_ip: str
    # network node
    fixed_bridge: str          # br100
    network_flat_iface: str    # flat_interface enslaved to br100
    mgmt_iface: str            # eth0: management, where the default route goes
    public_iface: str          # eth1: the "public" network
    fixed_cidr: str
    fixed_gateway_ip: str      # on br100, the VM's default gateway (dnsmasq)
    mgmt_cidr: str
    network_mgmt_ip: str       # also nova's my_ip/routing_source_ip/metadata_host
    public_cidr: str           # the floating range lives here
    network_public_ip: str
    floating_ip: str
    public_router_ip: str      # the physical node's "public" address in route_style="public"
    # physical node ("gateway")
    gateway_bridge: str        # br1
    gateway_ports: tuple       # its taps for network mgmt, network public, compute mgmt
    gateway_uplink: str        # eth0 towards the outside
    gateway_mgmt_ip: str
    uplink_cidr: str
    gateway_uplink_ip: str
    # outside
    outside_iface: str
    upstream_ip: str           # the outside host's address on the uplink; gateway's default
    outside_ip: str            # the "internet" host the VM pings (www.google.com)
    vm_service_port: int = 22
    metadata_port: int = 8775
    rhel_roles: frozenset = frozenset({GATEWAY})   # prompts in [root@host ~]# form

    def __post_init__(self):
        problems = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.endswith(("_iface", "_bridge", "_tap")) and not 0 < len(value) <= 15:
                problems.append(f"{f.name}={value!r}: interface names are 1..15 characters")
        if len(self.gateway_ports) != 3 or any(len(p) > 15 for p in self.gateway_ports):
            problems.append("gateway_ports: three interface names of at most 15 characters")
        inside = [("vm_ip", "fixed_cidr"), ("fixed_gateway_ip", "fixed_cidr"),
                  ("compute_mgmt_ip", "mgmt_cidr"), ("network_mgmt_ip", "mgmt_cidr"),
                  ("gateway_mgmt_ip", "mgmt_cidr"), ("network_public_ip", "public_cidr"),
                  ("floating_ip", "public_cidr"), ("public_router_ip", "public_cidr"),
                  ("gateway_uplink_ip", "uplink_cidr"), ("upstream_ip", "uplink_cidr")]
        for address, network in inside:
            if ipaddress.ip_address(getattr(self, address)) not in ipaddress.ip_network(getattr(self, network)):
                problems.append(f"{address}={getattr(self, address)} is not in {network}={getattr(self, network)}")
        nets = [ipaddress.ip_network(getattr(self, n)) for n in ("fixed_cidr", "mgmt_cidr", "public_cidr", "uplink_cidr")]
        for i, a in enumerate(nets):
            for b in nets[i + 1:]:
                if a.overlaps(b):
                    problems.append(f"{a} overlaps {b}")
        if any(ipaddress.ip_address(self.outside_ip) in n for n in nets):
            problems.append(f"outside_ip {self.outside_ip} must be outside every lab network")
        if problems:
            raise ValueError(f"naming {self.label!r}: " + "; ".join(problems))

    def hostname(self, role: str) -> str:
        return {VM: self.vm_host, COMPUTE: self.compute_host, NETWORK: self.network_host,
                GATEWAY: self.gateway_host, OUTSIDE: self.outside_host}[role]

    def prompt(self, role: str) -> str:
        """The root prompt of ``role`` as a terminal shows it (RHEL form for the physical node)."""
        host = self.hostname(role)
        return f"[root@{host} ~]# " if role in self.rhel_roles else f"root@{host}:~# "

    def with_prefix(self, address: str, network: str) -> str:
        return f"{address}/{ipaddress.ip_network(network).prefixlen}"


SEED = LabNaming(
    label="seed",
    vm_host="test-vm", compute_host="compute-1", network_host="network-node",
    gateway_host="gks-061", outside_host="www-google",
    vm_iface="eth0", vm_ip="10.99.0.2",
    compute_bridge="br100", compute_tap="vnet0", compute_flat_iface="eth2",
    compute_mgmt_iface="eth0", compute_mgmt_ip="10.0.0.20",
    fixed_bridge="br100", network_flat_iface="eth2", mgmt_iface="eth0", public_iface="eth1",
    fixed_cidr="10.99.0.0/22", fixed_gateway_ip="10.99.0.1",
    mgmt_cidr="10.0.0.0/24", network_mgmt_ip="10.0.0.7",
    public_cidr="172.16.0.0/16", network_public_ip="172.16.0.7", floating_ip="172.16.1.1",
    public_router_ip="172.16.0.1",
    gateway_bridge="br1", gateway_ports=("vnet0", "vnet1", "vnet2"), gateway_uplink="eth0",
    gateway_mgmt_ip="10.0.0.1",
    # The seed's uplink is 141.52.174.0/24 and the pinged host 173.194.113.145;
    # documentation ranges stand in for both.
    uplink_cidr="198.51.100.0/24", gateway_uplink_ip="198.51.100.61",
    outside_iface="eth0", upstream_ip="198.51.100.1", outside_ip="203.0.113.10",
)
"""The seed chapter's names and addresses (public ones replaced by documentation ranges)."""

OTHER = LabNaming(
    label="other",
    vm_host="vm01", compute_host="cmp01", network_host="net01",
    gateway_host="gw01", outside_host="ext-host",
    vm_iface="ens2", vm_ip="10.20.4.5",
    compute_bridge="br-fixed", compute_tap="tap3f2a", compute_flat_iface="ens5",
    compute_mgmt_iface="ens3", compute_mgmt_ip="10.20.0.21",
    fixed_bridge="br-fixed", network_flat_iface="ens5", mgmt_iface="ens3", public_iface="ens4",
    fixed_cidr="10.20.4.0/22", fixed_gateway_ip="10.20.4.1",
    mgmt_cidr="10.20.0.0/24", network_mgmt_ip="10.20.0.11",
    public_cidr="198.51.100.64/26", network_public_ip="198.51.100.70", floating_ip="198.51.100.77",
    public_router_ip="198.51.100.65",
    gateway_bridge="br-mgmt", gateway_ports=("tap-net", "tap-pub", "tap-cmp"), gateway_uplink="wan0",
    gateway_mgmt_ip="10.20.0.1",
    uplink_cidr="192.0.2.0/24", gateway_uplink_ip="192.0.2.2",
    outside_iface="ens3", upstream_ip="192.0.2.1", outside_ip="203.0.113.80",
)
"""Different names for everything: net01/ens3/ens4/br-fixed, gw01, 10.20.x, 198.51.100.64/26."""


# --------------------------------------------------------------------------- rulesets
def nova_network_ruleset(names: LabNaming, public_interface: str) -> str:
    """The network node's iptables (nat + filter) as nova-network lays them out.

    The same chains and rules as the seed's ``iptables -L -t nat -v`` listing: wrapped
    chains ``nova-network-*`` and ``nova-api-metadat-*``, ``nova-postrouting-bottom``,
    the fixed-range SNAT ``-s FIXED -o public_interface -j SNAT --to-source my_ip``, and
    for the floating IP a DNAT in PREROUTING and OUTPUT plus float-snat SNATs.
    ``public_interface`` is nova.conf's option of the same name.
    """
    n = names
    fixed, vm, floating, my_ip = n.fixed_cidr, f"{n.vm_ip}/32", n.floating_ip, n.network_mgmt_ip
    return f"""\
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:nova-api-metadat-OUTPUT - [0:0]
:nova-api-metadat-POSTROUTING - [0:0]
:nova-api-metadat-PREROUTING - [0:0]
:nova-api-metadat-float-snat - [0:0]
:nova-api-metadat-snat - [0:0]
:nova-network-OUTPUT - [0:0]
:nova-network-POSTROUTING - [0:0]
:nova-network-PREROUTING - [0:0]
:nova-network-float-snat - [0:0]
:nova-network-snat - [0:0]
:nova-postrouting-bottom - [0:0]
-A PREROUTING -j nova-network-PREROUTING
-A PREROUTING -j nova-api-metadat-PREROUTING
-A OUTPUT -j nova-network-OUTPUT
-A OUTPUT -j nova-api-metadat-OUTPUT
-A POSTROUTING -j nova-network-POSTROUTING
-A POSTROUTING -j nova-api-metadat-POSTROUTING
-A POSTROUTING -j nova-postrouting-bottom
-A nova-api-metadat-snat -j nova-api-metadat-float-snat
-A nova-network-OUTPUT -d {floating}/32 -j DNAT --to-destination {n.vm_ip}
-A nova-network-POSTROUTING -s {fixed} -d {my_ip}/32 -j ACCEPT
-A nova-network-POSTROUTING -s {fixed} -d {fixed} -m conntrack ! --ctstate DNAT -j ACCEPT
-A nova-network-POSTROUTING -s {vm} -m conntrack --ctstate DNAT -j SNAT --to-source {floating}
-A nova-network-PREROUTING -d 169.254.169.254/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination {my_ip}:{n.metadata_port}
-A nova-network-PREROUTING -d {floating}/32 -j DNAT --to-destination {n.vm_ip}
-A nova-network-float-snat -s {vm} -d {vm} -j SNAT --to-source {floating}
-A nova-network-float-snat -s {vm} -o {public_interface} -j SNAT --to-source {floating}
-A nova-network-snat -j nova-network-float-snat
-A nova-network-snat -s {fixed} -o {public_interface} -j SNAT --to-source {my_ip}
-A nova-postrouting-bottom -j nova-network-snat
-A nova-postrouting-bottom -j nova-api-metadat-snat
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:nova-api-metadat-FORWARD - [0:0]
:nova-api-metadat-INPUT - [0:0]
:nova-api-metadat-OUTPUT - [0:0]
:nova-api-metadat-local - [0:0]
:nova-filter-top - [0:0]
:nova-network-FORWARD - [0:0]
:nova-network-INPUT - [0:0]
:nova-network-OUTPUT - [0:0]
:nova-network-local - [0:0]
-A INPUT -j nova-network-INPUT
-A INPUT -j nova-api-metadat-INPUT
-A FORWARD -j nova-filter-top
-A FORWARD -j nova-network-FORWARD
-A FORWARD -j nova-api-metadat-FORWARD
-A OUTPUT -j nova-filter-top
-A OUTPUT -j nova-network-OUTPUT
-A OUTPUT -j nova-api-metadat-OUTPUT
-A nova-api-metadat-INPUT -d {my_ip}/32 -p tcp -m tcp --dport {n.metadata_port} -j ACCEPT
-A nova-filter-top -j nova-network-local
-A nova-filter-top -j nova-api-metadat-local
-A nova-network-FORWARD -i {n.fixed_bridge} -j ACCEPT
-A nova-network-FORWARD -o {n.fixed_bridge} -j ACCEPT
-A nova-network-INPUT -i {n.fixed_bridge} -p udp -m udp --dport 67 -j ACCEPT
-A nova-network-INPUT -i {n.fixed_bridge} -p tcp -m tcp --dport 67 -j ACCEPT
-A nova-network-INPUT -i {n.fixed_bridge} -p udp -m udp --dport 53 -j ACCEPT
-A nova-network-INPUT -i {n.fixed_bridge} -p tcp -m tcp --dport 53 -j ACCEPT
COMMIT
"""


def gateway_masquerade_rule(names: LabNaming) -> tuple[str, str, list[str]]:
    """(table, chain, match) of the seed's
    ``iptables -A POSTROUTING -t nat -o eth0 -s 172.16.0.0/16 -j MASQUERADE``."""
    return "nat", "POSTROUTING", ["-o", names.gateway_uplink, "-s", names.public_cidr,
                                  "-j", "MASQUERADE"]


def _mac(names: LabNaming, role: str, ifname: str) -> str:
    """A stable MAC per (naming, machine, interface), so captures repeat run to run.

    libvirt's 52:54:00 for the nova nodes (they are VMs on gks-061 in the seed),
    OpenStack's fa:16:3e for the instance, a locally administered 02: prefix otherwise.
    """
    digest = hashlib.sha1(f"{names.label}/{role}/{ifname}".encode()).digest()
    oui = {VM: "fa:16:3e", COMPUTE: "52:54:00", NETWORK: "52:54:00"}.get(role, "02:5d:0c")
    return oui + "".join(f":{b:02x}" for b in digest[:3])


# The listener in the VM stands in for sshd: accept and close, forever. It prints
# "ready" once listening so the build does not race the first probe.
_LISTENER = """\
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(16)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    c.close()
"""


# --------------------------------------------------------------------------- testbed
class Testbed:
    """The seed's testbed as namespaces; a context manager that always cleans up.

    >>> with Testbed(faults={SNAT_WRONG_INTERFACE}, names=SEED) as tb:   # doctest: +SKIP
    ...     tb.run(NETWORK, "iptables -t nat -S nova-network-snat")
    ...     tb.fix(SNAT_WRONG_INTERFACE)

    ``faults`` is any iterable of fault names (see :data:`FAULTS`); absent faults are in
    their fixed state, so ``Testbed()`` works end to end. ``public_interface`` overrides
    nova's option directly (then ``snat_wrong_interface`` is active exactly when it is not
    the default route's interface). ``route_style`` picks which of the seed's two fixes
    the healthy state uses ("management": default via the management network and
    public_interface on it; "public": the physical node as router on the public network).
    ``vm_listener=False`` leaves the VM's tcp 22 to the caller (the practice lab runs a
    real sshd there).
    """

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, faults: Iterable[str] = (), names: LabNaming = SEED, *,
                 public_interface: str | None = None, route_style: str = "management",
                 prefix: str | None = None, vm_listener: bool = True):
        faults = frozenset(faults)
        unknown = faults - FAULTS.keys()
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}; known: {sorted(FAULTS)}")
        if route_style not in ROUTE_STYLES:
            raise ValueError(f"route_style must be one of {ROUTE_STYLES}")
        self.names = names
        self.route_style = route_style
        if public_interface is not None:
            if public_interface not in (names.mgmt_iface, names.public_iface):
                raise ValueError(f"public_interface must be {names.mgmt_iface} or {names.public_iface}")
            implied = public_interface != self.default_route_iface
            if SNAT_WRONG_INTERFACE in faults and not implied:
                raise ValueError(f"{SNAT_WRONG_INTERFACE} contradicts public_interface={public_interface}")
            faults = faults | {SNAT_WRONG_INTERFACE} if implied else faults
        self._faults = set(faults)
        self._prefix = prefix
        self._vm_listener = vm_listener   # False: something else (the practice lab's sshd) serves tcp 22
        self.session: NetnsSession | None = None
        self.listener = None
        self._floating_on: str | None = None   # interface holding the floating /32 now

    # ------------------------------------------------------------------ properties
    @property
    def faults(self) -> frozenset:
        """The faults active right now."""
        return frozenset(self._faults)

    @property
    def prefix(self) -> str:
        return self.session.prefix if self.session else (self._prefix or "")

    @property
    def default_route_iface(self) -> str:
        """Where the network node's default route leaves."""
        return self.names.mgmt_iface if self.route_style == "management" else self.names.public_iface

    @property
    def public_interface(self) -> str:
        """nova.conf's public_interface on the network node, as the faults make it."""
        right = self.default_route_iface
        wrong = self.names.public_iface if right == self.names.mgmt_iface else self.names.mgmt_iface
        return wrong if SNAT_WRONG_INTERFACE in self._faults else right

    def node(self, role: str) -> Namespace:
        if not self.session:
            raise RuntimeError("testbed not built (use it as a context manager)")
        return self.session.namespaces[role]

    def hostname(self, role: str) -> str:
        return self.names.hostname(role)

    def prompt(self, role: str) -> str:
        return self.names.prompt(role)

    def run(self, role: str, command: str | list[str], *, timeout: float = netns.DEFAULT_TIMEOUT,
            merge_stderr: bool = True) -> CommandResult:
        """Run ``command`` (a shell-like string or argv) on machine ``role``."""
        argv = shlex.split(command) if isinstance(command, str) else list(command)
        return self.node(role).exec(argv, timeout=timeout, merge_stderr=merge_stderr)

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> "Testbed":
        self.build()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> list[str]:
        """End the VM's listener and delete every namespace (safe to call twice)."""
        problems = self.session.close() if self.session else []
        self.listener = None
        return problems

    def build(self) -> "Testbed":
        """Create the machines, cables, bridges, addresses, routes, rules, and the faults."""
        if self.session:
            raise RuntimeError("already built")
        self.session = NetnsSession(self._prefix)
        try:
            self._build()
        except BaseException:
            self.session.close()
            raise
        return self

    def _hosts_file(self, role: str) -> str:
        n = self.names
        lines = ["127.0.0.1\tlocalhost"]
        if role in (COMPUTE, NETWORK, GATEWAY):
            # The lab's nodes know each other by name (that is why the seed's
            # `iptables -L` shows "network-node" for 10.0.0.7).
            lines += [f"{n.network_mgmt_ip}\t{n.network_host}",
                      f"{n.compute_mgmt_ip}\t{n.compute_host}",
                      f"{n.gateway_mgmt_ip}\t{n.gateway_host}"]
        else:
            lines.append(f"127.0.1.1\t{n.hostname(role)}")
        return "\n".join(lines) + "\n"

    def _build(self) -> None:
        n, s = self.names, self.session
        vm, compute, network, gateway, outside = (
            s.namespace(role, hosts=self._hosts_file(role)) for role in ROLES)

        for machine in (vm, compute, network, gateway, outside):
            # IPv6 off: the only traffic on the wires is what the probes send, and no
            # "tentative" addresses make captures differ run to run.
            machine.sysctl("net.ipv6.conf.all.disable_ipv6", 1)
            machine.sysctl("net.ipv6.conf.default.disable_ipv6", 1)
            # New namespaces copy some IPv4 defaults from the host; pin the ones that
            # change forwarding decisions so the lab behaves the same on every host.
            machine.sysctl("net.ipv4.conf.all.rp_filter", 0)
            machine.sysctl("net.ipv4.conf.default.rp_filter", 0)
            # With br_netfilter loaded, bridged frames would walk iptables FORWARD; a
            # plain bridge (like the seed's) does not filter, so switch that off.
            for key in ("net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-arptables"):
                if machine.has_sysctl(key):
                    machine.sysctl(key, 0)
        vm.sysctl("net.ipv4.ip_forward", 0)
        compute.sysctl("net.ipv4.ip_forward", 0)
        network.sysctl("net.ipv4.ip_forward", 1)   # nova-network turns this on
        # eth0 and eth1 of the network node sit on the same bridge (br1). With the
        # kernel default arp_ignore=0 both would answer ARP for any of its addresses and
        # the physical node would pick one at random; arp_ignore=1 makes the interface
        # holding the address answer, so the floating IP's traffic arrives where it lives.
        network.sysctl("net.ipv4.conf.all.arp_ignore", 1)
        outside.sysctl("net.ipv4.ip_forward", 0)   # it answers; it does not route for us

        def mac(role, ifname):
            return _mac(n, role, ifname)

        # Cables.
        add_veth(vm, n.vm_iface, compute, n.compute_tap,
                 a_mac=mac(VM, n.vm_iface), b_mac=mac(COMPUTE, n.compute_tap))
        add_veth(compute, n.compute_flat_iface, network, n.network_flat_iface,
                 a_mac=mac(COMPUTE, n.compute_flat_iface), b_mac=mac(NETWORK, n.network_flat_iface))
        port_mgmt, port_public, port_compute = n.gateway_ports
        add_veth(network, n.mgmt_iface, gateway, port_mgmt,
                 a_mac=mac(NETWORK, n.mgmt_iface), b_mac=mac(GATEWAY, port_mgmt))
        add_veth(network, n.public_iface, gateway, port_public,
                 a_mac=mac(NETWORK, n.public_iface), b_mac=mac(GATEWAY, port_public))
        add_veth(compute, n.compute_mgmt_iface, gateway, port_compute,
                 a_mac=mac(COMPUTE, n.compute_mgmt_iface), b_mac=mac(GATEWAY, port_compute))
        add_veth(gateway, n.gateway_uplink, outside, n.outside_iface,
                 a_mac=mac(GATEWAY, n.gateway_uplink), b_mac=mac(OUTSIDE, n.outside_iface))

        # Bridges: compute-1's br100 carries no address (the seed's tcpdump warns
        # "br100: no IPv4 address assigned"); gks-061's br1 is the one big bridge.
        compute.add_bridge(n.compute_bridge, [n.compute_tap, n.compute_flat_iface],
                           mac=mac(COMPUTE, n.compute_bridge))
        network.add_bridge(n.fixed_bridge, [n.network_flat_iface], mac=mac(NETWORK, n.fixed_bridge))
        gateway.add_bridge(n.gateway_bridge, list(n.gateway_ports), mac=mac(GATEWAY, n.gateway_bridge))

        # Addresses and routes.
        vm.add_address(n.vm_iface, n.with_prefix(n.vm_ip, n.fixed_cidr))
        vm.add_route("default", via=n.fixed_gateway_ip)
        compute.add_address(n.compute_mgmt_iface, n.with_prefix(n.compute_mgmt_ip, n.mgmt_cidr))
        compute.add_route("default", via=n.gateway_mgmt_ip)
        network.add_address(n.mgmt_iface, n.with_prefix(n.network_mgmt_ip, n.mgmt_cidr))
        network.add_address(n.public_iface, n.with_prefix(n.network_public_ip, n.public_cidr))
        network.add_address(n.fixed_bridge, n.with_prefix(n.fixed_gateway_ip, n.fixed_cidr))
        if self.route_style == "management":
            network.add_route("default", via=n.gateway_mgmt_ip, dev=n.mgmt_iface)
        else:
            # The seed's fix 1: route del default gw 10.0.0.1; route add default gw 172.16.0.1 dev eth1.
            # 172.16.0.1 is on-link through eth1's 172.16.0.0/16.
            network.add_route("default", via=n.public_router_ip, dev=n.public_iface)
        gateway.add_address(n.gateway_bridge, n.with_prefix(n.gateway_mgmt_ip, n.mgmt_cidr))
        gateway.add_address(n.gateway_uplink, n.with_prefix(n.gateway_uplink_ip, n.uplink_cidr))
        gateway.add_route("default", via=n.upstream_ip)
        outside.add_address(n.outside_iface, n.with_prefix(n.upstream_ip, n.uplink_cidr))
        # The "internet" host address, on loopback: answered locally, routed to nobody.
        outside.add_address("lo", f"{n.outside_ip}/32")

        # nova-network on the network node, then each fault in its chosen state.
        self._apply_nova(self.public_interface)
        self._set_return_route(GATEWAY_NO_RETURN_ROUTE not in self._faults)
        gateway.iptables_restore("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n"
                                 ":OUTPUT ACCEPT [0:0]\nCOMMIT\n*nat\n:PREROUTING ACCEPT [0:0]\n"
                                 ":INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
                                 ":POSTROUTING ACCEPT [0:0]\nCOMMIT\n")
        self._set_masquerade(GATEWAY_NO_MASQUERADE not in self._faults)
        self._set_forward_policy(GATEWAY_FORWARD_BLOCKED not in self._faults)
        self._set_gateway_ip_forward(GATEWAY_IP_FORWARD_OFF not in self._faults)
        if self._vm_listener:
            self._start_listener()

    def _start_listener(self, timeout: float = 5.0) -> None:
        """Something listening on the VM's tcp 22, as sshd would be."""
        self.listener = self.session.spawn(
            self.node(VM), [sys.executable, "-c", _LISTENER, str(self.names.vm_service_port)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ready, _, _ = select.select([self.listener.stdout], [], [], timeout)
        line = self.listener.stdout.readline() if ready else ""
        if line.strip() != "ready":
            err = ""
            if self.listener.poll() is not None:
                err = self.listener.stderr.read()
            raise RuntimeError(f"listener in the VM did not start: {line!r} {err}")

    # ------------------------------------------------------------------ fault states
    def _apply_nova(self, public_interface: str) -> None:
        """What nova-network does at (re)start: floating IP on public_interface, rules loaded."""
        network, n = self.node(NETWORK), self.names
        floating = f"{n.floating_ip}/32"
        if self._floating_on and self._floating_on != public_interface:
            network.del_address(self._floating_on, floating)
            self._floating_on = None
        if self._floating_on is None:
            network.add_address(public_interface, floating)
            self._floating_on = public_interface
        network.iptables_restore(nova_network_ruleset(n, public_interface))

    def _set_return_route(self, present: bool) -> None:
        gateway, n = self.node(GATEWAY), self.names
        if self.route_style == "management":
            # route add -net 172.16.0.0/16 dev br1
            has = n.public_cidr in gateway.check(["ip", "route", "show", n.public_cidr]).stdout
            if present and not has:
                gateway.add_route(n.public_cidr, dev=n.gateway_bridge)
            elif not present and has:
                gateway.del_route(n.public_cidr, dev=n.gateway_bridge)
        else:
            # ifconfig br1:0 172.16.0.1/16 - the address brings its connected route.
            cidr = n.with_prefix(n.public_router_ip, n.public_cidr)
            has = cidr in gateway.check(["ip", "-4", "addr", "show", "dev", n.gateway_bridge]).stdout
            if present and not has:
                gateway.add_address(n.gateway_bridge, cidr, label=f"{n.gateway_bridge}:0")
            elif not present and has:
                gateway.del_address(n.gateway_bridge, cidr)

    def _set_masquerade(self, present: bool) -> None:
        gateway = self.node(GATEWAY)
        table, chain, spec = gateway_masquerade_rule(self.names)
        has = gateway.exec(["iptables", "-t", table, "-C", chain, *spec]).ok
        if present and not has:
            gateway.check(["iptables", "-t", table, "-A", chain, *spec])
        elif not present and has:
            gateway.check(["iptables", "-t", table, "-D", chain, *spec])

    def _set_forward_policy(self, accept: bool) -> None:
        self.node(GATEWAY).check(["iptables", "-P", "FORWARD", "ACCEPT" if accept else "DROP"])

    def _set_gateway_ip_forward(self, on: bool) -> None:
        self.node(GATEWAY).sysctl("net.ipv4.ip_forward", 1 if on else 0)

    def _set(self, fault: str, broken: bool) -> None:
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; known: {sorted(FAULTS)}")
        if broken:
            self._faults.add(fault)
        else:
            self._faults.discard(fault)
        if fault == SNAT_WRONG_INTERFACE:
            self._apply_nova(self.public_interface)
        elif fault == GATEWAY_NO_RETURN_ROUTE:
            self._set_return_route(not broken)
        elif fault == GATEWAY_NO_MASQUERADE:
            self._set_masquerade(not broken)
        elif fault == GATEWAY_FORWARD_BLOCKED:
            self._set_forward_policy(not broken)
        elif fault == GATEWAY_IP_FORWARD_OFF:
            self._set_gateway_ip_forward(not broken)

    def fix(self, fault: str) -> None:
        """Apply the seed's fix for ``fault`` to the running testbed."""
        self._set(fault, broken=False)

    def inject(self, fault: str) -> None:
        """Put ``fault`` back into the running testbed."""
        self._set(fault, broken=True)

    def fix_all(self) -> None:
        for fault in sorted(self._faults):
            self.fix(fault)
