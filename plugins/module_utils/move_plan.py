# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The preparation plan: what blocks moving accounts to a target server, and how long each freeze is.

``plan_moves`` combines the spec translation (``spec_translate``), what the target server
already holds (``read_target_state``, ``blockers_on_target``) and the freeze estimate
(``estimate_freeze_s``) into what ``hosting.migration.account_plan_info`` returns.
``docs/preparation.md`` describes the report, each blocker and the estimate.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import grp
import math
import os
import posixpath
import pwd

from ansible_collections.hosting.migration.plugins.module_utils.account_inventory import (
    VERSION_FILE, infrastructure_version)
from ansible_collections.hosting.migration.plugins.module_utils.account_spec import (
    DEFAULT_MIN_UID, SpecError, load_spec_dir, validate_spec)
from ansible_collections.hosting.migration.plugins.module_utils.spec_translate import (
    ENGINE_LABELS, newest_version, translate_spec, version_entry)

GIB = 1024 ** 3
GB = 1000 ** 3

# Room a move needs on the target: what the account holds times the factor (filesystem and
# database overhead, a database's temporary files during the import), plus one reserve per
# filesystem that stays free whatever the plan.
SPACE_SAFETY_FACTOR = 1.2
SPACE_RESERVE_BYTES = GIB
# The same for inodes on the filesystem of the homes: the account's files (directories are not
# counted, hence the factor) and a reserve.
INODE_RESERVE = 10000

# The freeze: a fixed overhead (stop, switch, reload), the final delta sync of the home (small
# after the pre-copy: its cost is walking the files) and the databases streamed. The defaults are
# the product's targets (BRIEF.md): under 5 s plus 10 s per GB of database.
DEFAULT_FREEZE_RATES = {
    "fixed_s": 5.0,
    "database_s_per_gb": 10.0,
    "files_s_per_10000": 1.0,
}

# Where the target's database servers keep their data (Debian's defaults, which the
# infrastructure role keeps).
DATA_DIRS = {"mariadb": "/var/lib/mysql", "postgresql": "/var/lib/postgresql"}

DATABASE_LIST_COMMANDS = {
    "mariadb": ["mariadb", "--batch", "--skip-column-names", "-e", "SHOW DATABASES"],
    "postgresql": ["runuser", "-u", "postgres", "--", "psql", "-XAt", "-c", "SELECT datname FROM pg_database"],
}


class PlanInputError(ValueError):
    """The accounts or rates given to the plan cannot be used."""


# --- the accounts given ----------------------------------------------------------------------

def parse_accounts(accounts, min_uid=DEFAULT_MIN_UID):
    """``[(AccountSpec, resources)]`` from the ``accounts`` of ``account_info`` (run on the source).

    Each entry needs ``spec`` (checked against every rule again) and ``resources``.
    """
    if not isinstance(accounts, list):
        raise PlanInputError("accounts must be the list returned by hosting.migration.account_info")
    parsed, seen = [], set()
    for index, entry in enumerate(accounts):
        if not isinstance(entry, dict) or not isinstance(entry.get("spec"), dict):
            raise PlanInputError("accounts[%d] has no spec: give the accounts as "
                                 "hosting.migration.account_info returns them" % index)
        data = entry["spec"]
        name = data.get("name") if isinstance(data.get("name"), str) else "(unnamed)"
        if entry.get("name") not in (None, name):
            raise PlanInputError("accounts[%d] is named %r but its spec is for %r" % (index, entry.get("name"), name))
        try:
            spec = validate_spec(data, "source/%s.yml" % name, min_uid=min_uid)
        except SpecError as error:
            raise PlanInputError("accounts[%d]: %s" % (index, error)) from None
        resources = entry.get("resources")
        if not isinstance(resources, dict) or not isinstance(resources.get("files"), int) \
                or not isinstance(resources.get("bytes"), int) or not isinstance(resources.get("databases"), list):
            raise PlanInputError("account %s has no resources: run hosting.migration.account_info with "
                                 "resources: true on the source" % spec.name)
        if spec.name in seen:
            raise PlanInputError("account %s is listed twice" % spec.name)
        seen.add(spec.name)
        parsed.append((spec, resources))
    return parsed


# --- the freeze estimate ---------------------------------------------------------------------

def freeze_rates(rates=None):
    """The default rates with the given ones laid over them; unknown or negative ones refused."""
    merged = dict(DEFAULT_FREEZE_RATES)
    for key, value in (rates or {}).items():
        if key not in merged:
            raise PlanInputError("unknown freeze rate %r (known: %s)" % (key, ", ".join(sorted(merged))))
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or math.isnan(value):
            raise PlanInputError("freeze rate %s must be a number of seconds, at least 0, not %r" % (key, value))
        merged[key] = float(value)
    return merged


def _number(value):
    return "%g" % value


def database_bytes(resources):
    """Bytes of the account's databases on the source (a missing database counts 0)."""
    return sum(db.get("bytes") or 0 for db in resources.get("databases") or [])


def estimate_freeze_s(resources, rates=None):
    """The estimated freeze of one account's move: ``(seconds, formula)``.

    seconds = fixed_s + database GB (10^9 bytes) x database_s_per_gb
              + files / 10,000 x files_s_per_10000
    ``formula`` is that with the account's numbers, as text. ``resources`` is what account_info
    reports for the account; ``rates`` overrides some of DEFAULT_FREEZE_RATES.
    """
    rates = freeze_rates(rates)
    gigabytes = database_bytes(resources) / float(GB)
    files = resources.get("files") or 0
    seconds = rates["fixed_s"] + gigabytes * rates["database_s_per_gb"] + files / 10000.0 * rates["files_s_per_10000"]
    seconds = round(seconds, 1)
    formula = "%s s + %s s/GB x %.3f GB of databases + %s s/10,000 files x %d files = %.1f s" % (
        _number(rates["fixed_s"]), _number(rates["database_s_per_gb"]), gigabytes,
        _number(rates["files_s_per_10000"]), files, seconds)
    return seconds, formula


# --- the target server -----------------------------------------------------------------------

def _existing_ancestor(path):
    """The path itself, or its nearest ancestor that exists: the filesystem that will hold it."""
    while not os.path.exists(path) and path not in ("/", ""):
        path = os.path.dirname(path)
    return path or "/"


def space_locations(specs, data_dirs=None):
    """The target paths whose free space the plan needs: home parents and data directories."""
    data_dirs = dict(DATA_DIRS, **(data_dirs or {}))
    locations = {posixpath.dirname(spec.home) for spec in specs}
    locations.update(data_dirs[database.engine] for spec in specs for database in spec.databases)
    return sorted(locations)


def read_target_state(specs, run, spec_dir="/etc/hosting/accounts", min_uid=DEFAULT_MIN_UID,
                      version_file=VERSION_FILE, passwd=pwd.getpwall, group=grp.getgrall,
                      statvfs=os.statvfs, stat=os.stat):
    """What the target server holds, as ``blockers_on_target`` and ``plan_moves`` take it.

    ``specs`` are the accounts to move (which engines to ask, which filesystems to measure);
    ``run(argv) -> (rc, stdout, stderr)`` runs a command on the server. What cannot be read is
    listed in ``errors`` (each a sentence) rather than raised, so the report still comes out.
    """
    errors = []
    accounts = []
    if os.path.isdir(spec_dir):
        try:
            accounts = load_spec_dir(spec_dir, min_uid=min_uid)
        except SpecError as error:
            errors.append("the target's account specs cannot be read: %s" % error)
    databases = {}
    for engine in sorted({database.engine for spec in specs for database in spec.databases}):
        argv = DATABASE_LIST_COMMANDS[engine]
        try:
            rc, out, err = run(argv)
        except OSError as error:
            rc, out, err = 127, "", str(error)
        if rc != 0:
            errors.append("the target's %s server did not list its databases (%s exited with %d: %s)"
                          % (ENGINE_LABELS[engine], argv[0], rc, (err or out).strip() or "no message"))
            continue
        databases[engine] = sorted({line.strip() for line in out.splitlines() if line.strip()})
    free_bytes, free_inodes, devices = {}, {}, {}
    for location in space_locations(specs):
        measured = _existing_ancestor(location)
        try:
            info = statvfs(measured)
            devices[location] = stat(measured).st_dev
        except OSError as error:
            errors.append("the free space of the target's %s cannot be measured: %s"
                          % (location, error.strerror or error))
            continue
        free_bytes[location] = info.f_bavail * info.f_frsize
        # A filesystem without a fixed inode table (btrfs) reports 0 inodes in all.
        free_inodes[location] = info.f_favail if info.f_files else None
    return {
        "infrastructure_version": infrastructure_version(version_file) or None,
        "accounts": accounts,
        "users": {entry.pw_name: entry.pw_uid for entry in passwd()},
        "groups": {entry.gr_name: entry.gr_gid for entry in group()},
        "databases": databases,
        "free_bytes": free_bytes,
        "free_inodes": free_inodes,
        "devices": devices,
        "errors": errors,
    }


def _target_specs(target_state):
    specs = []
    for spec in target_state.get("accounts") or []:
        if isinstance(spec, dict):
            spec = validate_spec(spec, "%s.yml" % spec.get("name"), min_uid=0)
        specs.append(spec)
    return {spec.name: spec for spec in specs}


def target_blockers(target_state, target_version):
    """What blocks every move to this target: its version, what could not be read there."""
    found = list(target_state.get("errors") or [])
    actual = target_state.get("infrastructure_version")
    if not actual:
        found.insert(0, "the target records no infrastructure version (%s is missing or empty): it was not "
                        "laid down as infrastructure %s" % (VERSION_FILE, target_version))
    elif str(actual) != str(target_version):
        found.insert(0, "the target runs infrastructure %s, not %s: accounts translated for %s cannot run there"
                        % (actual, target_version, target_version))
    return found


# --- clashes and space -----------------------------------------------------------------------

def _claims(spec):
    """(kind, value, what it is called in a message) for what only one account may hold on a server."""
    yield "uid", spec.uid, "UID %d" % spec.uid
    yield "gid", spec.gid, "GID %d" % spec.gid
    for site in spec.sites:
        for domain in site.domains:
            yield "domain", domain, "domain %s" % domain
    for database in spec.databases:
        label = ENGINE_LABELS[database.engine]
        yield database.engine + " database", database.name, "%s database %s" % (label, database.name)
        for user in database.users:
            yield database.engine + " user", user.name, "%s user %s" % (label, user.name)


def _differing_fields(first, second):
    fields = ("home", "sites", "databases", "cron", "mailboxes")
    return [field for field in fields if getattr(first, field) != getattr(second, field)]


class _TargetView:
    """What the target holds, plus what the accounts planned so far will hold there."""

    def __init__(self, target_state, min_uid):
        self.min_uid = min_uid
        self.specs = _target_specs(target_state)
        self.users = dict(target_state.get("users") or {})
        self.groups = dict(target_state.get("groups") or {})
        self.databases = {engine: set(names) for engine, names in (target_state.get("databases") or {}).items()}
        self.owners = {}
        for spec in self.specs.values():
            self.claim(spec, "account %s on the target" % spec.name)
        for kind, names in (("uid", self.users), ("gid", self.groups)):
            label = "user" if kind == "uid" else "group"
            for name, number in sorted(names.items()):
                self.owners.setdefault((kind, number), (name, "%s %s on the target" % (label, name)))

    def claim(self, spec, description):
        for kind, value, _what in _claims(spec):
            self.owners.setdefault((kind, value), (spec.name, description))

    def resumed(self, spec):
        """The account is on the target already with this very spec: a move being resumed."""
        return self.specs.get(spec.name) == spec

    def clashes(self, spec):
        found = self.identity_clashes(spec)
        for kind, value, what in _claims(spec):
            owner = self.owners.get((kind, value))
            if owner and owner[0] != spec.name:
                verb = "is already served by" if kind == "domain" else "belongs to"
                found.append("%s %s %s" % (what, verb, owner[1]))
        found.extend(self.database_clashes(spec))
        return found

    def identity_clashes(self, spec):
        existing = self.specs.get(spec.name)
        if existing is not None:
            if (existing.uid, existing.gid) != (spec.uid, spec.gid):
                return ["an account named %s already exists on the target with UID %d and GID %d (the account "
                        "to move has UID %d and GID %d)" % (spec.name, existing.uid, existing.gid, spec.uid, spec.gid)]
            return ["an account named %s already exists on the target with different data (its %s differ)"
                    % (spec.name, ", ".join(_differing_fields(existing, spec)) or "specs")]
        found = []
        for label, table, number in (("user", self.users, spec.uid), ("group", self.groups, spec.gid)):
            held = table.get(spec.name)
            if held is None or held == number:
                continue
            id_label = "UID" if label == "user" else "GID"
            if held < self.min_uid:
                found.append("the target has a system %s named %s (%s %d)" % (label, spec.name, id_label, held))
            else:
                found.append("the target already has a %s named %s with %s %d (the account to move has %s %d)"
                             % (label, spec.name, id_label, held, id_label, number))
        return found

    def database_clashes(self, spec):
        found = []
        for database in spec.databases:
            if database.name not in self.databases.get(database.engine, ()):
                continue
            owner = self.owners.get((database.engine + " database", database.name))
            if owner is None:
                found.append("%s database %s already exists on the target and belongs to no account there"
                             % (ENGINE_LABELS[database.engine], database.name))
        return found


class _Space:
    """Free space per filesystem of the target, used up account by account in plan order."""

    def __init__(self, target_state):
        self.free = dict(target_state.get("free_bytes") or {})
        self.free_inodes = {path: count for path, count in (target_state.get("free_inodes") or {}).items()
                            if count is not None}
        self.devices = dict(target_state.get("devices") or {})
        self.data_dirs = dict(DATA_DIRS, **(target_state.get("data_dirs") or {}))
        self.used = {}
        self.used_inodes = {}

    def filesystem(self, location):
        return self.devices.get(location, location)

    def needs(self, spec, resources):
        """Bytes the account puts on each target path (its home's parent, each engine's data dir)."""
        needs = {posixpath.dirname(spec.home): resources.get("bytes") or 0}
        engines = {database.engine for database in spec.databases}
        for db in resources.get("databases") or []:
            if db.get("engine") in engines:
                location = self.data_dirs[db["engine"]]
                needs[location] = needs.get(location, 0) + (db.get("bytes") or 0)
        for engine in engines:
            needs.setdefault(self.data_dirs[engine], 0)
        return needs

    def add(self, spec, resources):
        by_filesystem = {}
        for location, count in self.needs(spec, resources).items():
            locations, total = by_filesystem.get(self.filesystem(location), ([], 0))
            by_filesystem[self.filesystem(location)] = (locations + [location], total + count)
        found = []
        for filesystem, (locations, count) in sorted(by_filesystem.items(), key=lambda item: sorted(item[1][0])):
            self.used[filesystem] = self.used.get(filesystem, 0) + count
            measured = [self.free[path] for path in self.free if self.filesystem(path) == filesystem]
            if not measured:
                # read_target_state lists a location it could not measure as a target blocker.
                continue
            need = int(math.ceil(self.used[filesystem] * SPACE_SAFETY_FACTOR)) + SPACE_RESERVE_BYTES
            free = min(measured)
            if need > free:
                found.append(
                    "not enough space on the target for %s: the accounts planned up to this one need %s there "
                    "(their files and databases x %g plus a %s reserve), %s is free"
                    % (" and ".join(sorted(locations)), gib(need), SPACE_SAFETY_FACTOR,
                       gib(SPACE_RESERVE_BYTES), gib(free)))
        return found + self.add_inodes(posixpath.dirname(spec.home), resources.get("files") or 0)

    def add_inodes(self, home, files):
        filesystem = self.filesystem(home)
        self.used_inodes[filesystem] = self.used_inodes.get(filesystem, 0) + files
        measured = [self.free_inodes[path] for path in self.free_inodes if self.filesystem(path) == filesystem]
        if not measured:
            return []
        need = int(math.ceil(self.used_inodes[filesystem] * SPACE_SAFETY_FACTOR)) + INODE_RESERVE
        if need <= min(measured):
            return []
        return ["not enough inodes on the target for %s: the accounts planned up to this one need %s there "
                "(their files x %g plus a reserve of %s), %s are free"
                % (home, "{:,}".format(need), SPACE_SAFETY_FACTOR, "{:,}".format(INODE_RESERVE),
                   "{:,}".format(min(measured)))]


def gib(count):
    return "%.2f GiB" % (count / float(GIB))


def source_blockers(spec, resources):
    """What the source reports missing: a database of the spec that does not exist there."""
    return ["%s database %s is in the account's spec but does not exist on the source"
            % (ENGINE_LABELS.get(db.get("engine"), db.get("engine")), db.get("name"))
            for db in resources.get("databases") or [] if db.get("exists") is False]


def blockers_on_target(specs_with_resources, target_state, min_uid=DEFAULT_MIN_UID):
    """Per account (a dict by name, in plan order) the sentences saying what blocks it on the target.

    ``specs_with_resources``: ``(AccountSpec, resources)`` pairs in plan order (the specs as they
    will be on the target). ``target_state``: ``infrastructure_version``, ``accounts`` (specs),
    ``users`` and ``groups`` (name to UID/GID), ``databases`` (engine to names), ``free_bytes``
    (path to bytes), optionally ``free_inodes`` (path to inodes, None for no limit), ``devices``
    (path to device: paths on one filesystem share its space) and ``data_dirs`` (engine to
    path). An account already on the target with the same spec (a move being resumed) clashes
    with nothing and needs no more space: its files were pre-copied before its spec was written
    there.
    """
    view = _TargetView(target_state, min_uid)
    space = _Space(target_state)
    result = {}
    for spec, resources in specs_with_resources:
        if spec.name in result:
            raise PlanInputError("account %s is listed twice" % spec.name)
        found = []
        if not view.resumed(spec):
            found = view.clashes(spec) + space.add(spec, resources)
        view.claim(spec, "account %s, earlier in this plan" % spec.name)
        result[spec.name] = ["account %s: %s" % (spec.name, text) for text in found]
    return result


# --- the plan --------------------------------------------------------------------------------

def plan_moves(accounts, catalogue, source_version, target_version, target_state,
               min_uid=DEFAULT_MIN_UID, rates=None):
    """Everything account_plan_info returns.

    ``accounts``: ``(AccountSpec, resources)`` pairs from ``parse_accounts``; ``target_version``
    None means the newest version of the catalogue.
    """
    if target_version is None:
        target_version = newest_version(catalogue)
    version_entry(catalogue, source_version, "source infrastructure")
    version_entry(catalogue, target_version, "target infrastructure")
    source_version, target_version = str(source_version), str(target_version)
    rates = freeze_rates(rates)
    translated = [(translate_spec(spec, catalogue, source_version, target_version), resources)
                  for spec, resources in accounts]
    on_target = blockers_on_target([(result[0], resources) for result, resources in translated],
                                   target_state, min_uid=min_uid)
    existing = _target_specs(target_state)
    entries = []
    for (spec, changes, blockers), resources in translated:
        seconds, formula = estimate_freeze_s(resources, rates)
        entries.append({
            "name": spec.name,
            "translated_spec": spec.to_dict(),
            "changes": changes,
            "blockers": (["account %s: %s" % (spec.name, text) for text in blockers + source_blockers(spec, resources)]
                         + on_target[spec.name]),
            "resumed": existing.get(spec.name) == spec,
            "freeze_estimate_s": seconds,
            "freeze_estimate_formula": formula,
        })
    everything_on_target = target_blockers(target_state, target_version)
    flat = everything_on_target + [text for entry in entries for text in entry["blockers"]]
    return {
        "source_version": source_version,
        "target_version": target_version,
        "ready": not flat,
        "blockers": flat,
        "target_blockers": everything_on_target,
        "accounts": entries,
        "freeze_estimate_total_s": round(sum(entry["freeze_estimate_s"] for entry in entries), 1),
    }
