"""Where evidence comes from, before grammar/ reads it.

``collectors.files``     files, folders and standard input (``diagnose PATH...``)
``collectors.knowledge`` which commands to run on which node: rules/collect.yaml (base
                         set, roles, read-only allowlist) plus the commands the symptom
                         and rule files name
``collectors.inventory`` Ansible inventories (INI, YAML) and ~/.ssh/config aliases
``collectors.ssh``       one node over SSH (paramiko) or this machine: bounded,
                         quoted, host keys checked
``collectors.collect``   every node in parallel into ``OUT/<node>/<command>.txt``
                         transcripts, redacted, with what went wrong recorded
``collectors.cli``       ``app.py collect`` and ``app.py diagnose --inventory``
"""
