# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""An optional migration: one database service updated in place. The checks made before anything
changes: the update path (from the catalogue's ``service_update_paths``), the disk space for the
backup and the data, the packages of the new version in the package sources.

Every refusal is a ``ServiceUpdateRefused`` with a sentence a person can act on and the numbers
behind it in ``details``. The backup and the comparison are in ``service_update_backup``, the
steps and the rollback in ``service_update_runner``; ``docs/service-update.md`` describes the
procedure. Standard library only.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import math
import re

SERVICES = ("mariadb", "postgresql")

# How each service's data is upgraded, and what that costs on the data filesystem:
# - mariadb-upgrade works on the data directory in place. A MariaDB data directory cannot go back
#   to an older major version, so a copy of it is kept (made while the server is stopped): the
#   rollback puts it back. Extra space: one data directory.
# - pg_upgradecluster (pg_upgrade in copy mode) writes a new cluster beside the old one, which it
#   leaves intact. Extra space: one data directory.
# - dump-restore (PostgreSQL) restores the backup's dumps into a new cluster: the new cluster is
#   about the size of the old one too.
METHODS = {
    "mariadb-upgrade": {"service": "mariadb", "data_copy": True},
    "pg_upgradecluster": {"service": "postgresql", "data_copy": True},
    "dump-restore": {"service": "postgresql", "data_copy": True},
}

# The order of an update. Anything that fails after "backup" is rolled back
# (service_update_runner).
STEPS = ("checks", "backup", "stop", "packages", "data_upgrade", "start", "verify")

# The size of a logical dump (SQL text) as a multiple of the data directory's. Indexes are not
# dumped and pages are not full, so dumps of ordinary data come out well below 1; binary columns
# are dumped as hex (twice their size). 1.2 leaves room for data with many of them; a database made
# mostly of BLOBs can still exceed it (docs/service-update.md).
DUMP_SIZE_FACTOR = 1.2
# Free space left on each filesystem after the update, whatever the estimate: the database server
# keeps writing logs and temporary files while it runs.
MARGIN_FRACTION = 0.10
MIN_MARGIN_BYTES = 1 << 30

_VERSION = re.compile(r"\A\d+(\.\d+)*\Z")


class ServiceUpdateError(Exception):
    """An update cannot go on; ``details`` holds the facts behind the message."""

    def __init__(self, message, **details):
        super(ServiceUpdateError, self).__init__(message)
        self.details = details


class ServiceUpdateRefused(ServiceUpdateError):
    """Refused before anything changed: bad input or a failed check."""


# --- versions --------------------------------------------------------------------------------

def version_key(version):
    """"10.11" -> (10, 11): major versions compare as numbers, not as text ("10.11" > "10.5")."""
    text = str(version)
    if not _VERSION.match(text):
        raise ServiceUpdateRefused("%r is not a version: write it as numbers and dots, e.g. 11.8 or 17." % (version,),
                                   version=version)
    return tuple(int(part) for part in text.split("."))


def upstream_version(debian_version):
    """The upstream part of a Debian version: '1:11.8.9+ds-0+deb13u1' -> '11.8.9+ds'."""
    text = debian_version.split(":", 1)[-1]
    return text.rsplit("-", 1)[0] if "-" in text else text


def matches_version(debian_version, wanted):
    """Whether a package version is of the wanted major version: 11.8 matches 1:11.8.9+ds-0,
    17 matches 17.12-0; 11.8 does not match 11.80.1."""
    upstream = upstream_version(debian_version)
    return upstream == wanted or upstream.startswith(wanted + ".") or upstream.startswith(wanted + "+") \
        or upstream.startswith(wanted + "~")


# --- the path --------------------------------------------------------------------------------

def _known_versions(routes):
    versions = set(routes)
    for targets in routes.values():
        versions.update(targets or {})
    return sorted(versions, key=version_key)


def _check_entry(service, current, target, entry):
    where = "service_update_paths.%s[%s][%s]" % (service, current, target)
    if not isinstance(entry, dict):
        raise ServiceUpdateRefused("%s in the catalogue must be a mapping with packages and method." % where)
    packages = entry.get("packages")
    if not packages or not isinstance(packages, list) or not all(isinstance(p, str) and p for p in packages):
        raise ServiceUpdateRefused("%s.packages in the catalogue must be a non-empty list of package names." % where)
    method = entry.get("method")
    if method not in METHODS or METHODS[method]["service"] != service:
        usable = sorted(name for name, info in METHODS.items() if info["service"] == service)
        raise ServiceUpdateRefused("%s.method in the catalogue is %r; for %s it must be one of %s."
                                   % (where, method, service, ", ".join(usable)))
    version_package = entry.get("version_package", packages[0])
    if version_package not in packages:
        raise ServiceUpdateRefused("%s.version_package (%s) must be one of its packages." % (where, version_package))
    return method, version_package


def plan(service, current_version, to_version, paths):
    """The update of ``service`` from ``current_version`` (what runs on the server) to
    ``to_version``, from the catalogue's ``service_update_paths``; ServiceUpdateRefused when the
    catalogue has no such path."""
    paths = paths or {}
    if service not in paths:
        raise ServiceUpdateRefused("Unknown service %r: service_update updates %s." % (
            service, ", ".join(sorted(paths)) or "nothing (service_update_paths is empty)"), service=service)
    current, target = str(current_version), str(to_version)
    version_key(current)
    version_key(target)
    routes = paths[service] or {}
    known = _known_versions(routes)
    if current == target:
        raise ServiceUpdateRefused("%s is already at version %s on this server: nothing to update." % (service, current),
                                   service=service, current_version=current)
    if version_key(target) < version_key(current):
        raise ServiceUpdateRefused(
            "%s %s is older than the version on this server (%s): service_update does not downgrade. To go back "
            "after an update, its automatic rollback or the backup it made is the way." % (service, target, current),
            service=service, current_version=current, to_version=target)
    if target not in known:
        raise ServiceUpdateRefused("%s %s is not a version the catalogue knows (it knows %s)." % (
            service, target, ", ".join(known)), service=service, to_version=target, known_versions=known)
    if current not in routes:
        raise ServiceUpdateRefused("The catalogue has no update of %s from %s, the version on this server (it updates "
                                   "%s from %s)." % (service, current, service, ", ".join(sorted(routes, key=version_key))),
                                   service=service, current_version=current)
    if target not in (routes[current] or {}):
        offered = sorted(routes[current] or {}, key=version_key)
        raise ServiceUpdateRefused("The catalogue has no update of %s from %s to %s (from %s it offers %s)." % (
            service, current, target, current, ", ".join(offered) or "nothing"),
            service=service, current_version=current, to_version=target, offered=offered)
    entry = routes[current][target]
    method, version_package = _check_entry(service, current, target, entry)
    return {
        "service": service,
        "from_version": current,
        "to_version": target,
        "packages": list(entry["packages"]),
        "version_package": version_package,
        "method": method,
        "data_copy": METHODS[method]["data_copy"],
        "restore_packages": list(entry.get("restore_packages") or []),
        "remove_packages": list(entry.get("remove_packages") or []),
        "keep_packages": list(entry.get("keep_packages") or []),
        "steps": list(STEPS),
    }


# --- disk ------------------------------------------------------------------------------------

def human_size(count):
    """Bytes for people: 1536 -> '1.5 KiB', 3 * 2**30 -> '3.0 GiB'."""
    count = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(count) < 1024 or unit == "TiB":
            return ("%d %s" % (count, unit)) if unit == "B" else ("%.1f %s" % (count, unit))
        count /= 1024.0
    return "%.1f TiB" % count  # pragma: no cover


def _margin(total, min_margin):
    return max(int(math.ceil(total * MARGIN_FRACTION)), min_margin)


def disk_check(plan_, data_bytes, backup_free, data_free, same_filesystem=False,
               dump_factor=DUMP_SIZE_FACTOR, min_margin=MIN_MARGIN_BYTES, backup_total=None, data_total=None):
    """Whether the update fits: the backup (dumps estimated at ``dump_factor`` times the data
    directory) on the backup filesystem, a second data directory (kept copy or new cluster) on the
    data filesystem, each with a margin left free (MARGIN_FRACTION of the filesystem when its size
    is given, else of what is written there, at least ``min_margin``). When both are one
    filesystem, everything must fit there together.

    Returns {ok, message, needs: [{filesystem, what, needed, free}]}; the message names the
    numbers in human-readable sizes."""
    for name, value in (("data size", data_bytes), ("free space on the backup filesystem", backup_free),
                        ("free space on the data filesystem", data_free)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ServiceUpdateRefused("The %s must be a number of bytes, not %r." % (name, value))
    backup_bytes = int(math.ceil(data_bytes * dump_factor))
    copy_bytes = data_bytes if plan_["data_copy"] else 0
    if same_filesystem:
        written = backup_bytes + copy_bytes
        base = data_total if data_total else written
        needs = [("data", "the backup (%s) and a second data directory (%s)" % (
            human_size(backup_bytes), human_size(copy_bytes)), written, _margin(base, min_margin), data_free)]
    else:
        needs = [("backup", "the backup (%s)" % human_size(backup_bytes), backup_bytes,
                  _margin(backup_total if backup_total else backup_bytes, min_margin), backup_free)]
        if copy_bytes:
            needs.append(("data", "a second data directory (%s)" % human_size(copy_bytes), copy_bytes,
                          _margin(data_total if data_total else copy_bytes, min_margin), data_free))
    result, short = [], []
    for filesystem, what, written, margin, free in needs:
        needed = written + margin
        result.append({"filesystem": filesystem, "what": what, "written": written, "margin": margin,
                       "needed": needed, "free": free})
        if free < needed:
            short.append("the %s filesystem has %s free but needs %s: %s plus %s left free" % (
                filesystem, human_size(free), human_size(needed), what, human_size(margin)))
    if short:
        message = ("Not enough disk space to update %s (data directory %s, dumps estimated at %.1f times that): %s. "
                   "Free some space or give the backup another filesystem." % (
                       plan_["service"], human_size(data_bytes), dump_factor, "; ".join(short)))
        return {"ok": False, "message": message, "needs": result}
    return {"ok": True, "message": "Enough disk space to update %s: %s." % (plan_["service"], "; ".join(
        "%s filesystem %s free, %s needed" % (need["filesystem"], human_size(need["free"]), human_size(need["needed"]))
        for need in result)), "needs": result}


def require_disk(*args, **kwargs):
    """disk_check, raising ServiceUpdateRefused when the update does not fit."""
    outcome = disk_check(*args, **kwargs)
    if not outcome["ok"]:
        raise ServiceUpdateRefused(outcome["message"], needs=outcome["needs"])
    return outcome


# --- package availability --------------------------------------------------------------------

_MADISON_LINE = re.compile(r"\A\s*(\S+)\s*\|\s*(\S+)\s*\|\s*(.+?)\s*\Z")
_ORIGIN_TAIL = re.compile(r"\s+\S+\s+(Packages|Sources)\Z")


def _origin(text):
    """'http://10.77.0.1:8080 provider/main amd64 Packages' -> 'http://10.77.0.1:8080 provider/main'."""
    return _ORIGIN_TAIL.sub("", text.strip())


def parse_madison(text):
    """{package: [(version, origin), ...]} from ``apt-cache madison``, in apt's order (newest
    first). Source lines (``... Sources``) are left out."""
    found = {}
    for line in text.splitlines():
        match = _MADISON_LINE.match(line)
        if not match:
            continue
        package, version, where = match.groups()
        if where.endswith(" Sources"):
            continue
        found.setdefault(package, []).append((version, _origin(where)))
    return found


def parse_policy(text):
    """{package: {installed, candidate, versions: [(version, [origin, ...])]}} from
    ``apt-cache policy``; the dpkg status file is not an origin (installed is its own key)."""
    found, package, current = {}, None, None
    for line in text.splitlines():
        if not line.strip():
            continue
        if not line.startswith(" "):
            package = line.rstrip(":").strip()
            found[package] = {"installed": None, "candidate": None, "versions": []}
            current = None
            continue
        if package is None:
            continue
        entry = found[package]
        stripped = line.strip()
        if stripped.startswith("Installed:"):
            value = stripped.split(":", 1)[1].strip()
            entry["installed"] = None if value == "(none)" else value
        elif stripped.startswith("Candidate:"):
            value = stripped.split(":", 1)[1].strip()
            entry["candidate"] = None if value == "(none)" else value
        elif stripped.startswith("Version table:"):
            continue
        else:
            version_line = re.match(r"\A(?:\*\*\* )?(\S+) (-?\d+)\Z", stripped)
            if version_line and not re.match(r"\A-?\d+\Z", version_line.group(1)):
                current = (version_line.group(1), [])
                entry["versions"].append(current)
                continue
            origin_line = re.match(r"\A-?\d+ (.+)\Z", stripped)
            if origin_line and current is not None and not origin_line.group(1).endswith("dpkg/status"):
                current[1].append(_origin(origin_line.group(1)))
    return found


def _listing(apt_output):
    """Either format, as {package: [(version, origin), ...]} newest first."""
    if re.search(r"^\S.*:\s*$", apt_output, re.M) and "Version table:" in apt_output:
        listing = {}
        for package, entry in parse_policy(apt_output).items():
            listing[package] = [(version, origin) for version, origins in entry["versions"] for origin in origins]
        return listing
    return parse_madison(apt_output)


def check_packages(plan_, apt_output):
    """The versions to install, from ``apt-cache madison`` or ``apt-cache policy`` output for the
    plan's packages: every package must come from a package source, and the plan's
    ``version_package`` at the wanted major version. Returns {package: {version, origin}}; raises
    ServiceUpdateRefused naming each package that is missing or at another version."""
    listing = _listing(apt_output)
    chosen, missing, wrong = {}, [], []
    for package in plan_["packages"]:
        available = listing.get(package) or []
        if not available:
            missing.append(package)
            continue
        if package == plan_["version_package"]:
            matching = [item for item in available if matches_version(item[0], plan_["to_version"])]
            if not matching:
                wrong.append("%s (the sources have %s)" % (package, ", ".join(
                    "%s from %s" % item for item in available)))
                continue
            version, origin = matching[0]
        else:
            version, origin = available[0]
        chosen[package] = {"version": version, "origin": origin}
    problems = []
    if missing:
        problems.append("not in any package source: %s" % ", ".join(missing))
    if wrong:
        problems.append("not at version %s: %s" % (plan_["to_version"], "; ".join(wrong)))
    if problems:
        raise ServiceUpdateRefused(
            "The packages of %s %s are not available on this server (%s). Check the provider repository in the "
            "server's APT sources and run apt-get update." % (plan_["service"], plan_["to_version"], "; ".join(problems)),
            missing=missing, wrong_version=wrong)
    return chosen
