"""The labs of a batch, and each lab's evidence.

A lab is a folder of evidence (nodes as sub-folders, or transcripts whose prompts name
the nodes, as ``diagnose`` reads them) or an inventory file to collect from first
(with the collectors of ``app.py collect``, into a folder the reports point at).
``--class DIR`` takes every sub-folder of DIR, and every inventory file in it, as a lab.

Evidence is read here, in the process that runs the batch, and handed to whoever
diagnoses it (a local process, a Dask worker on another machine) as text: a cluster
needs no shared file system.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from collectors.files import InputError, sources

# What an Ansible inventory file is called (INI or YAML); anything else beside the lab
# folders of a class is not a lab.
INVENTORY_SUFFIXES = {".ini", ".yml", ".yaml", ".cfg", ".inventory"}
INVENTORY_NAMES = {"hosts", "inventory"}


class BatchInputError(Exception):
    """The labs named cannot be listed at all (no such class folder ...)."""


@dataclass
class Lab:
    name: str                       # the folder's or the inventory's name, as reports show it
    path: str                       # as given on the command line
    key: str                        # where it lives (resolved): history follows a lab by it
    inventory: bool = False


@dataclass
class LabInput:
    """A lab's evidence, read: ``sources`` are (name, text, node) triples, or ``error``
    says why there is nothing to diagnose."""
    lab: Lab
    sources: list[tuple[str, str, str | None]] = field(default_factory=list)
    digest: str | None = None
    error: str | None = None
    collected_into: str | None = None   # an inventory lab: the folder its transcripts were written to


def natural_key(name: str) -> list:
    """lab-2 before lab-10, as a teacher reads a class list."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part)
            for part in re.split(r"(\d+)", name) if part]


def is_inventory(path: Path) -> bool:
    return path.suffix.lower() in INVENTORY_SUFFIXES or path.name.lower() in INVENTORY_NAMES


def find_labs(paths: list[str], class_dir: str | None) -> tuple[list[Lab], list[str]]:
    """The labs, in name order, and notes on what was passed over (a stray file in the
    class folder). Raises BatchInputError when a path cannot be used at all."""
    found: list[tuple[str, Path, bool]] = []
    skipped: list[str] = []
    if class_dir is not None:
        folder = Path(class_dir)
        if not folder.is_dir():
            raise BatchInputError(f"{class_dir}: no such class folder" if not folder.exists()
                                  else f"{class_dir}: --class wants a folder of labs")
        for entry in sorted(folder.iterdir()):
            if entry.name.startswith("."):
                continue
            if entry.is_dir():
                found.append((str(entry), entry, False))
            elif entry.is_file() and is_inventory(entry):
                found.append((str(entry), entry, True))
            else:
                skipped.append(f"{entry}: neither a lab folder nor an inventory file, passed over")
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found.append((given, path, False))
        elif path.is_file():
            # an inventory by its name; any other file is a lab of one transcript
            found.append((given, path, is_inventory(path)))
        else:
            # listed as an unusable lab, so one typo does not hide the others' results
            found.append((given, path, False))
    labs: dict[str, Lab] = {}
    names = [path.name or given for given, path, _ in found]
    for (given, path, inventory), name in zip(found, names):
        key = str(path.resolve())
        if any(lab.key == key for lab in labs.values()):
            continue                                    # named twice: diagnosed once
        shown = name if names.count(name) == 1 else given.rstrip("/")
        labs[shown] = Lab(shown, given, key, inventory)
    if not labs:
        raise BatchInputError("no labs: name lab folders or inventory files, or --class DIR")
    return sorted(labs.values(), key=lambda lab: natural_key(lab.name)), skipped


def evidence_folder_name(lab: Lab) -> str:
    """Where an inventory lab's transcripts go inside the batch's evidence folder."""
    return re.sub(r"[^A-Za-z0-9._@-]", "_", lab.name).lstrip(".") or "lab"


def collect_inventory(lab: Lab, into: Path, rules: str | None = None) -> Path:
    """Collect from the inventory's hosts into ``into`` (``<node>/<command>.txt``, as
    ``app.py collect`` writes them) and return it: the folder is kept, because the
    reports point at its files and lines. A host that cannot be reached is recorded
    there (``<node>/unreachable.txt``) and the others are diagnosed; a lab none of
    whose hosts could be collected from is unusable input, with each host's reason."""
    from collectors.collect import CollectError, collect
    from collectors.inventory import InventoryError, load_inventory
    from collectors.knowledge import RULES_DIR, KnowledgeError, load_knowledge
    try:
        knowledge = load_knowledge(rules or RULES_DIR)
        hosts = load_inventory(lab.path)
        if not hosts:
            raise InputError(f"{lab.path}: the inventory lists no hosts")
        collection = collect(hosts, knowledge, into, progress=False)
    except (InventoryError, KnowledgeError, CollectError) as error:
        raise InputError(f"{lab.path}: {error}") from None
    except OSError as error:
        raise InputError(f"{getattr(error, 'filename', None) or into}: {error.strerror or error}") from None
    if not collection.reached:
        reasons = "; ".join(f"{h.host.name}: {h.failure}" for h in collection.hosts)
        raise InputError(f"{lab.path}: no node could be collected from ({reasons}); "
                         f"what was tried is recorded in {into}")
    return into


def read_lab(lab: Lab, evidence_root: Path | None = None, rules: str | None = None) -> LabInput:
    """The lab's evidence as text, and a digest of it that does not depend on where the
    folder lives (so a moved class still compares with its history). An inventory lab
    is collected first, into ``evidence_root/<lab>/``."""
    try:
        if lab.inventory:
            if evidence_root is None:
                raise InputError(f"{lab.path}: an inventory needs a folder to collect into")
            folder = collect_inventory(lab, Path(evidence_root) / evidence_folder_name(lab), rules)
        else:
            folder = Path(lab.path)
            if not folder.exists():
                raise InputError(f"{lab.path}: no such file or directory")
        found = sources([str(folder)])
    except InputError as error:
        return LabInput(lab, error=str(error))
    digest = hashlib.sha256()
    for source in found:
        place = Path(source.name)
        relative = place.relative_to(folder).as_posix() if folder.is_dir() else place.name
        digest.update(relative.encode() + b"\0" + source.text.encode() + b"\0")
    return LabInput(lab, [(s.name, s.text, s.node) for s in found], digest.hexdigest(),
                    collected_into=str(folder) if lab.inventory else None)
