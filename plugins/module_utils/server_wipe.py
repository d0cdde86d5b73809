# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Wiping a transit server when its lease ends, then checking that nothing of the customer is left.

``docs/transit.md`` ("Wiping a transit server") describes what goes and what the check looks at.
``scan`` reads the server once (files below a root prefix, databases through a runner);
``plan_accounts`` says what each account holds there; ``wipe`` removes it in a safe order and
returns, with ``leftovers`` of a fresh scan, whatever is still there. Standard library only; the
root prefix, the commands, the signals and the process list are parameters, so the tests run a
whole wipe in a temporary directory with fake commands.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import fcntl
import glob
import os
import re
import shutil
import socket
import stat
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from ansible_collections.hosting.migration.plugins.module_utils.account_inventory import SPEC_DIR_ARGUMENTS
from ansible_collections.hosting.migration.plugins.module_utils.account_render import (
    STATE_DIR, AccountStateError, list_processes, mark_spool_changed, own_lineage, stop_account_processes)
from ansible_collections.hosting.migration.plugins.module_utils.account_spec import (
    DEFAULT_MIN_UID, HOME_PARENTS, MAX_UID, SPEC_SUFFIX, SpecError, database_prefix, load_spec_file)
from ansible_collections.hosting.migration.plugins.module_utils.transfer import (
    AUTHORIZED_KEYS, COMMENT_PREFIX, CONFIG_DIR, KEY_ROOT, LOG_PATH, write_atomic)

MARIADB = "mariadb"
POSTGRESQL = "postgresql"
ENGINE_TITLES = {MARIADB: "MariaDB", POSTGRESQL: "PostgreSQL"}
SYSTEM_DATABASES = {
    MARIADB: frozenset(("information_schema", "mysql", "performance_schema", "sys")),
    POSTGRESQL: frozenset(("postgres", "template0", "template1")),
}
# Users the packages make; PUBLIC is MariaDB's role of every user (10.11+), debian-sys-maint
# the maintenance user of older Debian packages, "" the anonymous users mariadb-install-db can
# make (an account's database users are named after it, never empty).
MARIADB_SYSTEM_USERS = frozenset(("root", "mysql", "mariadb.sys", "PUBLIC", "debian-sys-maint", ""))
# PostgreSQL's own roles: postgres and the predefined pg_* roles.
POSTGRESQL_SYSTEM_ROLE_RE = re.compile(r"postgres|pg_.*")
# What the infrastructure role leaves in place: Debian's default site (if it is there at all,
# the provider's default server is /etc/nginx/conf.d/hosting.conf) and PHP-FPM's own pool.
NGINX_SITES_KEPT = ("default",)
PHP_POOLS_KEPT = ("www.conf",)
# Where an account's processes leave files outside its home (PHP's open_basedir allows /tmp).
TEMP_DIRS = ("/tmp", "/var/tmp", "/dev/shm", "/var/lib/php/sessions")
# The server's own logs hold the customer's visitors' requests and the errors of its sites: emptied
# in place (owner and mode kept, for the services that write them), their rotated copies removed.
SERVICE_LOGS = ("/var/log/nginx/access.log", "/var/log/nginx/error.log", "/var/log/php*-fpm.log")
NOT_HOMES = ("lost+found",)

_NAME_RE = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_ACCOUNT_FILE_RE = re.compile(r"account-([a-z][a-z0-9_-]{0,31})\.conf")

SERVER_WIPE_ARGUMENT_SPEC = dict(
    SPEC_DIR_ARGUMENTS,
    confirm=dict(type="str", required=True),
    check_only=dict(type="bool", default=False),
)


class WipeError(Exception):
    """A wipe that cannot start or cannot see the server, as one plain sentence."""


class WipeRefused(WipeError):
    """Refused before anything was changed (the server is not the one named, bad input)."""


# --- where things are ------------------------------------------------------------------------

@dataclass(frozen=True)
class WipeLayout:
    """Paths on the server (absolute, below ``root``) and the commands a wipe runs.

    A command set to None is not run: the service is not installed on this server.
    """
    root: str = "/"
    spec_dir: str = "/etc/hosting/accounts"
    min_uid: int = DEFAULT_MIN_UID
    state_dir: str = STATE_DIR
    nginx_dir: str = "/etc/nginx/sites-enabled"
    php_dir: str = "/etc/php"
    cron_dir: str = "/var/spool/cron/crontabs"
    suspended_dir: str = "/var/spool/cron/hosting-suspended"
    mail_dir: str = "/var/mail"
    proc_dir: str = "/proc"
    passwd_file: str = "/etc/passwd"
    group_file: str = "/etc/group"
    hostname_file: str = "/etc/hostname"
    key_root: str = KEY_ROOT
    authorized_keys: str = AUTHORIZED_KEYS
    transfers_dir: str = CONFIG_DIR
    transfer_log: str = LOG_PATH
    service_logs: Tuple[str, ...] = SERVICE_LOGS
    temp_dirs: Tuple[str, ...] = TEMP_DIRS
    mariadb: Optional[Tuple[str, ...]] = ("mariadb",)
    psql: Optional[Tuple[str, ...]] = ("runuser", "-u", "postgres", "--", "psql")
    userdel: Tuple[str, ...] = ("userdel",)
    groupdel: Tuple[str, ...] = ("groupdel",)
    nginx_test: Optional[Tuple[str, ...]] = ("nginx", "-t")
    nginx_reload: Optional[Tuple[str, ...]] = ("systemctl", "try-reload-or-restart", "nginx")
    php_reload: Optional[Tuple[str, ...]] = ("systemctl", "try-reload-or-restart", "php%s-fpm")
    # A PHP version whose PHP-FPM is installed (a pool directory alone may be a leftover).
    php_fpm_program: str = "/usr/sbin/php-fpm%s"

    def path(self, server_path):
        """Where a path of the server is on the file system this code sees."""
        return os.path.join(self.root, server_path.lstrip("/"))

    def pool_dir(self, version):
        return "%s/%s/fpm/pool.d" % (self.php_dir, version)

    def in_range(self, number):
        return number is not None and self.min_uid <= number < MAX_UID


def _listdir(layout, directory):
    """Names in a directory of the server, sorted; [] when it does not exist."""
    try:
        return sorted(os.listdir(layout.path(directory)))
    except (FileNotFoundError, NotADirectoryError):
        return []


def _lstat(layout, path):
    try:
        return os.lstat(layout.path(path))
    except FileNotFoundError:
        return None


def _read_id_file(layout, path, with_home):
    """name -> (id, home) from /etc/passwd (with_home) or /etc/group."""
    entries = {}
    try:
        with open(layout.path(path), "r", encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
    except FileNotFoundError:
        return entries
    for line in lines:
        fields = line.split(":")
        if len(fields) < 4 or not fields[2].isdigit():
            continue
        entries[fields[0]] = (int(fields[2]), fields[5] if with_home and len(fields) > 5 else None)
    return entries


# --- the server as it is -----------------------------------------------------------------------

@dataclass
class Scan:
    """What a wipe looks at, read once; paths are the server's."""
    users: Dict[str, Tuple[int, Optional[str]]]
    groups: Dict[str, Tuple[int, Optional[str]]]
    spec_files: Dict[str, str]
    state_files: List[str]
    nginx_sites: List[str]
    pools: List[Tuple[str, str]]
    crontabs: List[str]
    suspended_crontabs: List[str]
    mail_spools: List[str]
    homes: List[Tuple[str, Optional[int]]]
    temp_files: List[Tuple[str, int]]
    processes: list
    transfer_keys: List[str]
    transfer_lines: List[str]
    transfer_configs: List[str]
    transfer_logs: List[Tuple[str, int]]
    databases: Dict[str, List[str]]
    database_users: Dict[str, List[Tuple[str, Optional[str]]]]
    service_logs: List[Tuple[str, int, bool]] = field(default_factory=list)

    def system_names(self, layout):
        """Users of the system (not accounts): never removed, nor anything named after them."""
        return {name for name, (uid, _home) in self.users.items() if not layout.in_range(uid)}

    def system_homes(self, layout):
        return {os.path.normpath(home) for _name, (uid, home) in self.users.items()
                if home and not layout.in_range(uid)}


def scan(layout, runner, exclude=()):
    """Read everything a wipe removes or checks; changes nothing. WipeError when a database
    server cannot be asked (the check could then not prove the server clean)."""
    users = _read_id_file(layout, layout.passwd_file, True)
    groups = _read_id_file(layout, layout.group_file, False)
    spec_files = {name[:-len(SPEC_SUFFIX)]: "%s/%s" % (layout.spec_dir, name)
                  for name in _listdir(layout, layout.spec_dir)
                  if name.endswith(SPEC_SUFFIX) and not name.startswith(".")}
    pools = [(version, "%s/%s" % (layout.pool_dir(version), name))
             for version in _listdir(layout, layout.php_dir)
             for name in _listdir(layout, layout.pool_dir(version))
             if name.endswith(".conf") and name not in PHP_POOLS_KEPT]
    homes = []
    for parent in HOME_PARENTS:
        for name in _listdir(layout, parent):
            info = _lstat(layout, "%s/%s" % (parent, name))
            homes.append(("%s/%s" % (parent, name), info.st_uid if info else None))
    temp_files = []
    for directory in layout.temp_dirs:
        for name in _listdir(layout, directory):
            info = _lstat(layout, "%s/%s" % (directory, name))
            if info is not None and layout.in_range(info.st_uid):
                temp_files.append(("%s/%s" % (directory, name), info.st_uid))
    logs = [(path, size) for path, size, _main in _scan_logs(layout, [layout.transfer_log], pattern=False)]
    return Scan(
        users=users, groups=groups, spec_files=spec_files,
        state_files=_listdir(layout, layout.state_dir),
        nginx_sites=["%s/%s" % (layout.nginx_dir, name) for name in _listdir(layout, layout.nginx_dir)
                     if name not in NGINX_SITES_KEPT],
        pools=pools,
        crontabs=[name for name in _listdir(layout, layout.cron_dir) if not name.startswith(".")],
        suspended_crontabs=[name for name in _listdir(layout, layout.suspended_dir) if not name.startswith(".")],
        mail_spools=_listdir(layout, layout.mail_dir),
        homes=homes, temp_files=temp_files,
        processes=_account_range_processes(layout, exclude),
        transfer_keys=["%s/%s" % (layout.key_root, name) for name in _listdir(layout, layout.key_root)],
        transfer_lines=[comment for comment, _line in _transfer_lines(_read_bytes(layout.path(layout.authorized_keys)))],
        transfer_configs=["%s/%s" % (layout.transfers_dir, name) for name in _listdir(layout, layout.transfers_dir)
                          if name.endswith(".json")],
        transfer_logs=logs,
        service_logs=_scan_logs(layout, layout.service_logs),
        databases={MARIADB: _mariadb_databases(layout, runner), POSTGRESQL: _postgresql_databases(layout, runner)},
        database_users={MARIADB: _mariadb_users(layout, runner), POSTGRESQL: _postgresql_roles(layout, runner)},
    )


def _scan_logs(layout, logs, pattern=True):
    """(path, size, main) of each log of ``logs`` (glob patterns unless ``pattern`` is false) and
    of its rotated copies (``.1``, ``.2.gz``...): main is true for the log itself."""
    found = []
    for log in logs:
        mains = sorted(glob.glob(layout.path(log))) if pattern else [layout.path(log)]
        for main in mains:
            for path in [main] + sorted(glob.glob(glob.escape(main) + ".*")):
                server_path = "/" + os.path.relpath(path, layout.root)
                info = _lstat(layout, server_path)
                if info is not None and stat.S_ISREG(info.st_mode):
                    found.append((server_path, info.st_size, path == main))
    return found


def _account_range_processes(layout, exclude):
    """Live processes running as a UID of the account range (never one with UID 0 among its UIDs)."""
    proc_dir = layout.path(layout.proc_dir)
    if not os.path.isdir(proc_dir):
        return []
    return [process for process in list_processes(proc_dir)
            if process.pid != 1 and process.pid not in exclude and 0 not in process.uids
            and process.state not in ("Z", "X") and any(layout.in_range(uid) for uid in process.uids)]


def _read_bytes(path):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _transfer_comment(line):
    """The comment of an authorized_keys line of a transfer (its last word starts with
    ``hosting-migration:`` and it is not commented out, as transfer_authorized finds its line), or None."""
    words = line.rstrip(b"\r\n").split()
    if words and words[-1].startswith(COMMENT_PREFIX.encode("ascii")) and not line.lstrip().startswith(b"#"):
        return words[-1].decode("utf-8", "replace")
    return None


def _transfer_lines(data):
    """(comment, line) of every transfer line of authorized_keys."""
    lines = [(_transfer_comment(line), line) for line in (data or b"").splitlines(True)]
    return [(comment, line) for comment, line in lines if comment is not None]


# --- the databases -----------------------------------------------------------------------------

def _query(layout, runner, engine, sql):
    """Rows of a query (tab-separated columns), as root through the local socket."""
    if engine == MARIADB:
        argv = list(layout.mariadb) + ["--batch", "--skip-column-names", "-e", sql]
    else:
        argv = list(layout.psql) + ["-X", "-A", "-t", "-q", "-F", "\t", "-v", "ON_ERROR_STOP=1",
                                    "-d", "postgres", "-c", sql]
    rc, out, err = runner(argv)
    if rc != 0:
        raise WipeError("%s: %s failed: %s" % (ENGINE_TITLES[engine], sql, (err or out or "exit code %s" % rc).strip()))
    return [line.split("\t") for line in (out or "").splitlines() if line.strip()]


def _mariadb_databases(layout, runner):
    if layout.mariadb is None:
        return []
    return sorted(row[0] for row in _query(layout, runner, MARIADB, "SELECT schema_name FROM information_schema.schemata"))


def _mariadb_users(layout, runner):
    """(user, host) of every MariaDB user, (role, None) of every role: they are dropped differently."""
    if layout.mariadb is None:
        return []
    rows = _query(layout, runner, MARIADB, "SELECT user, host, is_role FROM mysql.user")
    return sorted(((row[0], None) if row[2:] == ["Y"] else (row[0], row[1] if len(row) > 1 else ""))
                  for row in rows if row)


def _postgresql_databases(layout, runner):
    if layout.psql is None:
        return []
    return sorted(row[0] for row in _query(layout, runner, POSTGRESQL, "SELECT datname FROM pg_database"))


def _postgresql_roles(layout, runner):
    if layout.psql is None:
        return []
    return sorted((row[0], None) for row in _query(layout, runner, POSTGRESQL, "SELECT rolname FROM pg_roles"))


def _mariadb_string(text):
    return "'%s'" % text.replace("\\", "\\\\").replace("'", "''")


def database_user_text(engine, user):
    name, host = user
    if engine == MARIADB:
        if host is None:
            return "%s role %s" % (ENGINE_TITLES[engine], _mariadb_string(name))
        return "%s user %s@%s" % (ENGINE_TITLES[engine], _mariadb_string(name), _mariadb_string(host))
    return "%s role %s" % (ENGINE_TITLES[engine], name)


def drop_database(layout, runner, engine, name):
    if engine == MARIADB:
        _query(layout, runner, engine, "DROP DATABASE IF EXISTS `%s`" % name.replace("`", "``"))
    else:
        # WITH (FORCE) ends the sessions still connected to it (PostgreSQL 13 and later).
        _query(layout, runner, engine, 'DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name.replace('"', '""'))


def drop_database_user(layout, runner, engine, user):
    name, host = user
    if engine == MARIADB and host is None:
        # DROP USER IF EXISTS leaves a role in place without a word.
        _query(layout, runner, engine, "DROP ROLE IF EXISTS %s" % _mariadb_string(name))
    elif engine == MARIADB:
        _query(layout, runner, engine, "DROP USER IF EXISTS %s@%s" % (_mariadb_string(name), _mariadb_string(host)))
    else:
        quoted = '"%s"' % name.replace('"', '""')
        # DROP OWNED also revokes what the role was granted on databases (shared objects).
        _query(layout, runner, engine, "DROP OWNED BY %s" % quoted)
        _query(layout, runner, engine, "DROP ROLE IF EXISTS %s" % quoted)


# --- what each account holds ---------------------------------------------------------------------

@dataclass
class AccountPlan:
    """Everything of one account on the server, in the order a wipe removes it."""
    name: str
    spec: object = None
    spec_file: Optional[str] = None
    spec_problem: Optional[str] = None
    uid: Optional[int] = None
    gid: Optional[int] = None
    nginx_sites: List[str] = field(default_factory=list)
    pools: List[Tuple[str, str]] = field(default_factory=list)
    crontabs: List[str] = field(default_factory=list)
    processes: list = field(default_factory=list)
    temp_files: List[str] = field(default_factory=list)
    databases: Dict[str, List[str]] = field(default_factory=dict)
    database_users: Dict[str, list] = field(default_factory=dict)
    mail_spool: Optional[str] = None
    homes: List[str] = field(default_factory=list)
    state_file: Optional[str] = None
    user: bool = False
    group: bool = False

    def items(self):
        """What the wipe removes, one noun phrase each."""
        items = ["nginx site %s" % path for path in self.nginx_sites]
        items += ["PHP-FPM pool %s" % path for _version, path in self.pools]
        items += ["crontab %s" % path for path in self.crontabs]
        items += ["process %d (%s)" % (process.pid, process.name) for process in self.processes]
        items += ["temporary file %s" % path for path in self.temp_files]
        for engine in (MARIADB, POSTGRESQL):
            items += ["%s database %s" % (ENGINE_TITLES[engine], name) for name in self.databases.get(engine, ())]
        for engine in (MARIADB, POSTGRESQL):
            items += [database_user_text(engine, user) for user in self.database_users.get(engine, ())]
        items += ["mail spool %s" % self.mail_spool] if self.mail_spool else []
        items += ["home %s" % path for path in self.homes]
        items += ["state file %s" % self.state_file] if self.state_file else []
        items += ["Unix user %s (UID %d)" % (self.name, self.uid)] if self.user else []
        items += ["Unix group %s (GID %d)" % (self.name, self.gid)] if self.group else []
        items += ["account spec %s" % self.spec_file] if self.spec_file else []
        return items


def _home_candidate(path, name=None):
    """A home the wipe may remove: /home/<x> or /srv/<x> (x = name when given), nothing else."""
    if not path:
        return False
    parent, base = os.path.split(os.path.normpath(path))
    return (parent in HOME_PARENTS and base not in ("", ".", "..") + NOT_HOMES
            and os.path.normpath(path) == path.rstrip("/") and (name is None or base == name))


def account_names(found, layout):
    """Every account the server holds something of: a spec, a user or group in the account range,
    or a file named after it (site, pool, crontab, state, mail spool, home); so a wipe interrupted
    after the user was deleted still finds the rest. Never the name of a system user."""
    system = found.system_names(layout)
    system_homes = found.system_homes(layout)
    candidates = list(found.spec_files)
    candidates += [name for name, (uid, _home) in found.users.items() if layout.in_range(uid)]
    candidates += [name for name, (gid, _home) in found.groups.items() if layout.in_range(gid)]
    candidates += list(found.state_files) + found.crontabs + found.suspended_crontabs + found.mail_spools
    for path in found.nginx_sites + [path for _version, path in found.pools]:
        match = _ACCOUNT_FILE_RE.fullmatch(os.path.basename(path))
        if match:
            candidates.append(match.group(1))
    for path, _uid in found.homes:
        if path.startswith("/home/") and os.path.normpath(path) not in system_homes:
            candidates.append(os.path.basename(path))
    # A system user's name is never an account's, whatever carries it (a spec root.yml, a group
    # admin in the account range): the check lists such things for a person to look at.
    return sorted({name for name in candidates if name not in system and _NAME_RE.fullmatch(name)})


def plan_accounts(found, layout):
    """One AccountPlan per account found, sorted by name; reads the specs, changes nothing."""
    system_homes = found.system_homes(layout)
    plans = []
    for name in account_names(found, layout):
        plan = AccountPlan(name)
        if name in found.spec_files:
            plan.spec_file = found.spec_files[name]
            try:
                plan.spec = load_spec_file(layout.path(plan.spec_file), min_uid=layout.min_uid)
            except SpecError as error:
                # A broken spec does not stop the wipe: the account goes by its name.
                plan.spec_problem = str(error)
        user = found.users.get(name)
        group = found.groups.get(name)
        plan.user = user is not None and layout.in_range(user[0])
        plan.group = group is not None and layout.in_range(group[0])
        plan.uid = user[0] if plan.user else (plan.spec.uid if plan.spec else None)
        plan.gid = group[0] if plan.group else None
        site = "%s/account-%s.conf" % (layout.nginx_dir, name)
        plan.nginx_sites = [site] if site in found.nginx_sites else []
        plan.pools = [(version, path) for version, path in found.pools
                      if os.path.basename(path) == "account-%s.conf" % name]
        plan.crontabs = (["%s/%s" % (layout.cron_dir, name)] if name in found.crontabs else []) + \
                        (["%s/%s" % (layout.suspended_dir, name)] if name in found.suspended_crontabs else [])
        plan.processes = [process for process in found.processes if plan.uid in process.uids]
        plan.temp_files = [path for path, uid in found.temp_files if uid == plan.uid]
        _plan_databases(plan, found)
        plan.mail_spool = "%s/%s" % (layout.mail_dir, name) if name in found.mail_spools else None
        plan.homes = _plan_homes(plan, found, user, system_homes)
        plan.state_file = "%s/%s" % (layout.state_dir, name) if name in found.state_files else None
        plans.append(plan)
    return plans


def _plan_databases(plan, found):
    """The spec's databases and users, and any whose name starts with the account's prefix (the
    spec's rule): an account laid down without a spec, or with one that lost entries, still goes."""
    prefix = database_prefix(plan.name)
    for engine in (MARIADB, POSTGRESQL):
        named = {database.name for database in (plan.spec.databases if plan.spec else ()) if database.engine == engine}
        user_names = {user.name for database in (plan.spec.databases if plan.spec else ())
                      if database.engine == engine for user in database.users}
        plan.databases[engine] = [name for name in found.databases[engine]
                                  if name not in SYSTEM_DATABASES[engine] and (name in named or name.startswith(prefix))]
        plan.database_users[engine] = [user for user in found.database_users[engine]
                                       if not _system_database_user(engine, user[0])
                                       and (user[0] in user_names or user[0].startswith(prefix))]


def _system_database_user(engine, name):
    if engine == MARIADB:
        return name in MARIADB_SYSTEM_USERS
    return bool(POSTGRESQL_SYSTEM_ROLE_RE.fullmatch(name))


def _plan_homes(plan, found, user, system_homes):
    wanted = ["/home/%s" % plan.name]
    if plan.spec is not None:
        wanted.append(plan.spec.home)
    if plan.user and _home_candidate(user[1], plan.name):
        wanted.append(os.path.normpath(user[1]))
    present = {path for path, _uid in found.homes}
    return sorted({path for path in wanted if path in present and _home_candidate(path, plan.name)
                   and path not in system_homes})


def other_items(found, plans):
    """Processes and temporary files of account-range UIDs that no account found has."""
    uids = {plan.uid for plan in plans}
    processes = [process for process in found.processes if not uids.intersection(process.uids)]
    files = [(path, uid) for path, uid in found.temp_files if uid not in uids]
    return processes, files


# --- the check -----------------------------------------------------------------------------------

def leftovers(found, layout):
    """Everything of a customer a scan still finds, one sentence each; [] on a clean server."""
    system = found.system_names(layout)
    system_homes = found.system_homes(layout)
    left = []
    left += ["Unix user %s (UID %d) is still there." % (name, uid)
             for name, (uid, _home) in sorted(found.users.items()) if layout.in_range(uid)]
    left += ["Unix group %s (GID %d) is still there." % (name, gid)
             for name, (gid, _home) in sorted(found.groups.items()) if layout.in_range(gid)]
    for path, uid in found.homes:
        if path.startswith("/home/"):
            if os.path.basename(path) not in NOT_HOMES and os.path.normpath(path) not in system_homes:
                left.append("Home %s is still there." % path)
        elif layout.in_range(uid):
            left.append("%s (owner UID %d) is still there." % (path, uid))
    left += ["Account spec %s is still there." % path for _name, path in sorted(found.spec_files.items())]
    left += ["State file %s/%s is still there." % (layout.state_dir, name) for name in found.state_files]
    left += ["nginx site %s is still there." % path for path in found.nginx_sites]
    left += ["PHP-FPM pool %s is still there." % path for _version, path in found.pools]
    left += ["Crontab %s/%s is still there." % (layout.cron_dir, name) for name in found.crontabs if name not in system]
    left += ["Suspended crontab %s/%s is still there." % (layout.suspended_dir, name)
             for name in found.suspended_crontabs]
    left += ["Mail spool %s/%s is still there." % (layout.mail_dir, name)
             for name in found.mail_spools if name not in system]
    left += ["Temporary file %s (owner UID %d) is still there." % entry for entry in found.temp_files]
    left += ["Process %d (%s) of UID %d is still running." % (process.pid, process.name, _range_uid(process, layout))
             for process in found.processes]
    for engine in (MARIADB, POSTGRESQL):
        left += ["%s database %s is still there." % (ENGINE_TITLES[engine], name)
                 for name in found.databases[engine] if name not in SYSTEM_DATABASES[engine]]
    for engine in (MARIADB, POSTGRESQL):
        left += ["%s is still there." % database_user_text(engine, user)
                 for user in found.database_users[engine] if not _system_database_user(engine, user[0])]
    left += ["Transfer key %s is still there." % path for path in found.transfer_keys]
    left += ["Transfer authorization %s is still in %s." % (comment, layout.authorized_keys)
             for comment in found.transfer_lines]
    left += ["Transfer authorization %s is still there." % path for path in found.transfer_configs]
    left += ["Transfer log %s still holds %d bytes." % (path, size) for path, size in found.transfer_logs
             if size and path == layout.transfer_log]
    left += ["Rotated transfer log %s is still there." % path for path, _size in found.transfer_logs
             if path != layout.transfer_log]
    # The service logs are not checked: nginx and PHP-FPM write to them again at once.
    return left


def _range_uid(process, layout):
    return next(uid for uid in process.uids if layout.in_range(uid))


# --- confirmation ------------------------------------------------------------------------------

def server_names(layout, hostname=None):
    """The names this server calls itself: /etc/hostname and the kernel's host name."""
    names = []
    text = _read_bytes(layout.path(layout.hostname_file))
    if text:
        names.append(text.decode("utf-8", "replace").strip())
    names.append(socket.gethostname() if hostname is None else hostname)
    return [name for name in names if name]


def check_confirm(confirm, names):
    """confirm must be one of the server's own names (case and a trailing dot aside)."""
    def normal(text):
        return text.strip().rstrip(".").lower()

    if not isinstance(confirm, str) or not normal(confirm):
        raise WipeRefused("confirm must be the inventory hostname of the transit server to wipe "
                          "(usually \"{{ inventory_hostname }}\"); nothing was changed.")
    if normal(confirm) not in {normal(name) for name in names}:
        raise WipeRefused("This server calls itself %s, not %s: refusing to wipe it (a delegate_to or "
                          "inventory mistake?); nothing was changed."
                          % (" / ".join(sorted(set(names))) or "nothing", confirm.strip()))


# --- removing ------------------------------------------------------------------------------------

def remove_path(layout, path):
    """Remove a file, a symbolic link (not what it points to) or a whole tree; never a mount point."""
    real = layout.path(path)
    info = os.lstat(real)
    if stat.S_ISDIR(info.st_mode):
        if os.path.ismount(real):
            raise WipeError("%s is a mount point; unmount it first" % path)
        shutil.rmtree(real)
    else:
        os.unlink(real)


class _Lock(object):
    """The lock transfer_authorization takes on <transfers dir>/.lock around authorized_keys."""

    def __init__(self, directory):
        self.path = os.path.join(directory, ".lock")
        self.handle = None

    def __enter__(self):
        self.handle = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.handle, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        os.close(self.handle)


def remove_transfer_lines(layout):
    """Drop every transfer line from authorized_keys, keeping every other line byte for byte, under
    the lock transfer_authorization takes; returns the comments of the lines dropped."""
    path = os.path.realpath(layout.path(layout.authorized_keys))
    config_dir = layout.path(layout.transfers_dir)

    def edit():
        current = _read_bytes(path)
        dropped = [comment for comment, _line in _transfer_lines(current)]
        if dropped:
            kept = b"".join(line for line in current.splitlines(True) if _transfer_comment(line) is None)
            write_atomic(path, kept, 0o600, like=os.stat(path))
        return dropped

    if os.path.isdir(config_dir):
        with _Lock(config_dir):
            return edit()
    return edit()


FAILED = object()


class _Run(object):
    """Runs the steps of a wipe, recording what went and what failed; a failure does not stop the
    other steps (the next run retries what is left)."""

    def __init__(self, layout, runner):
        self.layout = layout
        self.runner = runner
        self.errors = []

    def attempt(self, removed, item, action, *args, verb="remove"):
        """action(*args); on success item goes to removed and the outcome is returned, on failure
        the error is recorded and FAILED returned."""
        try:
            outcome = action(*args)
        except (OSError, WipeError, AccountStateError) as error:
            if isinstance(error, OSError) and error.strerror:
                reason = "%s: %s" % (error.filename, error.strerror) if error.filename else error.strerror
            else:
                reason = str(error)
            self.errors.append("Could not %s %s: %s" % (verb, item, reason))
            return FAILED
        if removed is not None:
            removed.append(item)
        return outcome

    def command(self, argv, what):
        rc, out, err = self.runner(list(argv))
        if rc != 0:
            self.errors.append("%s failed: %s" % (what, (err or out or "exit code %s" % rc).strip()))
            return False
        return True


def wipe(layout, runner, confirm, hostname=None, check_only=False, signals=None, exclude=None):
    """Wipe the server, or with check_only only say what would go and what is there.

    Returns {"removed": {"accounts", "transfer_credentials", "other"}, "reloaded", "found",
    "errors", "warnings", "changed"}. The module fails when errors or found are not empty
    (outside check_only). WipeRefused before anything is read or changed when confirm does not
    name this server; WipeError when a database server cannot be asked.
    """
    check_confirm(confirm, server_names(layout, hostname))
    if exclude is None:
        exclude = own_lineage(layout.path(layout.proc_dir))
    before = scan(layout, runner, exclude)
    plans = plan_accounts(before, layout)
    other_processes, other_files = other_items(before, plans)
    transfer_items = (["transfer key %s" % path for path in before.transfer_keys]
                      + ["transfer authorization %s in %s" % (comment, layout.authorized_keys)
                         for comment in before.transfer_lines]
                      + ["transfer authorization %s" % path for path in before.transfer_configs]
                      + ["transfer log %s (%d bytes emptied)" % (path, size)
                         for path, size in before.transfer_logs if size and path == layout.transfer_log]
                      + ["rotated transfer log %s" % path for path, _size in before.transfer_logs
                         if path != layout.transfer_log])
    other = (["process %d (%s) of UID %d" % (process.pid, process.name, _range_uid(process, layout))
              for process in other_processes]
             + ["temporary file %s (owner UID %d)" % entry for entry in other_files]
             + _log_items(before.service_logs))
    warnings = ["%s; the account is wiped by its name" % plan.spec_problem for plan in plans if plan.spec_problem]
    if check_only:
        return {"removed": {"accounts": [{"name": plan.name, "removed": plan.items()} for plan in plans],
                            "transfer_credentials": transfer_items, "other": other},
                "reloaded": [], "found": leftovers(before, layout), "errors": [], "warnings": warnings,
                "changed": bool(plans or transfer_items or other)}

    run = _Run(layout, runner)
    removed = {plan.name: [] for plan in plans}
    reloaded = _remove_served(run, plans, removed)
    _remove_runtime(run, plans, removed, signals, exclude, other_processes)
    other_removed = ["process %d (%s) of UID %d" % (process.pid, process.name, _range_uid(process, layout))
                     for process in other_processes]
    for path, uid in other_files:
        run.attempt(other_removed, "temporary file %s (owner UID %d)" % (path, uid), remove_path, layout, path)
    _remove_data(run, plans, removed)
    _remove_identities(run, plans, removed)
    transfers_removed = _remove_transfer_credentials(run, before)
    for (path, size, main), item in zip(before.service_logs, _log_items(before.service_logs, every=True)):
        if main and size:
            run.attempt(other_removed, item, _truncate, layout.path(path))
        elif not main:
            run.attempt(other_removed, item, remove_path, layout, path)

    after = scan(layout, runner, exclude)
    accounts = [{"name": plan.name, "removed": removed[plan.name]} for plan in plans]
    return {"removed": {"accounts": accounts, "transfer_credentials": transfers_removed, "other": other_removed},
            "reloaded": reloaded, "found": leftovers(after, layout), "errors": run.errors, "warnings": warnings,
            "changed": bool(any(removed.values()) or transfers_removed or other_removed)}


def _remove_served(run, plans, removed):
    """Sites, then nginx tested and reloaded; pools, then PHP-FPM reloaded. Done whenever any
    account is found, so a run interrupted before a reload reloads the next time."""
    layout = run.layout
    reloaded = []
    for plan in plans:
        for path in plan.nginx_sites:
            run.attempt(removed[plan.name], "nginx site %s" % path, remove_path, layout, path)
    if plans and layout.nginx_test is not None:
        if run.command(layout.nginx_test, "The nginx configuration test (the account sites removed, nginx not "
                                          "reloaded)"):
            if run.command(layout.nginx_reload, "Reloading nginx"):
                reloaded.append("nginx")
    for plan in plans:
        for _version, path in plan.pools:
            run.attempt(removed[plan.name], "PHP-FPM pool %s" % path, remove_path, layout, path)
    if plans and layout.php_reload is not None:
        for version in _listdir(layout, layout.php_dir):
            if os.path.isdir(layout.path(layout.pool_dir(version))) \
                    and os.path.exists(layout.path(layout.php_fpm_program % version)):
                argv = [part.replace("%s", version) for part in layout.php_reload]
                if run.command(argv, "Reloading PHP-FPM %s" % version):
                    reloaded.append("php%s-fpm" % version)
    return reloaded


def _remove_runtime(run, plans, removed, signals, exclude, other_processes):
    """Crontabs (cron told the spool changed), then the processes of every account-range UID."""
    layout = run.layout
    spool_changed = False
    for plan in plans:
        for path in plan.crontabs:
            done = run.attempt(removed[plan.name], "crontab %s" % path, remove_path, layout, path)
            spool_changed = spool_changed or (done is not FAILED and path.startswith(layout.cron_dir + "/"))
    if spool_changed:
        # cron drops a crontab whose file is gone only when it sees the spool directory changed.
        run.attempt(None, "the spool's time", mark_spool_changed, layout.path(layout.cron_dir), verb="update")
    proc_dir = layout.path(layout.proc_dir)
    if not os.path.isdir(proc_dir):
        return
    for plan in plans:
        # Also with none found when the server was read: a cron job may have started one since.
        if plan.uid is not None and layout.in_range(plan.uid):
            stopped = run.attempt(None, "the processes of %s" % plan.name, stop_account_processes, plan.uid,
                                  proc_dir, exclude, signals, verb="stop")
            if stopped is not FAILED:
                removed[plan.name].extend("process %d (%s)" % (process.pid, process.name) for process in stopped)
    for uid in sorted({_range_uid(process, layout) for process in other_processes}):
        run.attempt(None, "the processes of UID %d" % uid, stop_account_processes, uid, proc_dir, exclude, signals,
                    verb="stop")


def _remove_data(run, plans, removed):
    """Temporary files, databases (all of them before any user, so no role still owns objects),
    mail spools, homes and state files."""
    layout = run.layout
    for plan in plans:
        for path in plan.temp_files:
            run.attempt(removed[plan.name], "temporary file %s" % path, remove_path, layout, path)
    for plan in plans:
        for engine in (MARIADB, POSTGRESQL):
            for name in plan.databases[engine]:
                run.attempt(removed[plan.name], "%s database %s" % (ENGINE_TITLES[engine], name),
                            drop_database, layout, run.runner, engine, name)
    for plan in plans:
        for engine in (MARIADB, POSTGRESQL):
            for user in plan.database_users[engine]:
                run.attempt(removed[plan.name], database_user_text(engine, user),
                            drop_database_user, layout, run.runner, engine, user)
    for plan in plans:
        if plan.mail_spool:
            run.attempt(removed[plan.name], "mail spool %s" % plan.mail_spool, remove_path, layout, plan.mail_spool)
        for path in plan.homes:
            run.attempt(removed[plan.name], "home %s" % path, remove_path, layout, path)
        if plan.state_file:
            run.attempt(removed[plan.name], "state file %s" % plan.state_file, remove_path, layout, plan.state_file)


def _remove_identities(run, plans, removed):
    """Users and groups, then the specs: a spec goes last, and only when nothing failed, so the next
    run finds the account again by it."""
    layout = run.layout
    for plan in plans:
        if plan.user:
            if not run.command(list(layout.userdel) + [plan.name], "Removing the Unix user %s" % plan.name):
                continue  # its group is still the user's primary group
            removed[plan.name].append("Unix user %s (UID %d)" % (plan.name, plan.uid))
        group = _read_id_file(layout, layout.group_file, False).get(plan.name)
        if plan.group and group is not None:
            if run.command(list(layout.groupdel) + [plan.name], "Removing the Unix group %s" % plan.name):
                removed[plan.name].append("Unix group %s (GID %d)" % (plan.name, plan.gid))
        elif plan.group:
            # userdel removed the user's own group with it.
            removed[plan.name].append("Unix group %s (GID %d)" % (plan.name, plan.gid))
    if run.errors:
        return
    for plan in plans:
        if plan.spec_file:
            run.attempt(removed[plan.name], "account spec %s" % plan.spec_file, remove_path, layout, plan.spec_file)


def _remove_transfer_credentials(run, found):
    layout = run.layout
    done = []
    for path in found.transfer_keys:
        run.attempt(done, "transfer key %s" % path, remove_path, layout, path)
    comments = run.attempt(None, "transfer authorizations in %s" % layout.authorized_keys, remove_transfer_lines,
                           layout)
    if comments is not FAILED:
        done += ["transfer authorization %s in %s" % (comment, layout.authorized_keys) for comment in comments]
    for path in found.transfer_configs:
        run.attempt(done, "transfer authorization %s" % path, remove_path, layout, path)
    for path, size in found.transfer_logs:
        if path == layout.transfer_log:
            if size:
                run.attempt(done, "transfer log %s (%d bytes emptied)" % (path, size), _truncate, layout.path(path))
        else:
            run.attempt(done, "rotated transfer log %s" % path, remove_path, layout, path)
    return done


def _log_items(logs, every=False):
    """What the wipe does to each log, in words (with ``every``, also "" for an empty log)."""
    items = []
    for path, size, main in logs:
        if main:
            items.append("log %s (%d bytes emptied)" % (path, size) if size else "")
        else:
            items.append("rotated log %s" % path)
    return items if every else [item for item in items if item]


def _truncate(path):
    # Truncated in place, not replaced: the file keeps its owner and mode (0600) for the endpoint.
    with open(path, "r+b") as handle:
        handle.truncate(0)
        os.fsync(handle.fileno())


# --- the module ----------------------------------------------------------------------------------

def server_layout(module):
    """The layout of the server the module runs on: its commands, where they are installed."""
    params = module.params

    def command(name):
        return module.get_bin_path(name)

    mariadb = command("mariadb") or command("mysql")
    psql, runuser = command("psql"), command("runuser")
    has_postgres_user = "postgres" in _read_id_file(WipeLayout(), "/etc/passwd", True)
    systemd = command("systemctl") if os.path.isdir("/run/systemd/system") else None
    nginx = command("nginx")
    if systemd:
        nginx_reload = (systemd, "try-reload-or-restart", "nginx")
        php_reload = (systemd, "try-reload-or-restart", "php%s-fpm")
    else:
        nginx_reload, php_reload = (nginx, "-s", "reload"), None
    return WipeLayout(
        spec_dir=params["spec_dir"], min_uid=params["min_uid"],
        mariadb=(mariadb,) if mariadb else None,
        psql=(runuser, "-u", "postgres", "--", psql) if psql and runuser and has_postgres_user else None,
        userdel=(command("userdel") or "userdel",), groupdel=(command("groupdel") or "groupdel",),
        nginx_test=(nginx, "-t") if nginx else None, nginx_reload=nginx_reload if nginx else None,
        php_reload=php_reload)


def run_server_wipe(module):
    """Everything server_wipe does: the result, or the module failed with a plain sentence."""
    params = module.params
    if os.geteuid() != 0:
        module.fail_json(msg="server_wipe must run as root (become: true); nothing was changed.")
    if not DEFAULT_MIN_UID // 10 <= params["min_uid"] < MAX_UID:
        module.fail_json(msg="min_uid %d is not a plausible lowest account UID (%d to %d); nothing was changed."
                         % (params["min_uid"], DEFAULT_MIN_UID // 10, MAX_UID - 1))
    check_only = params["check_only"] or module.check_mode
    try:
        result = wipe(server_layout(module), module.run_command, params["confirm"], check_only=check_only)
    except WipeError as error:
        module.fail_json(msg=str(error))
    for warning in result.pop("warnings"):
        module.warn(warning)
    if not check_only and (result["errors"] or result["found"]):
        parts = []
        if result["errors"]:
            parts.append("%d step(s) failed: %s" % (len(result["errors"]), " ".join(result["errors"])))
        if result["found"]:
            parts.append("the check found %d thing(s) left: %s" % (len(result["found"]), " ".join(result["found"])))
        module.fail_json(msg="The wipe is not complete: %s Run it again once the cause is fixed; what it removed "
                             "is in 'removed'." % "; ".join(parts), **result)
    return result
