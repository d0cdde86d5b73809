# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a service update reads on the server it runs on: the installed packages, the database
server's version, data directory and databases, the PostgreSQL clusters, the free space, and the
digest each account's site answers with.

Everything goes through a ``Host`` (commands, file systems, HTTP, time), which the unit tests
replace with a fake. Standard library only.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import errno
import fcntl
import json
import os
import re
import shutil
import subprocess
import threading
import time

from urllib.error import HTTPError, URLError
from urllib.request import HTTPRedirectHandler, ProxyHandler, Request, build_opener

from ansible_collections.hosting.migration.plugins.module_utils.db_checksum import MARIADB_ARGV, PSQL_ARGV
from ansible_collections.hosting.migration.plugins.module_utils.service_update import (
    ServiceUpdateError, ServiceUpdateRefused, matches_version, upstream_version)
from ansible_collections.hosting.migration.plugins.module_utils.transfer import command_environment

# Databases of the server itself, not of an account: upgraded by the new version's own tools
# (mariadb-upgrade rewrites mysql.*), so neither dumped as a database nor compared. The users
# and grants they hold are in the backup's users.sql.
MARIADB_SYSTEM_DATABASES = ("information_schema", "mysql", "performance_schema", "sys")
SITE_BODY_LIMIT = 1 << 20
# One update at a time per server: the lock every run of mode update holds (flock, released by
# the kernel when the process ends, also when it is killed).
LOCK_FILE = "/run/lock/hosting-service-update.lock"
# The site watch's requests: short, so that a site that hangs counts as down, not as one slow answer.
SITE_WATCH_TIMEOUT_S = 2.0


class _NoRedirect(HTTPRedirectHandler):
    """A redirect is the answer (its status is compared), not somewhere to go: the target would be
    looked up by name, not through the service address."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class Host(object):
    """The server the module runs on. ``run(argv, stdout_path=None, stdin=None) -> (rc, stdout,
    stderr)``; standard output goes to a new file (mode 0600) when ``stdout_path`` is given."""

    def __init__(self, environment=None):
        self.environment = dict(command_environment(), **(environment or {}))

    def run(self, argv, stdout_path=None, stdin=None):
        output = subprocess.PIPE
        if stdout_path:
            output = os.open(stdout_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            done = subprocess.run(list(argv), input=stdin.encode("utf-8") if stdin is not None else None,
                                  stdout=output, stderr=subprocess.PIPE, env=self.environment, check=False)
        except OSError as error:
            return 127, "", "%s: %s" % (argv[0], error.strerror or error)
        finally:
            if stdout_path:
                os.close(output)
        stdout = "" if stdout_path else done.stdout.decode("utf-8", "replace")
        return done.returncode, stdout, done.stderr.decode("utf-8", "replace")

    def checked(self, argv, stdin=None):
        """Standard output of a command that must succeed (the interface of db_checksum)."""
        rc, stdout, stderr = self.run(argv, stdin=stdin)
        if rc != 0:
            lines = [line.strip() for line in (stderr or stdout or "").splitlines() if line.strip()]
            raise ServiceUpdateError("%s exited with %d: %s" % (" ".join(argv[:6]), rc,
                                                                lines[-1][:300] if lines else "no message"))
        return stdout

    @staticmethod
    def statvfs(path):
        return os.statvfs(path)

    @staticmethod
    def device(path):
        return os.stat(path).st_dev

    @staticmethod
    def exists(path):
        return os.path.lexists(path)

    @staticmethod
    def makedirs(path):
        os.makedirs(path, mode=0o700)

    @staticmethod
    def which(name):
        return shutil.which(name, path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")

    @staticmethod
    def sleep(seconds):
        time.sleep(seconds)

    clock = staticmethod(time.monotonic)
    wall_time = staticmethod(time.time)

    @staticmethod
    def fetch(url, host_header, timeout_s):
        """(status, body) of an HTTP GET with the given Host header, no proxy, no redirect
        followed; (None, reason) when nothing answered."""
        opener = build_opener(ProxyHandler({}), _NoRedirect())
        opener.addheaders = []
        request = Request(url, headers={"Host": host_header, "User-Agent": "hosting.migration service_update"})
        try:
            response = opener.open(request, timeout=timeout_s)
            return response.getcode(), response.read(SITE_BODY_LIMIT).decode("utf-8", "replace")
        except HTTPError as error:
            return error.code, error.read(SITE_BODY_LIMIT).decode("utf-8", "replace")
        except (URLError, OSError, ValueError) as error:
            return None, str(getattr(error, "reason", error))

    @staticmethod
    def lock(path, holder):
        """The update lock (an UpdateLock, held until released or the process ends); LockHeld when
        another process holds it."""
        return UpdateLock.acquire(path, holder)


# --- one update at a time ----------------------------------------------------------------------

class LockHeld(Exception):
    """The update lock is held by another process; ``holder`` is what it wrote in the file."""

    def __init__(self, path, holder):
        super(LockHeld, self).__init__("%s is held" % path)
        self.path, self.holder = path, holder


class UpdateLock(object):
    """A non-blocking flock on ``path``, with its holder ({pid, service, from_version, to_version,
    started_at, started}) written in the file. The lock goes with the process: a run whose
    controller died holds it as long as the module runs, and nobody after it ends."""

    def __init__(self, path, fd):
        self.path, self.fd = path, fd

    @classmethod
    def acquire(cls, path, holder):
        directory = os.path.dirname(path)
        if directory and not os.path.isdir(directory):
            os.makedirs(directory, mode=0o755)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            text = os.read(fd, 65536).decode("utf-8", "replace")
            os.close(fd)
            if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            try:
                found = json.loads(text)
            except ValueError:
                found = None
            raise LockHeld(path, found if isinstance(found, dict) else {"text": text.strip()[:300]})
        lock = cls(path, fd)
        lock.write(holder)
        return lock

    def write(self, holder):
        """The holder, in place of what the file said (the versions once they are known)."""
        data = json.dumps(holder, sort_keys=True).encode("utf-8") + b"\n"
        os.ftruncate(self.fd, 0)
        os.lseek(self.fd, 0, os.SEEK_SET)
        os.write(self.fd, data)

    def release(self):
        if self.fd is not None:
            # The file stays (removing a lock file races with the next run's open); its contents
            # are the last holder's, for a person who looks.
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def describe_holder(holder):
    """"since 2026-11-26T05:12:00Z (pid 4711, mariadb 10.11 -> 11.8)" from a lock file's holder."""
    holder = holder or {}
    if "pid" not in holder:
        return "an unknown time (the lock file says %r)" % holder.get("text", "")
    return "%s (pid %s, %s %s -> %s)" % (
        holder.get("started") or "an unknown time", holder.get("pid"), holder.get("service") or "?",
        holder.get("from_version") or "?", holder.get("to_version") or "?")


# --- packages and versions ---------------------------------------------------------------------

def installed_packages(host):
    """{package: version} of the packages dpkg has installed (not those with only their
    configuration files left)."""
    output = host.checked(["dpkg-query", "-W", "-f", "${Package}\t${Version}\t${db:Status-Abbrev}\n"])
    packages = {}
    for line in output.splitlines():
        fields = line.split("\t")
        if len(fields) >= 3 and fields[2][1:2] == "i":
            packages[fields[0]] = fields[1]
    return packages


def major_version(version_text, known, parts):
    """The catalogue's version a server's version belongs to: '10.11.6-MariaDB...' -> '10.11'
    when the catalogue knows 10.11; else its first ``parts`` numbers."""
    text = upstream_version(version_text) if ":" in version_text else version_text
    matching = [version for version in known if matches_version(text, version)
                or re.match(r"\A%s(\D|\Z)" % re.escape(version), text)]
    if matching:
        return max(matching, key=len)
    numbers = re.match(r"\A\d+(\.\d+)*", text)
    if not numbers:
        raise ServiceUpdateRefused("Cannot tell the version of %r." % version_text)
    return ".".join(numbers.group(0).split(".")[:parts])


def known_versions(paths, service):
    routes = (paths or {}).get(service) or {}
    found = set(str(version) for version in routes)
    for targets in routes.values():
        found.update(str(version) for version in (targets or {}))
    return found


def server_version_matches(server_version, wanted):
    """Whether what the database server reports ('11.8.3-MariaDB-0+deb13u1', '17.6 (Debian
    17.6-1.pgdg)') is of version ``wanted``."""
    numbers = re.match(r"\A\s*(\d+(?:\.\d+)*)", server_version or "")
    return bool(numbers) and (numbers.group(1) == wanted or numbers.group(1).startswith(wanted + "."))


# --- the database servers ----------------------------------------------------------------------

def _unanswered(label, service, error):
    return ServiceUpdateRefused(
        "%s does not answer on this server (%s). The update starts from a running server whose every database "
        "can be read: start it, or repair it, first." % (label, error), service=service)


def mariadb_facts(host, paths):
    """{current_version, server_version, data_dir, databases}; refused when MariaDB is not
    installed or does not answer."""
    packages = installed_packages(host)
    if "mariadb-server" not in packages:
        raise ServiceUpdateRefused("MariaDB is not installed on this server (no mariadb-server package): there is "
                                   "nothing to update.", service="mariadb")
    try:
        answer = host.checked(list(MARIADB_ARGV) + ["-e", "SELECT VERSION(), @@datadir"])
        databases = host.checked(list(MARIADB_ARGV) + ["-e", "SHOW DATABASES"])
    except ServiceUpdateError as error:
        raise _unanswered("MariaDB", "mariadb", error)
    fields = answer.strip().split("\t")
    if len(fields) != 2:
        raise ServiceUpdateRefused("MariaDB answered %r to SELECT VERSION(), @@datadir." % answer.strip())
    return {"current_version": major_version(packages["mariadb-server"], known_versions(paths, "mariadb"), 2),
            "package_version": packages["mariadb-server"], "server_version": fields[0],
            "data_dir": os.path.normpath(fields[1]), "packages": packages, "port": None, "cluster": None,
            "databases": sorted(name for name in databases.splitlines()
                                if name.strip() and name not in MARIADB_SYSTEM_DATABASES)}


def parse_clusters(text):
    """[{version, cluster, port, status, owner, data_dir}] from ``pg_lsclusters -h``."""
    clusters = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 6:
            continue
        clusters.append({"version": fields[0], "cluster": fields[1], "port": int(fields[2]) if fields[2].isdigit()
                         else None, "status": fields[3], "owner": fields[4], "data_dir": fields[5]})
    return clusters


def postgresql_facts(host, paths, cluster, to_version):
    """{current_version, server_version, data_dir, databases, port, clusters}: of the clusters
    named ``cluster`` (those online, if any is), the oldest that is not of ``to_version``."""
    packages = installed_packages(host)
    try:
        clusters = parse_clusters(host.checked(["pg_lsclusters", "-h"]))
    except ServiceUpdateError as error:
        raise ServiceUpdateRefused("PostgreSQL is not installed on this server, or pg_lsclusters fails (%s): there "
                                   "is nothing to update." % error, service="postgresql")
    named = [item for item in clusters if item["cluster"] == cluster]
    if not named:
        raise ServiceUpdateRefused("This server has no PostgreSQL cluster named %s (it has %s)." % (
            cluster, ", ".join("%s/%s" % (item["version"], item["cluster"]) for item in clusters) or "none"),
            clusters=clusters)
    # The cluster that serves: after an update the old one stays, stopped (kept for going back by
    # hand), and the new one of to_version runs; a second run must see the new one.
    online = [item for item in named if item["status"].startswith("online")]
    serving = online or named
    older = [item for item in serving if item["version"] != str(to_version)] or serving
    old = sorted(older, key=lambda item: [int(part) for part in re.findall(r"\d+", item["version"])])[0]
    environment = {"PGPORT": str(old["port"])} if old["port"] else {}
    host.environment.update(environment)
    try:
        server_version = host.checked(list(PSQL_ARGV) + ["-d", "postgres"], stdin="SHOW server_version;\n").strip()
        databases = host.checked(list(PSQL_ARGV) + ["-d", "postgres"], stdin=(
            "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY 1;\n"))
    except ServiceUpdateError as error:
        raise _unanswered("PostgreSQL %s/%s" % (old["version"], cluster), "postgresql", error)
    return {"current_version": major_version(old["version"], known_versions(paths, "postgresql"), 1),
            "package_version": packages.get("postgresql-%s" % old["version"]), "server_version": server_version,
            "data_dir": os.path.normpath(old["data_dir"]), "packages": packages, "port": old["port"],
            "cluster": cluster, "clusters": clusters,
            "databases": sorted(name for name in databases.splitlines() if name.strip())}


def server_facts(host, service, paths, cluster="main", to_version=None):
    if service == "mariadb":
        return mariadb_facts(host, paths)
    return postgresql_facts(host, paths, cluster, to_version)


def running_version(host, service):
    """What the running database server says its version is."""
    if service == "mariadb":
        return host.checked(list(MARIADB_ARGV) + ["-e", "SELECT VERSION()"]).strip()
    return host.checked(list(PSQL_ARGV) + ["-d", "postgres"], stdin="SHOW server_version;\n").strip()


# --- disk ----------------------------------------------------------------------------------------

def existing_ancestor(host, path):
    """``path`` or its nearest ancestor that exists (the backup directory may not exist yet)."""
    path = os.path.abspath(path)
    while not host.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    return path


def disk_facts(host, backup_dir, data_dir):
    """Free and total bytes where the backup and the second data directory go, and whether that
    is one filesystem."""
    backup_at = existing_ancestor(host, backup_dir)
    data_at = os.path.dirname(os.path.normpath(data_dir))
    facts = {"same_filesystem": host.device(backup_at) == host.device(data_at)}
    for name, path in (("backup", backup_at), ("data", data_at)):
        stat = host.statvfs(path)
        facts[name + "_free"] = stat.f_bavail * stat.f_frsize
        facts[name + "_total"] = stat.f_blocks * stat.f_frsize
    return facts


def directory_bytes(host, path):
    output = host.checked(["du", "-sb", "--", path])
    try:
        return int(output.split()[0])
    except (IndexError, ValueError):
        raise ServiceUpdateError("du -sb %s printed %r." % (path, output.strip()))


# --- the accounts' sites -------------------------------------------------------------------------

def check_sites(sites):
    """[{account, host, address, port, path}] from the module's option, each checked."""
    result = []
    for index, site in enumerate(sites or []):
        where = "sites[%d]" % index
        if not isinstance(site, dict) or not site.get("host") or not site.get("address"):
            raise ServiceUpdateRefused("%s must be a dict with host (the Host header, a domain of the site) and "
                                       "address (the service address it is served on), got %r." % (where, site))
        port = site.get("port", 80)
        if not isinstance(port, int) or not 0 < port < 65536:
            raise ServiceUpdateRefused("%s.port must be a TCP port, got %r." % (where, port))
        path = site.get("path") or "/"
        if not str(path).startswith("/"):
            raise ServiceUpdateRefused("%s.path must start with /, got %r." % (where, path))
        result.append({"account": site.get("account"), "host": str(site["host"]), "address": str(site["address"]),
                       "port": port, "path": str(path)})
    return result


def site_url(site):
    address = site["address"]
    if ":" in address and not address.startswith("["):
        address = "[%s]" % address
    return "http://%s%s%s" % (address, "" if site["port"] == 80 else ":%d" % site["port"], site["path"])


def site_answer(host, site, pattern, timeout_s=5):
    """What a site answers, reduced to what must not change: the HTTP status, and the text the
    pattern's first group captures (the lab's pages print ``digest: ...``), None when the page
    has no match (then only the status is compared: a page that changes by itself would fail
    every update)."""
    return reduced_answer(host.fetch(site_url(site), site["host"], timeout_s), pattern)


def reduced_answer(fetched, pattern):
    """{status, digest, error} from a fetch's (status, body); the body is the error when the site
    did not answer (status None)."""
    status, body = fetched
    found = re.search(pattern, body or "") if status is not None else None
    return {"status": status, "digest": (found.group(1) if found.groups() else found.group(0)) if found else None,
            "error": None if status is not None else body}


def site_answers(host, sites, pattern):
    return [dict(site, **site_answer(host, site, pattern)) for site in sites]


def _same(before, after):
    return before["status"] == after["status"] and before["digest"] == after["digest"]


def compare_sites(host, before, pattern, attempts=10, delay_s=1.0):
    """Ask each site again until it answers as it did before, at most ``attempts`` times (a
    site's PHP workers reconnect to the restarted database server on their next request).
    Returns [{account, host, address, before, after, same}]."""
    compared = []
    for site in before:
        for attempt in range(max(1, attempts)):
            if attempt:
                host.sleep(delay_s)
            answer = site_answer(host, site, pattern)
            if _same(site, answer):
                break
        compared.append({"account": site["account"], "host": site["host"], "address": site["address"],
                         "before": {"status": site["status"], "digest": site["digest"]},
                         "after": {"status": answer["status"], "digest": answer["digest"], "error": answer["error"]},
                         "same": _same(site, answer)})
    return compared


def describe_sites(compared):
    """One sentence per site that does not answer as before."""
    return ["%s (%s on %s) answered %s%s before and %s%s after" % (
        item["host"], item["account"] or "no account", item["address"], item["before"]["status"],
        " with %s" % item["before"]["digest"] if item["before"]["digest"] else "",
        item["after"]["status"] if item["after"]["status"] is not None else "nothing (%s)" % item["after"]["error"],
        " with %s" % item["after"]["digest"] if item["after"]["digest"] else "")
        for item in compared if not item["same"]]


# --- the sites' downtime, measured while the update runs -----------------------------------------

def failure_reason(answer, digest_before):
    """Why one answer of the watch is a failure, None when it is not: no answer (timeout,
    refused), a status other than 2xx/3xx, or a page whose pattern does not give the digest it
    gave before the update (a page that had none before is judged by its status)."""
    status = answer["status"]
    if status is None:
        return "no answer"
    if not 200 <= status < 400:
        return "status %s" % status
    if digest_before is not None and answer["digest"] != digest_before:
        return "digest %s" % answer["digest"]
    return None


class SiteWatch(object):
    """Asks every site every ``interval_s`` in a thread of its own, from ``start()`` to
    ``stop()``, and counts per site the requests, the failures and the longest outage: a run of
    consecutive failures, from the start of its first failed request to the start of the next
    successful one (to the watch's end when the site never recovered).

    ``fetch(url, host_header, timeout_s) -> (status, body)`` as Host.fetch; ``clock`` monotonic
    seconds, ``wall_clock`` UNIX time; ``wait(seconds)`` returns True once the watch is to stop
    (by default the stop event's wait). The unit tests call ``poll()`` themselves with fakes.
    Standard library only."""

    def __init__(self, sites, pattern, fetch, clock=time.monotonic, wall_clock=time.time, interval_s=0.5,
                 timeout_s=SITE_WATCH_TIMEOUT_S, wait=None):
        self.pattern, self.fetch = pattern, fetch
        self.clock, self.wall_clock = clock, wall_clock
        self.interval_s, self.timeout_s = interval_s, timeout_s
        self.stopping = threading.Event()
        self.wait = wait or self.stopping.wait
        self.thread = None
        self.lock = threading.Lock()
        self.sites = [{"site": site, "digest_before": site.get("digest"), "requests": 0, "failed": 0,
                       "first_failure_at": None, "last_failure_at": None, "longest_outage_s": 0.0,
                       "outage_started": None, "errors": {}} for site in sites]
        self.ended = None

    def _answer(self, site):
        return reduced_answer(self.fetch(site_url(site), site["host"], self.timeout_s), self.pattern)

    def poll(self):
        """One round: each site asked once."""
        for entry in self.sites:
            started, started_at = self.clock(), self.wall_clock()
            try:
                answer = self._answer(entry["site"])
            except Exception as error:  # pylint: disable=broad-except
                # Whatever the fetch raised, the site did not answer; the watch goes on.
                answer = {"status": None, "digest": None, "error": str(error) or error.__class__.__name__}
            reason = failure_reason(answer, entry["digest_before"])
            with self.lock:
                entry["requests"] += 1
                if reason is not None:
                    entry["failed"] += 1
                    entry["first_failure_at"] = entry["first_failure_at"] or round(started_at, 3)
                    entry["last_failure_at"] = round(started_at, 3)
                    if entry["outage_started"] is None:
                        entry["outage_started"] = started
                    entry["errors"][reason] = entry["errors"].get(reason, 0) + 1
                elif entry["outage_started"] is not None:
                    self._close(entry, started)

    @staticmethod
    def _close(entry, until):
        entry["longest_outage_s"] = max(entry["longest_outage_s"], round(until - entry["outage_started"], 3))
        entry["outage_started"] = None

    def _loop(self):
        while not self.stopping.is_set():
            self.poll()
            if self.wait(self.interval_s):
                break

    def start(self):
        self.thread = threading.Thread(target=self._loop, name="service-update-site-watch")
        self.thread.daemon = True
        self.thread.start()
        return self

    def stop(self):
        """Ends the watch (after the round under way) and closes the outages still open."""
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(self.timeout_s * max(1, len(self.sites)) + 5)
        self.ended = self.clock()
        with self.lock:
            for entry in self.sites:
                if entry["outage_started"] is not None:
                    entry["failing_at_end"] = True
                    self._close(entry, self.ended)
        return self.report()

    def report(self):
        """[{account, host, address, requests, failed, longest_outage_s, first_failure_at,
        last_failure_at, failing_at_end, failures}] (``failures``: how many of each kind)."""
        with self.lock:
            return [{"account": entry["site"].get("account"), "host": entry["site"]["host"],
                     "address": entry["site"]["address"], "requests": entry["requests"], "failed": entry["failed"],
                     "longest_outage_s": entry["longest_outage_s"], "first_failure_at": entry["first_failure_at"],
                     "last_failure_at": entry["last_failure_at"], "failing_at_end": entry.get("failing_at_end", False),
                     "failures": dict(entry["errors"])} for entry in self.sites]
