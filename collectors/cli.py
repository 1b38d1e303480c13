"""``app.py collect`` and ``app.py diagnose --inventory``: argparse wiring and handlers.

    python app.py collect --inventory FILE [--limit PATTERN] [--out DIR] [--accept-new]
                          [--keep-secrets] [--known-hosts FILE] [--rules DIR]
    python app.py collect --local [--out DIR] [--role ROLE ...]
    python app.py diagnose --inventory FILE [--limit PATTERN] [--evidence DIR] ...

``collect`` writes the transcripts and says, on standard error, what it collected and
what went wrong where. Exit status: 0 every node collected, 1 some nodes could not be
collected (what the others gave is written all the same), 2 unusable input (inventory,
rule file, output folder) or no node at all could be collected, 130 interrupted by
Ctrl-C (what was collected until then is written and listed).
"""
from __future__ import annotations

import sys
from pathlib import Path


def _add_source_options(parser) -> None:
    parser.add_argument("--inventory", metavar="FILE", help="an Ansible inventory (INI or YAML)")
    parser.add_argument("--limit", metavar="PATTERN",
                        help="only these hosts or groups (Ansible's patterns: web,!web3,&prod)")
    parser.add_argument("--accept-new", action="store_true",
                        help="add unknown host keys to known_hosts (a changed key is still refused)")
    parser.add_argument("--keep-secrets", action="store_true",
                        help="do not replace passwords and keys in the collected files by ***")
    parser.add_argument("--known-hosts", metavar="FILE",
                        help="the known_hosts file (default: the inventory's UserKnownHostsFile, "
                             "else ~/.ssh/known_hosts)")
    parser.add_argument("--ssh-config", metavar="FILE", help="SSH config for host aliases (default ~/.ssh/config)")


def add_collect_command(commands) -> None:
    collect = commands.add_parser("collect", help="gather the evidence from a lab's nodes over SSH")
    _add_source_options(collect)
    collect.add_argument("--local", action="store_true", help="run the same commands on this machine")
    collect.add_argument("--role", action="append", default=[], metavar="ROLE",
                         help="with --local: a role of this machine (network, compute, controller, "
                              "volume, image, gateway); may repeat; without it, the base set only")
    collect.add_argument("--out", metavar="DIR", help="where to write DIR/<node>/<command>.txt "
                         "(default ./stackdoc-evidence-<time>)")
    collect.add_argument("--rules", metavar="DIR", help="the rules folder (default: the built-in rules)")
    collect.set_defaults(handler=run_collect)


def add_inventory_options(diagnose) -> None:
    """``diagnose --inventory FILE``: collect first, then diagnose what was collected."""
    _add_source_options(diagnose)
    diagnose.add_argument("--evidence", metavar="DIR",
                          help="with --inventory: where to write the collected transcripts the "
                               "report points at (default ./stackdoc-evidence-<time>)")


def _say(text: str) -> None:
    sys.stderr.write(text if text.endswith("\n") else text + "\n")


def _collect(args, out_dir: Path):
    """Collect as the arguments say; returns (collection, exit status on failure or None)."""
    from collectors.collect import CollectError, Interrupted, collect, collect_local
    from collectors.inventory import InventoryError, load_inventory, select
    from collectors.knowledge import KnowledgeError, RULES_DIR, load_knowledge

    try:
        knowledge = load_knowledge(getattr(args, "rules", None) or RULES_DIR)
        if getattr(args, "local", False):
            return collect_local(knowledge, out_dir, groups=args.role, keep_secrets=args.keep_secrets), None
        hosts = load_inventory(args.inventory, ssh_config_path=args.ssh_config)
        chosen = select(hosts, args.limit)
        if not chosen:
            _say(f"stackdoc: --limit {args.limit!r} matches none of the {len(hosts)} hosts of {args.inventory}")
            return None, 2
        return collect(chosen, knowledge, out_dir, accept_new=args.accept_new,
                       keep_secrets=args.keep_secrets, known_hosts=args.known_hosts), None
    except Interrupted as interrupted:
        _say(interrupted.collection.summary())
        _say(f"stackdoc: interrupted; what was collected is in {out_dir}")
        return None, 130
    except (InventoryError, KnowledgeError, CollectError) as error:
        _say(f"stackdoc: {error}")
        return None, 2
    except OSError as error:
        _say(f"stackdoc: {getattr(error, 'filename', '') or out_dir}: {error.strerror or error}")
        return None, 2


def run_collect(args) -> int:
    from collectors.collect import default_out_dir

    if bool(args.local) == bool(args.inventory):
        _say("stackdoc: collect needs --inventory FILE or --local (one of them)")
        return 2
    out_dir = Path(args.out) if args.out else default_out_dir()
    collection, failed = _collect(args, out_dir)
    if collection is None:
        return failed
    _say(collection.summary())
    if not collection.reached:
        return 2
    return 0 if len(collection.reached) == len(collection.hosts) else 1


def run_diagnose_inventory(args, run_diagnose) -> int:
    """Collect from the inventory, then ``run_diagnose`` (app.py's) on what was collected."""
    if not args.inventory:
        _say("stackdoc: diagnose needs PATH... or --inventory FILE")
        return 2
    if args.paths:
        _say("stackdoc: give either PATH... or --inventory FILE, not both")
        return 2
    from collectors.collect import default_out_dir

    args.local = False
    # kept, because the report points at its files and lines
    out_dir = Path(args.evidence) if args.evidence else default_out_dir()
    collection, failed = _collect(args, out_dir)
    if collection is None:
        return failed
    _say(collection.summary())
    args.paths = [str(out_dir)]
    return run_diagnose(args)
