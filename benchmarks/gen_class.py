"""A class of labs from the real namespace captures, each lab named and numbered its own way.

``python -m benchmarks.gen_class DEST [COUNT]`` writes COUNT lab folders (default 200)
under DEST, ``lab-001`` ... , each a copy of one capture of ``tests/fixtures/labs/``
(the seed's testbed and the differently named one, healthy or with some of the seed's
faults) with its nodes renamed and its private addresses renumbered, the way twenty
students' labs differ. What the kernel's tools printed is kept byte for byte otherwise.

Renaming keeps the captures true to what the tools would have printed:
  * a node name is replaced wherever it stands as a whole word (the prompt, and the
    names iptables resolves addresses to), and its transcript file is renamed with it;
  * a private address changes only in its second octet (10.X, 172.16-31.X), by a shift
    that is one-to-one and keeps the number of digits, so every /16 and longer prefix
    stays aligned and every column as wide as it was;
  * documentation (outside) addresses, loopback and link-local addresses stay as they are.

Which faults each capture was built with is in its ``case.json`` (``case_meta``), so
a test can check a batch against the faults put in, not against what stackdoc printed
last time.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

LABS = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "labs"

_ROLE_SHORT = {"vm": "vm", "compute": "cmp", "network": "net", "gateway": "gw", "outside": "ext"}
_ADDRESS = re.compile(r"(?<![\d.])(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?![\d.])")


def cases() -> list[str]:
    return sorted(p.name for p in LABS.iterdir() if (p / "case.json").exists())


def case_meta(case: str) -> dict:
    return json.loads((LABS / case / "case.json").read_text())


def node_names(case: str, number: int) -> dict[str, str]:
    """Captured node name -> this lab's, in one of four schemes (the first keeps them:
    many classes give every student the same host names)."""
    nodes = case_meta(case)["nodes"]          # role -> captured name
    scheme = number % 4
    if scheme == 0:
        return {name: name for name in nodes.values()}
    if scheme == 1:
        return {name: f"{_ROLE_SHORT[role]}{number:02d}" for role, name in nodes.items()}
    if scheme == 2:
        return {name: f"lab{number:02d}-{role}" for role, name in nodes.items()}
    return {name: f"s{number:02d}-{name}" for role, name in nodes.items()}


def _shift(value: int, number: int) -> int:
    """A one-to-one shift of a second octet that keeps its number of digits."""
    if value < 10:
        return (value + number) % 10
    if value < 100:
        return 10 + (value - 10 + 7 * number) % 90
    return 100 + (value - 100 + 11 * number) % 156


def renumber(text: str, number: int) -> str:
    def replace(match: re.Match) -> str:
        a, b, c, d = (int(part) for part in match.groups())
        if a == 10:
            b = _shift(b, number)
        elif a == 172 and 16 <= b <= 31:
            b = 16 + (b - 16 + number) % 16
        else:
            return match.group(0)
        return f"{a}.{b}.{c}.{d}"
    return _ADDRESS.sub(replace, text)


def rename(text: str, names: dict[str, str]) -> str:
    for old, new in names.items():
        if old != new:
            text = re.sub(rf"(?<![\w.-]){re.escape(old)}(?![\w-])", new, text)
    return text


def write_lab(case: str, destination: Path, number: int, node_folders: bool = False) -> Path:
    """Lab ``number``'s copy of ``case`` in ``destination`` (created): ``<node>.txt`` per
    node, or ``<node>/session.txt`` with ``node_folders``."""
    names = node_names(case, number)
    destination.mkdir(parents=True, exist_ok=True)
    for capture in sorted((LABS / case).glob("*.txt")):
        node = names.get(capture.stem, capture.stem)
        text = renumber(rename(capture.read_text(), names), number)
        target = destination / node / "session.txt" if node_folders else destination / f"{node}.txt"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return destination


def write_class(destination: Path, count: int, width: int = 3) -> dict[str, str]:
    """``count`` labs, cycling through the captures; lab name -> the case it copies."""
    all_cases = cases()
    made = {}
    for index in range(count):
        number = index + 1
        case = all_cases[(index * 7) % len(all_cases)]   # neighbours differ
        name = f"lab-{number:0{width}d}"
        write_lab(case, destination / name, number, node_folders=number % 2 == 0)
        made[name] = case
    return made


def main(argv: list[str]) -> int:
    if not argv or len(argv) > 2:
        print("usage: python -m benchmarks.gen_class DEST [COUNT]", file=sys.stderr)
        return 2
    made = write_class(Path(argv[0]), int(argv[1]) if len(argv) > 1 else 200)
    print(f"{len(made)} labs in {argv[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
