"""``app.py lab up|status|shell|inventory|down``: argparse wiring and handlers.

Exit status: 0 done, 2 when it cannot be done (not root, no sshd, no lab up, a lab
already up, an unknown fault or node), with the reason on standard error.
"""
from __future__ import annotations

import os
import sys


def add_lab_command(commands) -> None:
    lab = commands.add_parser("lab", help="the practice lab: the seed's testbed with a real sshd per node")
    actions = lab.add_subparsers(dest="lab_action", required=True, parser_class=type(lab))
    up = actions.add_parser("up", help="build the lab (needs root)")
    up.add_argument("--faults", default="", metavar="ID,...",
                    help="faults to build in, comma-separated (see lab/testbed.py FAULTS)")
    up.add_argument("--naming", choices=("seed", "other"), default="seed",
                    help="the seed's host names and addresses, or a lab sharing none of them")
    actions.add_parser("status", help="what is up")
    shell = actions.add_parser("shell", help="a root shell on a node")
    shell.add_argument("node", metavar="NODE", help="a node's host name or role")
    actions.add_parser("inventory", help="print the lab's inventory (its known_hosts is beside it)")
    actions.add_parser("down", help="remove everything the lab made")
    lab.set_defaults(handler=run_lab)


def run_lab(args) -> int:
    from lab import practice

    try:
        if args.lab_action == "up":
            faults = [f.strip() for f in args.faults.split(",") if f.strip()]
            state = practice.up(faults, args.naming)
            sys.stdout.write(practice.status())
            print(f"collect: python app.py collect --inventory {practice.Paths(practice.state_dir()).inventory}")
            return 0
        if args.lab_action == "status":
            sys.stdout.write(practice.status())
            return 0
        if args.lab_action == "shell":
            argv, env = practice.shell_argv(args.node)
            sys.stdout.flush()
            os.execvpe(argv[0], argv, env)
        if args.lab_action == "inventory":
            paths = practice.Paths(practice.state_dir())
            if not paths.inventory.exists():
                raise practice.LabError("no practice lab is up (python app.py lab up)")
            sys.stdout.write(paths.inventory.read_text())
            print(f"# written to {paths.inventory}; host keys in {paths.known_hosts}", file=sys.stderr)
            return 0
        if args.lab_action == "down":
            if os.geteuid() != 0:
                raise practice.LabError("lab down needs root, as lab up did")
            done = practice.down()
            print("\n".join(done) if done else "no practice lab was up; nothing to remove")
            return 0
    except practice.LabError as error:
        print(f"stackdoc: {error}", file=sys.stderr)
        return 2
    return 2
