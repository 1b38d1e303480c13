"""The seed's floating-IP testbed, for real, in Linux network namespaces.

``lab.netns``    primitives: namespaces, veth cables, bridges, addresses, routes, sysctls
``lab.testbed``  :class:`~lab.testbed.Testbed` - VM, compute-1, network-node, the physical
                 node gks-061 and an outside host, with the seed's faults as flags
``lab.capture``  real commands run on each node, returned as terminal transcripts, and
                 probes (ping, nc, tcpdump) that report what the kernel did
``lab.practice`` the practice lab (``app.py lab up|status|shell|inventory|down``): the
                 testbed kept up by a keeper process, an OpenSSH server per node reached
                 through a ProxyCommand inside the node's namespace, and an inventory
``lab.sshd``     those OpenSSH servers: keys, configuration, start, readiness
``lab.cli``      the ``lab`` command's arguments and handlers
"""
