"""What the tutor learns about a lab: which node plays which role, and the lab's own
values (its bridge, its uplink, its gateway ...) that the symptom files' texts use.

Roles come, strongest first, from the diagnosis' own ``node_role`` facts (concluded by
the inference rules of rules/inferences/roles.yaml: nova-network's NAT rules mark the
network node, the owner of its default gateway's address is the gateway, cinder's logs
mark the volume node ...), then from the student pasting the evidence asked of a role,
then from the node's name (``net01``, ``cmp01``, ``gw01`` say it too). Nothing here
knows a lab's names or addresses: they all come from the facts.
"""
from __future__ import annotations

import re
import string

from kb.addresses import covers

ROLES = {
    "compute": {"name": "compute node", "about": "where the instance runs",
                "names": r"comp|cmp|nova-?c|hypervisor|kvm"},
    "network": {"name": "network node", "about": "where nova-network routes and NATs the instances",
                "names": r"net|nova-?n|router"},
    "gateway": {"name": "gateway", "about": "the node the network node's default route goes via",
                "names": r"^gw|gateway|phys|uplink"},
    "volume": {"name": "volume node", "about": "where cinder runs",
               "names": r"vol|cinder|stor|block"},
    "image": {"name": "image node", "about": "where glance runs", "names": r"image|glance"},
    "api": {"name": "api node", "about": "where the nova API and the CLI run",
            "names": r"api"},
    "controller": {"name": "controller", "about": "where the API services and keystone run",
                   "names": r"ctl|control"},
}

# Everything a symptom file's texts may name; tutor/roles.context() fills them.
CONTEXT_KEYS = {"compute_node", "network_node", "gateway_node", "volume_node", "bridge",
                "uplink", "gateway_address", "gateway_iface", "fixed_address", "destination",
                "floating_ip", "glance_address"}

# When the facts give a node several roles, the one the tutor asks for it by.
_ROLE_ORDER = ("network", "gateway", "volume", "compute", "image", "controller")


def roles_from_facts(table) -> dict[str, str]:
    """node -> role, as the inference rules concluded it (``node_role`` facts)."""
    found: dict[str, set[str]] = {}
    for fact in table.of("node_role"):
        if fact.get("node"):
            found.setdefault(fact["node"], set()).add(fact.get("role"))
    return {node: next(r for r in _ROLE_ORDER + tuple(sorted(roles - set(_ROLE_ORDER))) if r in roles)
            for node, roles in found.items()}


def role_from_name(node: str | None) -> str | None:
    if not node:
        return None
    for role, info in ROLES.items():
        if re.search(info["names"], node, re.IGNORECASE):
            return role
    return None


def node_of(roles: dict[str, str], role: str) -> str | None:
    for node, their_role in roles.items():
        if their_role == role:
            return node
    return None


def context(table, roles: dict[str, str]) -> dict[str, str]:
    """The lab's own values, as far as the evidence shows them."""
    found: dict[str, str] = {}
    for role in ("compute", "network", "gateway", "volume"):
        node = node_of(roles, role)
        if node:
            found[f"{role}_node"] = node
    compute, network, gateway = (found.get(f"{r}_node") for r in ("compute", "network", "gateway"))

    requests = [p for p in table.of("packet") if "reply" not in str(p.get("icmp_type") or "")]
    first = next((p for p in requests if p.get("node") == compute), None) \
        or next((p for p in requests if p.get("node") == network), None)
    if first:
        found["fixed_address"] = first.get("src")
        found["destination"] = first.get("dst")
    compute_capture = next((c for c in table.of("capture") if c.get("node") == compute), None)
    if compute_capture and compute_capture.get("iface"):
        found["bridge"] = compute_capture["iface"]
    elif network and first:
        # the network node's own route to the instances' address names their bridge
        for route in table.of("route", network):
            if not route.get("via") and covers(route.get("destination"), first.get("src")) \
                    and route.get("destination") not in ("0.0.0.0/0", "default"):
                found["bridge"] = route.get("dev")
                break
    if network:
        default = next(iter(table.of("default_route", network)), None)
        if default:
            if default.get("dev"):
                found["uplink"] = default["dev"]
            if default.get("via"):
                found["gateway_address"] = default["via"]
    if gateway:
        # the gateway's interface that holds the address the network node routes via
        vias = {f.get("via") for f in table.of("gateway_of", gateway) if f.get("for_node") == network}
        facing = next((f for f in table.of("owns_address", gateway) if f.get("address") in vias), None)
        if facing and facing.get("ifname"):
            found["gateway_iface"] = facing["ifname"]
    fip = next(iter(table.of("floating_ip")), None)
    if fip:
        found["floating_ip"] = fip["address"]
    glance = next(iter(table.of("glance_unreachable")), None)
    if glance:
        found["glance_address"] = f"{glance['host']}:{glance['port']}"
    return {k: v for k, v in found.items() if v}


class _LabFormatter(string.Formatter):
    def get_field(self, field_name, args, kwargs):
        key, _, fallback = field_name.partition("|")
        value = kwargs.get(key)
        return (value if value else fallback), field_name


_FORMATTER = _LabFormatter()


def fill(template: str, values: dict[str, str]) -> str:
    """A symptom file's text in the lab's own values; ``{key|words}`` says the words
    while the value is unknown."""
    return " ".join(_FORMATTER.vformat(template, (), values).split()) if "{" in template else template


def known(template: str, values: dict[str, str]) -> str | None:
    """A ``where:`` value in the lab's own terms, or None while it is unknown."""
    keys = [name.split("|")[0] for _, name, _, _ in string.Formatter().parse(template) if name]
    if any(k not in values for k in keys):
        return None
    return _FORMATTER.vformat(template, (), values)
