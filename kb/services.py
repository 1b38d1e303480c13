"""One name per OpenStack service, whatever the distribution calls it.

Ubuntu runs ``nova-compute`` and logs ``/var/log/nova/nova-compute.log``; RHEL/CentOS
(RDO) runs ``openstack-nova-compute`` and logs ``/var/log/nova/compute.log``; systemd
says ``nova-compute.service``. Rules reason about the service, not the file name.

>>> canonical_service("openstack-nova-compute.service")
'nova-compute'
>>> service_for_log("/var/log/nova/compute.log")
'nova-compute'
>>> service_for_log("/var/log/cinder/cinder-api.log")
'cinder-api'
>>> service_for_log("evidence/volume01/cinder-volume.log")
'cinder-volume'
"""
from __future__ import annotations

import re

_ALIASES = {
    "rabbitmq": "rabbitmq-server", "rabbit": "rabbitmq-server",
    "mysqld": "mysql", "mariadb": "mysql", "mysql-server": "mysql",
    "openstack-keystone": "keystone", "keystone-all": "keystone",
}
_PROJECTS = ("nova", "glance", "cinder", "keystone", "neutron", "heat", "swift", "horizon")


def canonical_service(name: str | None) -> str | None:
    if not name:
        return name
    service = name.strip().rsplit("/", 1)[-1].removesuffix(".service")
    service = service.removeprefix("openstack-")
    return _ALIASES.get(service, service)


def service_for_log(path: str | None) -> str | None:
    """The service whose log a path is, or None when the path says nothing."""
    if not path:
        return None
    match = re.search(r"/var/log/([^/]+)/([^/]+?)(?:\.log(?:\.\d+)?)?$", path)
    if not match:
        # A log copied out of /var/log keeps its name: cinder-volume.log, nova-api.log.1
        named = re.search(r"(?:^|[/_.-])((?:%s)-[a-z]+(?:-[a-z]+)?)\.log(?:\.\d+)?$"
                          % "|".join(_PROJECTS), path)
        return canonical_service(named.group(1)) if named else None
    project, stem = match.groups()
    if project in {"rabbitmq", "mysql"}:
        return canonical_service(project)
    if stem.startswith(project + "-") or stem == project:
        return canonical_service(stem)
    if project in _PROJECTS:
        return f"{project}-{stem}"  # RDO names the file after the binary's suffix
    return canonical_service(stem)


def project_of(service: str | None) -> str | None:
    """nova-compute -> nova; glance-registry -> glance."""
    if not service:
        return None
    return service.split("-", 1)[0]
