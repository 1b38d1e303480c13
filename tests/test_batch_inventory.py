"""``python app.py batch`` with an inventory file as a lab: the practice lab (real
OpenSSH servers in network namespaces) is collected from first, the transcripts kept
under ``--out`` where the reports point, then diagnosed like any lab; a node of the
inventory that cannot be reached is listed with the collector's reason and the others
are still diagnosed.

Root only (network namespaces, sshd from openssh-server); elsewhere it skips with the
reason."""
from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from app import main


def _practice():
    from lab import netns, practice, sshd
    for ok, reason in (netns.available(), sshd.available()):
        if not ok:
            pytest.skip(reason)
    return practice


@pytest.mark.root
def test_an_inventory_lab_is_collected_then_diagnosed(tmp_path, capsys):
    practice = _practice()
    paths = practice.Paths(tmp_path / "lab")
    practice.up(["snat_wrong_interface"], "other", paths=paths)
    try:
        with socket.socket() as probe:                  # a loopback port nothing listens on
            probe.bind(("127.0.0.1", 0))
            closed_port = probe.getsockname()[1]
        inventory = tmp_path / "lab-11.ini"
        inventory.write_text(paths.inventory.read_text()
                             + f"\n[storage]\nvol11 ansible_host=127.0.0.1 ansible_port={closed_port}\n")
        out = tmp_path / "reports"
        code = main(["batch", str(inventory), "--format", "json", "--out", str(out),
                     "--workers", "1", "--db", str(tmp_path / "h.db")])
        err = capsys.readouterr().err
    finally:
        practice.down(paths=paths)
    evidence = out / "evidence" / "lab-11.ini"
    assert code == 1
    assert f"lab-11.ini: collected from its inventory into {evidence}" in err
    (lab,) = json.loads((out / "summary.json").read_text())["labs"]
    assert lab["lab"] == "lab-11.ini" and lab["error"] is None
    network = practice.NAMINGS["other"].network_host
    assert [(f["cause"], f["status"], f["node"]) for f in lab["findings"]] == [
        ("fip-snat-wrong-interface", "established", network)]
    # the finding's evidence lines are in the collected transcripts, kept under --out
    sources = {Path(line["source"]) for line in lab["findings"][0]["evidence"]}
    assert sources and all(evidence in s.parents and s.is_file() for s in sources)
    assert (evidence / network / "ip-route.txt").read_text().startswith(f"root@{network}:~# ip route\n")
    # the node that could not be reached: listed with the collector's own reason
    (unreachable,) = [u for u in lab["unparsed"] if u["node"] == "vol11"]
    assert unreachable["source"] == str(evidence / "vol11" / "unreachable.txt")
    assert unreachable["reason"] == (f"collector: vol11 (127.0.0.1 port {closed_port}) cannot be reached: "
                                     "Connection refused")
