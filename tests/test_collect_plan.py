"""The read-only allowlist of rules/collect.yaml: what the knowledge asks for runs, what
would change a node (or read its password hashes) never does."""
import pytest

from collectors.knowledge import load_knowledge, split_commands

READS = [
    "ip addr show", "ip -4 addr", "ip -o addr show dev eth0", "ip route", "ip route show table main",
    "ip route get 203.0.113.10", "ip rule", "ip neigh",
    "iptables -t nat -L -v -n", "iptables -L FORWARD -v -n", "iptables -L -t nat -v",
    "iptables -L --line-numbers -n", "iptables -S", "iptables -t nat -S nova-network-snat",
    "iptables-save", "iptables-save -c", "iptables-save -t nat",
    "sysctl net.ipv4.ip_forward", "sysctl -a", "sysctl -n net.ipv4.conf.all.rp_filter",
    "route -n", "netstat -rn", "ss -ltn", "ss -tulpn", "df -h", "df -h /var/lib/nova/instances",
    "cat /etc/nova/nova.conf", "tail -n 50 /var/log/cinder/cinder-api.log",
    "head -n 20 /var/log/nova/nova-compute.log", "grep glance_api_servers /etc/cinder/cinder.conf",
    "grep -n rabbit_host /etc/nova/nova.conf", "dpkg -l qemu-utils", "dpkg -s qemu-utils",
    "rpm -q qemu-img", "service glance-api status", "systemctl status nova-compute",
    "systemctl is-active rabbitmq-server", "nova-manage service list", "nova-manage floating list",
    "ps aux", "ps -ef", "pgrep -l nova-compute", "pgrep -a rabbitmq", "rabbitmqctl status",
    "du -sh /var/lib/nova/instances", "du -ah --max-depth=1 /var/lib/nova/instances",
]
CHANGES = [
    "ip route add default via 192.0.2.1", "ip route del default", "ip addr add 192.0.2.5/24 dev eth0",
    "ip link set eth0 down", "ip route flush table main",
    "iptables -F", "iptables -P FORWARD DROP", "iptables -t nat -A POSTROUTING -j MASQUERADE",
    "iptables -L -Z", "iptables -D FORWARD 1", "iptables -X", "iptables-restore",
    "sysctl -w net.ipv4.ip_forward=1", "sysctl net.ipv4.ip_forward=0", "sysctl -p",
    "service nova-network restart", "systemctl stop nova-compute", "nova-manage floating create 10.0.0.0/24",
    "cat /etc/shadow", "cat /etc/ssh/ssh_host_ed25519_key", "cat /etc/ssl/private/server.key",
    "cat /etc/../root/.ssh/id_rsa", "cat /root/.bash_history", "tail -f /var/log/syslog",
    "grep -r password /etc", "cat /etc/nova/nova.conf > /dev/null", "rm -rf /var/log/nova",
    "dpkg -i qemu-utils.deb", "dpkg -r qemu-utils", "tcpdump -n -i eth0 icmp",
    "sh -c 'ip route'", "bash", "sudo ip route", "cat /etc/nova/nova.conf; reboot",
    "rabbitmqctl stop_app", "rabbitmqctl delete_user guest", "pkill nova-compute", "du -sh /root",
    "pgrep -l 'nova; reboot'", "ps aux; reboot",
]


@pytest.fixture(scope="module")
def knowledge():
    return load_knowledge()


@pytest.mark.parametrize("command", READS)
def test_reading_commands_are_allowed(knowledge, command):
    import shlex
    assert knowledge.allowed(shlex.split(command))


@pytest.mark.parametrize("command", CHANGES)
def test_changing_or_secret_reading_commands_are_not(knowledge, command):
    import shlex
    assert not knowledge.allowed(shlex.split(command))


def test_every_command_the_shipped_knowledge_plans_is_allowed_and_none_is_lost_silently(knowledge):
    for groups in (["network"], ["compute"], ["gateway"], ["volume"], ["image"], ["controller"], []):
        plan = knowledge.plan(groups)
        assert plan.roles == groups
        assert plan.commands and all(knowledge.allowed(c.argv) for c in plan.commands)
        for skipped in plan.skipped:
            assert skipped.reason and skipped.origin


def test_compound_steps_split_into_commands():
    assert split_commands("iptables -L FORWARD -v -n; sysctl net.ipv4.ip_forward") == [
        "iptables -L FORWARD -v -n", "sysctl net.ipv4.ip_forward"]


def test_roles_come_from_group_names(knowledge):
    assert knowledge.roles_of(["Network-Nodes", "openstack"]) == {"network"}
    assert knowledge.roles_of(["cinder", "glance"]) == {"volume", "image"}
    assert knowledge.roles_of(["webservers"]) == set()
    roleless = knowledge.plan(["webservers"])
    assert roleless.roles == []
    assert {c.text for c in knowledge.plan(["network"]).commands} > {c.text for c in roleless.commands}
    assert {c.text for c in knowledge.base} <= {c.text for c in roleless.commands}


def test_a_rules_folder_without_a_collect_file_uses_the_built_in_one(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "rabbit.yaml").write_text(
        "cause: rabbit-host-wrong\ntitle: t\nwhen:\n  a: {type: x}\nstatus: possible\n"
        "decide_by:\n  - \"On the controller: systemctl status rabbitmq-server. Stopped means ...\"\n")
    knowledge = load_knowledge(tmp_path / "mine")
    commands = [c.text for c in knowledge.plan(["controller"]).commands]
    assert "ip route" in commands and "systemctl status rabbitmq-server" in commands
    with pytest.raises(ValueError, match="no such rules folder"):
        load_knowledge(tmp_path / "absent")


def test_the_same_output_is_collected_once(knowledge):
    commands = [c.text for c in knowledge.plan(["volume"]).commands]
    # the symptom's "ip addr show" and a decide_by's "ip addr" print the same
    assert ("ip addr show" in commands) != ("ip addr" in commands)
