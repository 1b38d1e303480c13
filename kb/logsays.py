"""What OpenStack service logs say about the services' links: to the message broker,
to the database, to keystone, to the disk and to iSCSI targets.

Each fact is neutral: it says what a service on a node logged (which host it tried,
which user was refused), never which cause that makes; rules/**.yaml decide. The
message texts are those the services' sources print (oslo.messaging's rabbit driver,
SQLAlchemy with MySQLdb or PyMySQL, the keystone auth_token middleware in
keystoneclient and keystonemiddleware, keystone's own token controller and wsgi layer,
nova's and cinder's processutils errors, the clients' refused connections); the file,
function and release of each are listed in rules/examples/SOURCES.md.

A log is a timeline: only the latest broker state of a service counts, so
``amqp_link`` is one fact per node and service, from its last AMQP line ("unreachable"
followed later by "Reconnected" is history). Order is the evidence's own: a later
line of the same file, or a later file as the evidence was read.

>>> _amqp_state("AMQP server on 192.0.2.10:5672 is unreachable: [Errno 111] ECONNREFUSED. Trying again in 1 seconds.")
('192.0.2.10', '5672', False, '[Errno 111] ECONNREFUSED')
>>> _amqp_state("[8f0c] Reconnected to AMQP server on 192.0.2.10:5672 via [amqp] client with port 40712.")
('192.0.2.10', '5672', True, None)
"""
from __future__ import annotations

import re

from kb.addresses import address_int
from kb.facts import FactTable
from kb.services import canonical_service, service_for_log

FACT_TYPES = {
    "amqp_link": {
        "doc": "the latest state of SERVICE's connection to its AMQP broker on NODE, from its "
               "log (oslo.messaging: 'AMQP server on H:P is unreachable', 'Connected'/'Reconnected "
               "to AMQP server on H:P'); earlier lines of the same service are history",
        "fields": {"service": "the service whose log it is (nova-compute, cinder-volume ...)",
                   "host": "the broker host it tried", "port": "its port",
                   "reachable": "true when the latest line says it connected",
                   "error": "the error of the latest failure, or empty",
                   "loopback": "true when HOST is the node itself (localhost, 127.x)",
                   "host_node": "the node the evidence shows holding HOST, or empty",
                   "failures": "how many 'unreachable' lines came before the latest state",
                   "broker_at_host": "what the evidence shows of a broker on HOST_NODE: running "
                                     "(its status, or something listening on PORT), stopped, absent "
                                     "(no such service there: unrecognized, not-found), not-listening "
                                     "(its listening sockets shown, PORT not among them), or empty "
                                     "(not shown)",
                   "broker_elsewhere": "a node other than HOST_NODE where the evidence shows a "
                                       "broker running, or empty"}},
    "db_login_refused": {
        "doc": "the database refused SERVICE's login on NODE: MySQL error 1045 'Access denied "
               "for user U@H (using password: YES)' in its log or a command's traceback",
        "fields": {"service": "the service (nova-conductor, glance-api ...) or the command",
                   "user": "the database user", "client": "the client host MySQL saw",
                   "using_password": "YES or NO, as MySQL printed it",
                   "credentials_of": "whose configuration holds the credential: nova, cinder, "
                                     "keystone, neutron (one file per project) or glance-api, "
                                     "glance-registry (one file each)"}},
    "keystone_auth_refused": {
        "doc": "the keystone auth_token middleware of SERVICE on NODE could not get or use its "
               "own token: keystone answered 401 ('Unexpected response from keystone service', "
               "'Identity response: ... 401', 'Authorization failed for token')",
        "fields": {"service": "the service whose API refused", "message": "the log message",
                   "credentials_of": "whose configuration holds its [keystone_authtoken] "
                                     "credentials (nova, cinder, glance-api ...)",
                   "project": "the service's project (nova, cinder, glance ...): the name its "
                              "keystone user has in the install guides"}},
    "keystone_login_failed": {
        "doc": "keystone on NODE logged a failed authentication from CLIENT "
               "('Authorization failed. ... from ADDRESS')",
        "fields": {"client": "the address the request came from", "message": "the log message"}},
    "keystone_tenant_refused": {
        "doc": "keystone on NODE refused USER a token for TENANT for want of a role there "
               "('User U is unauthorized for tenant T')",
        "fields": {"user": "the user (its id or name, as logged)", "tenant": "the tenant",
                   "message": "the log message"}},
    "disk_full_error": {
        "doc": "SERVICE on NODE failed writing: 'No space left on device' (errno 28) in its log",
        "fields": {"service": "the service", "message": "the log message"}},
    "connection_refused": {
        "doc": "a client on NODE had its connection to HOST:PORT refused (nothing listened there when it "
               "tried): a CLI's 'Unable to establish connection to http://H:P' / '[Errno 111] Connection "
               "refused', a service's log ('Error communicating with http://H:P [Errno 111] ECONNREFUSED', "
               "MySQL's 2003 'Can't connect to MySQL server on H (111)'), or the latest AMQP line of a "
               "service ('AMQP server on H:P is unreachable: [Errno 111] ECONNREFUSED'). cinder's refusals "
               "by glance are glance_unreachable instead",
        "fields": {"client": "the client: the CLI (nova, glance ...) or the service whose log it is",
                   "host": "the host it tried, as it names it", "port": "the port, a number",
                   "loopback": "true when HOST is NODE itself (localhost, 127.x, an address of NODE)",
                   "host_node": "the node the evidence shows holding HOST (its address, or its name), or empty",
                   "service_node": "HOST_NODE, else HOST as the client names it: where the port's "
                                   "service was looked for",
                   "port_listening": "true when SERVICE_NODE's listening sockets (ss / netstat -l) "
                                     "include PORT, false when they were shown without it, empty when "
                                     "none were shown"}},
    "iscsi_command_failed": {
        "doc": "an iscsiadm command nova or cinder ran on NODE failed (its 'Unexpected error while "
               "running command' log: Command, Exit code, Stderr)",
        "fields": {"service": "the service that ran it", "portal": "the portal address (-p) it named",
                   "port": "the portal's port", "exit_code": "iscsiadm's exit status",
                   "stderr": "what iscsiadm printed on stderr"}},
}

# oslo.messaging's rabbit driver, 2014 to now; newer lines start with "[<connection uuid>] ".
_AMQP_DOWN = re.compile(r"AMQP server on (?P<host>[^\s:]+):(?P<port>\d+) is unreachable: (?P<err>.*?)\. Trying again")
_AMQP_UP = re.compile(r"\b(?:Reconnected|Connected) to AMQP server on (?P<host>[^\s:]+):(?P<port>\d+)")
# MySQLdb: (1045, "Access denied for user 'nova'@'10.0.0.5' (using password: YES)");
# PyMySQL prints the same tuple inside "(pymysql.err.OperationalError) ...".
_ACCESS_DENIED = re.compile(r"\(1045, [\"']Access denied for user '(?P<user>[^']*)'@'(?P<client>[^']*)' "
                            r"\(using password: (?P<pw>YES|NO)\)")
_AUTH_TOKEN_LOGGER = re.compile(r"(?:keystoneclient\.middleware|keystonemiddleware)\.auth_token")
_AUTH_TOKEN_401 = re.compile(r"Unexpected response from keystone service|Identity response: .*\b401\b"
                             r"|Authorization failed for token|Identity server rejected authorization")
_KEYSTONE_FAILED = re.compile(r"Authorization failed\. .* from (?P<client>[0-9a-fA-F.:]+)\s*$")
_TENANT_REFUSED = re.compile(r"User (?P<user>\S+) is unauthorized for tenant (?P<tenant>\S+?)\.?$")
_NO_SPACE = re.compile(r"No space left on device|\[Errno 28\]")
_ISCSI_COMMAND = re.compile(r"Command: .*\biscsiadm\b(?P<args>[^\n]*)")
_PORTAL = re.compile(r"(?:-p|--portal)\s+(?P<host>\[[^\]]+\]|[^\s:,]+)(?::(?P<port>\d+))?")
_EXIT = re.compile(r"Exit code: (?P<code>-?\d+)")
_STDERR = re.compile(r"Stderr: u?(?P<q>['\"])(?P<text>.*?)(?:\\n)?(?P=q)", re.S)


def _amqp_state(text: str):
    down = _AMQP_DOWN.search(text)
    if down:
        return down["host"], down["port"], False, down["err"]
    up = _AMQP_UP.search(text)
    if up:
        return up["host"], up["port"], True, None
    return None


def _text(entry: dict) -> str:
    return "\n".join(str(entry.get(k) or "") for k in ("message", "exception_message"))


def _service(entry: dict) -> str | None:
    prov = entry.get("prov") or {}
    return (service_for_log(entry.get("path")) or service_for_log(prov.get("source"))
            or canonical_service(str(entry.get("logger") or "").split(".", 1)[0] or None))


def _credentials_of(service: str | None) -> str | None:
    """glance keeps one configuration file per service; the others one per project."""
    if not service:
        return service
    project = service.split("-", 1)[0]
    return service if project == "glance" else project


def _order(fact: dict):
    prov = fact.get("prov") or {}
    return fact.get("fact_id", 0), prov.get("line") or 0


def _is_loopback(host: str, node, owned: set) -> bool:
    return host == "localhost" or host.startswith("127.") or host == "::1" or (node, host) in owned


_ABSENT_STATES = {"unrecognized service", "not-found", "unknown job", "unknown instance"}


def _is_broker(service) -> bool:
    name = canonical_service(str(service or ""))
    return name == "rabbitmq-server" or name.startswith("rabbit@")


def _brokers(table: FactTable) -> dict:
    """node -> (running / stopped / absent, the fact saying so), from the last rabbit status of each node, a
    listening AMQP port counting as running."""
    state: dict = {}
    for status in table.of("service_status"):
        if _is_broker(status.get("service")):
            state[status.get("node")] = ("running" if status.get("running") else
                                         "absent" if status.get("state") in _ABSENT_STATES else "stopped",
                                         status)
    listed: dict = {}
    for socket in table.of("listening"):
        listed.setdefault(socket.get("node"), socket)
        if socket.get("port") == 5672 or socket.get("process") in ("beam.smp", "beam"):
            state[socket.get("node")] = ("running", socket)
    for node, socket in listed.items():
        state.setdefault(node, ("not-listening", socket))  # a status said, says more
    return state


def amqp_links(table: FactTable) -> None:
    brokers = _brokers(table)
    owned = {(f.get("node"), f.get("address")) for f in table.of("owns_address")}
    holder = {}
    for fact in table.of("owns_address"):
        holder.setdefault(fact.get("address"), fact.get("node"))
    latest: dict[tuple, tuple] = {}
    failures: dict[tuple, int] = {}
    for entry in sorted(table.of("log_entry"), key=_order):
        state = _amqp_state(_text(entry))
        if state is None:
            continue
        key = (entry.get("node"), _service(entry))
        failures[key] = 0 if state[2] else failures.get(key, 0) + 1
        latest[key] = (entry, state)
    for (node, service), (entry, (host, port, reachable, error)) in latest.items():
        loopback = _is_loopback(host, node, owned)
        host_node = node if loopback else holder.get(host)
        elsewhere = sorted(n for n, (state, _) in brokers.items() if state == "running" and n != host_node
                           and n is not None)
        shown = [brokers[n][1] for n in {host_node, *elsewhere[:1]} if n in brokers]
        said = (f"{service or 'a service'} on {node} last logged that it "
                + (f"connected to the AMQP broker at {host}:{port}" if reachable
                   else f"cannot reach the AMQP broker at {host}:{port} ({error})"))
        table.derive("amqp_link", node, [entry, *shown], said, service=service, host=host, port=port,
                     reachable=reachable, error=error, loopback=loopback, host_node=host_node,
                     failures=failures.get((node, service), 0),
                     broker_at_host=brokers[host_node][0] if host_node in brokers else None,
                     broker_elsewhere=elsewhere[0] if elsewhere else None)


def db_logins(table: FactTable) -> None:
    done = set()
    for fact in table.of("log_entry") + table.of("traceback"):
        text = _text(fact) if fact["type"] == "log_entry" else str(fact.get("exception_message") or "")
        found = _ACCESS_DENIED.search(text)
        if not found:
            continue
        service = _service(fact) if fact["type"] == "log_entry" else \
            canonical_service(str((fact.get("prov") or {}).get("command") or "").split(" ")[0] or None)
        key = (fact.get("node"), service, found["user"], found["client"])
        if key in done:
            continue
        done.add(key)
        table.derive("db_login_refused", fact.get("node"), [fact],
                     f"MySQL refused {service}'s login on {fact.get('node')} as "
                     f"'{found['user']}'@'{found['client']}' (using password: {found['pw']})",
                     service=service, user=found["user"], client=found["client"],
                     using_password=found["pw"], credentials_of=_credentials_of(service))


def keystone_auth(table: FactTable) -> None:
    done = set()
    for entry in table.of("log_entry"):
        message = str(entry.get("message") or "")
        if _AUTH_TOKEN_LOGGER.search(str(entry.get("logger") or "")) and _AUTH_TOKEN_401.search(message):
            service = _service(entry)
            if (entry.get("node"), service) not in done:
                done.add((entry.get("node"), service))
                table.derive("keystone_auth_refused", entry.get("node"), [entry],
                             f"the auth_token middleware of {service} on {entry.get('node')} logged: "
                             f"{message.splitlines()[0][:160]}", service=service,
                             message=message.splitlines()[0], credentials_of=_credentials_of(service),
                             project=(service or "").split("-", 1)[0] or None)
        refused = _TENANT_REFUSED.search(message.splitlines()[0] if message else "")
        if refused and str(entry.get("logger") or "").startswith("keystone"):
            if (entry.get("node"), refused["user"], refused["tenant"]) not in done:
                done.add((entry.get("node"), refused["user"], refused["tenant"]))
                table.derive("keystone_tenant_refused", entry.get("node"), [entry],
                             f"keystone on {entry.get('node')} refused {refused['user']} a token for "
                             f"tenant {refused['tenant']}", user=refused["user"],
                             tenant=refused["tenant"], message=message.splitlines()[0])
        found = _KEYSTONE_FAILED.search(message.splitlines()[0] if message else "")
        if found and str(entry.get("logger") or "").startswith("keystone") \
                and address_int(found["client"]) is not None:
            if (entry.get("node"), found["client"]) not in done:
                done.add((entry.get("node"), found["client"]))
                table.derive("keystone_login_failed", entry.get("node"), [entry],
                             f"keystone on {entry.get('node')} refused a login from {found['client']}",
                             client=found["client"], message=message.splitlines()[0])


def disk_full(table: FactTable) -> None:
    done = set()
    for entry in table.of("log_entry"):
        text = _text(entry)
        if _NO_SPACE.search(text):
            service = _service(entry)
            if (entry.get("node"), service) in done:
                continue
            done.add((entry.get("node"), service))
            line = next(l for l in text.splitlines() if _NO_SPACE.search(l))
            table.derive("disk_full_error", entry.get("node"), [entry],
                         f"{service} on {entry.get('node')} logged 'No space left on device'",
                         service=service, message=line.strip())


def iscsi_failures(table: FactTable) -> None:
    done = set()
    for entry in table.of("log_entry"):
        text = _text(entry)
        command = _ISCSI_COMMAND.search(text)
        if not command:
            continue
        portal = _PORTAL.search(command["args"])
        code = _EXIT.search(text)
        stderr = _STDERR.search(text)
        host = portal["host"].strip("[]") if portal else None
        key = (entry.get("node"), host, code and code["code"])
        if key in done:
            continue
        done.add(key)
        table.derive("iscsi_command_failed", entry.get("node"), [entry],
                     f"iscsiadm{command['args'][:120]} failed on {entry.get('node')}"
                     + (f" with exit code {code['code']}" if code else ""),
                     service=_service(entry), portal=host, port=portal["port"] if portal else None,
                     exit_code=int(code["code"]) if code else None,
                     stderr=stderr["text"].replace("\\n", " ").strip() if stderr else None)


# Where a client says it was refused: glanceclient's CommunicationError and requests'
# wording (nova, glance, keystone clients and the services using them), MySQL's 2003
# with errno 111 (MySQLdb, PyMySQL: "Can't connect to MySQL server on 'H' (111)" or
# "... on 'H' ([Errno 111] Connection refused)").
_REFUSED_URL = re.compile(r"(?:Error communicating with|Unable to establish connection to) "
                          r"https?://(?P<host>\[[^\]]+\]|[^:/\s]+):(?P<port>\d+)")
_REFUSED_POOL = re.compile(r"host='(?P<host>[^']+)', port=(?P<port>\d+)\).*Connection refused")
_MYSQL_REFUSED = re.compile(r"Can't connect to MySQL server on '(?P<host>[^']+)'(?::(?P<port>\d+))? "
                            r"\((?:111|\[Errno 111\][^)]*)\)")
_REFUSAL = re.compile(r"ECONNREFUSED|Connection refused|Errno 111")
_MYSQL_PORT = 3306


def _refusal_in(text: str):
    if not (_REFUSAL.search(text) or "(111)" in text):
        return None  # most lines: one search, not three
    for pattern in (_REFUSED_URL, _REFUSED_POOL):
        found = pattern.search(text)
        if found and _REFUSAL.search(text):
            return found["host"].strip("[]"), int(found["port"])
    found = _MYSQL_REFUSED.search(text)
    if found:
        return found["host"], int(found["port"] or _MYSQL_PORT)
    return None


def refused_connections(table: FactTable) -> None:
    """Who was refused where, with what the evidence shows of that port on that node.
    Which service a port is, and what a refusal makes, the rule files say."""
    owned = {(f.get("node"), f.get("address")) for f in table.of("owns_address")}
    holder: dict = {}
    own: dict = {}
    for fact in table.of("owns_address"):
        holder.setdefault(fact.get("address"), fact)
        own.setdefault((fact.get("node"), fact.get("address")), fact)
    nodes = {n for n in table.nodes("listening") + table.nodes("service_status") if n}
    sockets: dict = {}
    for socket in table.of("listening"):
        sockets.setdefault(socket.get("node"), []).append(socket)
    done = set()

    def refused(fact, client, host, port, said):
        node = fact.get("node")
        key = (node, client, host, port)
        if key in done:
            return
        done.add(key)
        loopback = _is_loopback(host, node, owned)
        owner = own.get((node, host)) if loopback else holder.get(host)
        if loopback:
            host_node = node
        elif owner:
            host_node = owner.get("node")
        else:
            host_node = host if host in nodes else None  # a client naming the node (http://controller:5000)
        service_node = host_node or host
        listening = sockets.get(service_node)
        shown = [s for s in listening or () if s.get("port") == port][:1] or (listening or [])[:1]
        if owner:
            said += f" ({host} is an address of {host_node}" + (", its own" if loopback else "") + ")"
        table.derive("connection_refused", node, [fact, *([owner] if owner else []), *shown], said,
                     client=client, host=host, port=port, loopback=loopback, host_node=host_node,
                     service_node=service_node,
                     port_listening=None if listening is None else any(s.get("port") == port for s in listening))

    for error in table.of("cli_error"):
        if error.get("error") == "refused" and error.get("host") and error.get("port"):
            refused(error, error.get("tool") or "a client", error["host"], int(error["port"]),
                    f"{error.get('tool') or 'a client'} on {error.get('node')} was refused at "
                    f"{error['host']}:{error['port']}")
    for entry in table.of("log_entry"):
        text = _text(entry)
        where = _refusal_in(text)
        if where is None:
            continue
        service = _service(entry)
        if (service or "").startswith("cinder") and "glance" in text.lower():
            continue  # cinder fetching an image: glance_unreachable, the cinder-glance rules
        refused(entry, service or "a service", where[0], where[1],
                f"{service or 'a service'} on {entry.get('node')} logged a refused connection to "
                f"{where[0]}:{where[1]}")
    for link in table.of("amqp_link"):
        if not link.get("reachable") and _REFUSAL.search(str(link.get("error") or "")):
            refused(link, link.get("service") or "a service", link.get("host"), int(link.get("port")),
                    f"{link.get('service')} on {link.get('node')} last logged its broker at "
                    f"{link.get('host')}:{link.get('port')} refusing it")


DERIVATIONS = (amqp_links, db_logins, keystone_auth, disk_full, iscsi_failures, refused_connections)
