"""Which filesystem holds nova's instances, and how full it is.

nova-compute keeps instance disks and cached images under ``instances_path``
(default ``/var/lib/nova/instances``, or what nova.conf on that node sets). The
filesystem holding it is the ``df`` row with the longest mount point that is a prefix
of that path: ``/var/lib/nova/instances`` itself when mounted apart, else ``/var``,
else ``/``. Nothing here says whether full is wrong: rules decide.

>>> _holder("/var/lib/nova/instances", ["/", "/var", "/boot"])
'/var'
>>> _holder("/var/lib/nova/instances", ["/dev", "/boot"]) is None
True
"""
from __future__ import annotations

from kb.facts import FactTable

FACT_TYPES = {
    "instances_filesystem": {
        "doc": "the filesystem holding nova's instances_path on NODE (df), and how full it is",
        "fields": {"instances_path": "the instances path (instances_path from nova.conf, else nova's default)",
                   "mounted_on": "the mount point of the filesystem holding it",
                   "filesystem": "its device or name", "use_percent": "Use% as a number",
                   "available": "the space left, as printed", "size": "its size, as printed"}},
}

# nova's own default for instances_path ($state_path/instances, state_path /var/lib/nova).
DEFAULT_INSTANCES_PATH = "/var/lib/nova/instances"


def _holder(path: str, mounts) -> str | None:
    best = None
    for mount in mounts:
        inside = path == mount or path.startswith(mount.rstrip("/") + "/")
        if inside and (best is None or len(mount) > len(best)):
            best = mount
    return best


def instances_filesystems(table: FactTable) -> None:
    configured = {o.get("node"): o for o in table.of("config_option")
                  if o.get("key") == "instances_path" and o.get("value")}
    rows_by_node: dict = {}
    for row in table.of("filesystem"):
        if not row.get("inodes"):
            rows_by_node.setdefault(row.get("node"), []).append(row)
    for node, rows in rows_by_node.items():
        option = configured.get(node)
        path = str(option["value"]) if option else DEFAULT_INSTANCES_PATH
        latest = {}
        for row in rows:  # the last listing of a mount point is its current state
            latest[row.get("mounted_on")] = row
        mount = _holder(path, latest)
        if mount is None:
            continue
        row = latest[mount]
        table.derive("instances_filesystem", node, [row] + ([option] if option else []),
                     f"on {node}, {path} is on {row.get('filesystem')} mounted on {mount}, "
                     f"{row.get('use_percent')}% used ({row.get('available')} left)",
                     instances_path=path, mounted_on=mount, filesystem=row.get("filesystem"),
                     use_percent=row.get("use_percent"), available=row.get("available"),
                     size=row.get("size"))


DERIVATIONS = (instances_filesystems,)
