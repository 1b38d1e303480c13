"""Inventories: stackdoc reads the hosts, addresses, ports, users and groups that
``ansible-inventory --list`` reads from the same file (ansible-core is a test-only
dependency), plus ``~/.ssh/config`` aliases, ``--limit`` patterns and clear errors."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.inventory import InventoryError, expand_host_pattern, load_inventory, select

FIXTURES = Path(__file__).parent / "fixtures" / "inventory"
INVENTORIES = sorted(p.name for p in FIXTURES.iterdir() if p.suffix in (".ini", ".yml", ".yaml"))


def _ansible_inventory() -> str:
    found = Path(sys.executable).parent / "ansible-inventory"
    if found.exists():
        return str(found)
    return shutil.which("ansible-inventory") or pytest.skip(
        "ansible-inventory (ansible-core, in requirements.txt) is not installed")


def _ansible_view(path: Path, tmp_path: Path) -> dict:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
           "ANSIBLE_CONFIG": str(tmp_path / "none.cfg"), "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp"),
           "ANSIBLE_INVENTORY_UNPARSED_FAILED": "1", "LC_ALL": "C.UTF-8"}
    done = subprocess.run([_ansible_inventory(), "--list", "-i", str(path)], capture_output=True,
                          text=True, timeout=120, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _ansible_hosts(view: dict) -> dict[str, dict]:
    """host -> {address, port, user, become, key, groups} as Ansible resolved them."""
    parents: dict[str, set[str]] = {}
    direct: dict[str, set[str]] = {}
    for group, body in view.items():
        if group == "_meta":
            continue
        for child in body.get("children", []):
            parents.setdefault(child, set()).add(group)
        for host in body.get("hosts", []):
            direct.setdefault(host, set()).add(group)

    def ancestors(group):
        out, todo = set(), [group]
        while todo:
            for parent in parents.get(todo.pop(), ()):
                if parent not in out:
                    out.add(parent)
                    todo.append(parent)
        return out

    hostvars = view["_meta"]["hostvars"]
    out = {}
    for host in set(direct) | set(hostvars):
        groups = set(direct.get(host, ()))
        for group in list(groups):
            groups |= ancestors(group)
        variables = hostvars.get(host, {})
        key = variables.get("ansible_ssh_private_key_file")
        out[host] = {
            "address": variables.get("ansible_host", host),
            "port": int(variables.get("ansible_port", 22)),
            "user": variables.get("ansible_user"),
            "become": str(variables.get("ansible_become", False)).lower() in ("true", "yes", "1"),
            "key": os.path.expanduser(key) if key else None,
            "groups": sorted(groups - {"all"}),
        }
    return out


@pytest.mark.parametrize("name", INVENTORIES)
def test_hosts_addresses_and_groups_are_what_ansible_inventory_reads(name, tmp_path):
    expected = _ansible_hosts(_ansible_view(FIXTURES / name, tmp_path))
    ours = {h.name: {"address": h.address, "port": h.port, "user": h.user, "become": h.become,
                     "key": h.key_file, "groups": list(h.groups)}
            for h in load_inventory(FIXTURES / name, ssh_config_path=tmp_path / "no-config")}
    assert ours == expected


def test_there_are_several_inventories_in_both_formats():
    assert {Path(n).suffix for n in INVENTORIES} >= {".ini", ".yml", ".yaml"} and len(INVENTORIES) >= 4


def test_proxy_command_from_ssh_common_args():
    hosts = {h.name: h for h in load_inventory(FIXTURES / "nested.yaml", ssh_config_path="/nonexistent")}
    assert hosts["net-a"].proxy_command == "ssh -W %h:%p jump"
    assert hosts["net-a"].user == "netadmin" and hosts["net-a"].become
    assert hosts["ctl1"].proxy_command is None


def test_ssh_config_aliases_fill_what_the_inventory_leaves_out(tmp_path):
    config = tmp_path / "config"
    config.write_text("Host net01\n  HostName 192.0.2.11\n  Port 2022\n  User ops\n"
                      "  IdentityFile ~/.ssh/ops_key\n\nHost gw*\n  User gwadmin\n"
                      "  ProxyCommand ip netns exec lab nc %h %p\n")
    inventory = tmp_path / "hosts"
    inventory.write_text("[network]\nnet01\n[gateway]\ngw01 ansible_host=192.0.2.1 ansible_user=root\ngw02\n")
    hosts = {h.name: h for h in load_inventory(inventory, ssh_config_path=config)}
    assert (hosts["net01"].address, hosts["net01"].port, hosts["net01"].user) == ("192.0.2.11", 2022, "ops")
    assert hosts["net01"].key_file == os.path.expanduser("~/.ssh/ops_key")
    # Ansible hands OpenSSH the ansible_host, so "Host gw*" does not match gw01 ...
    assert (hosts["gw01"].address, hosts["gw01"].user, hosts["gw01"].proxy_command) == (
        "192.0.2.1", "root", None)
    # ... but does match gw02, with %h and %p filled in
    assert (hosts["gw02"].user, hosts["gw02"].proxy_command) == ("gwadmin", "ip netns exec lab nc gw02 22")


def test_password_never_shows_in_repr(tmp_path):
    inventory = tmp_path / "hosts"
    inventory.write_text("[compute]\ncmp01 ansible_host=192.0.2.21 ansible_password=s3cr3t-pw\n")
    (host,) = load_inventory(inventory, ssh_config_path="/nonexistent")
    assert host.password == "s3cr3t-pw" and "s3cr3t-pw" not in repr(host)


def test_host_ranges():
    assert expand_host_pattern("cmp[01:03]") == ["cmp01", "cmp02", "cmp03"]
    assert expand_host_pattern("db-[a:c].example.com") == ["db-a.example.com", "db-b.example.com",
                                                            "db-c.example.com"]
    assert expand_host_pattern("c[1:7:3]") == ["c1", "c4", "c7"]


def test_limit_patterns_select_like_ansible():
    hosts = load_inventory(FIXTURES / "openstack-lab.ini", ssh_config_path="/nonexistent")
    names = lambda pattern: [h.name for h in select(hosts, pattern)]
    assert names("network") == ["net01"]
    assert names("compute:!cmp02") == ["cmp01", "cmp03", "cmp04.example.com"]
    assert names("openstack:&compute:!cmp0[13]") == ["cmp02", "cmp04.example.com"]
    assert names("gw01,vol-a") == ["gw01", "vol-a"]
    assert names("~^vol") == ["vol-a", "vol-b"]
    assert names("nothing-here") == []
    assert len(names(None)) == len(hosts)


@pytest.mark.parametrize("text, line, words", [
    ("[compute\ncmp01\n", 1, "not a section header"),
    ("[compute]\ncmp01 ansible_port\n", 2, "key=value"),
    ("[all:children]\nghosts\n", 2, "never defined"),
    ("[compute:vars]\nno equals sign\n", 2, "key=value"),
])
def test_bad_ini_is_reported_with_file_and_line(tmp_path, text, line, words):
    path = tmp_path / "hosts.ini"
    path.write_text(text)
    with pytest.raises(InventoryError) as error:
        load_inventory(path, ssh_config_path="/nonexistent")
    assert str(error.value).startswith(f"{path}:{line}: ") and words in str(error.value)


def test_bad_yaml_and_missing_files_are_clear(tmp_path):
    path = tmp_path / "hosts.yml"
    path.write_text("all:\n  hosts:\n    a: [1\n")
    with pytest.raises(InventoryError, match=r"hosts.yml:\d+: not valid YAML"):
        load_inventory(path, ssh_config_path="/nonexistent")
    with pytest.raises(InventoryError, match="cannot be read"):
        load_inventory(tmp_path / "absent", ssh_config_path="/nonexistent")
    path.write_text("all:\n  hosts:\n    a:\n      ansible_port: many\n")
    with pytest.raises(InventoryError, match="not a number"):
        load_inventory(path, ssh_config_path="/nonexistent")


def test_structure_mistakes_in_yaml_and_huge_ranges_are_reported(tmp_path):
    path = tmp_path / "hosts.yml"
    for text, words in [("all:\n  hosts: [a, b]\n", "'hosts:' must be a mapping"),
                        ("all:\n  vars: [x]\n", "'vars:' must be a mapping"),
                        ("all:\n  hosts:\n    n[0:99999999]:\n", "larger than 10000 hosts"),
                        ("all:\n  hosts:\n    n[1:3:0]:\n", "bad host range step")]:
        path.write_text(text)
        with pytest.raises(InventoryError, match=re.escape(words)):
            load_inventory(path, ssh_config_path="/nonexistent")
    hosts = load_inventory(FIXTURES / "openstack-lab.ini", ssh_config_path="/nonexistent")
    with pytest.raises(InventoryError, match="not a regular expression"):
        select(hosts, "~[unclosed")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.lists(st.sampled_from(list("[]:=\n #;-_.'\"{}abc019\t") + ["all:", "hosts:", "children:",
                                                                         "vars:", "\n  ", "\n    "]),
                     max_size=80).map("".join))
def test_nothing_typed_into_an_inventory_crashes_the_reader(tmp_path, text):
    for suffix in (".ini", ".yml"):
        path = tmp_path / f"fuzz{suffix}"
        path.write_text(text)
        try:
            load_inventory(path, ssh_config_path="/nonexistent")
        except InventoryError:
            pass
