# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How a server serves an account: the account states, rendered, planned and applied.

An account is in one of four states on a server (``docs/account-states.md``):

- ``active``: nginx serves its sites, its crontab is installed;
- ``frozen``: its domains answer 503 with a maintenance page, its crontab is suspended and its
  processes are stopped;
- ``forwarded``: nginx proxies its domains to the server that now serves the account, crontab
  suspended, processes stopped;
- ``inactive``: no nginx server block at all, crontab suspended, processes stopped.

The text of every file is made by pure functions (``nginx_site_text``, ``crontab_text``,
``state_text``) so tests can check it exactly. ``plan_account`` compares that with the files on
the server and lists the changes; ``set_account_states`` applies the changes of several
accounts in one go (nginx tested and reloaded once, rolled back when the test fails), stops
processes and records the state in ``/etc/hosting/account-states/<name>``, which
``read_account_state`` reads back. Everything here runs on the managed host and uses the
standard library only; paths, commands, signals and the clock are parameters so the tests can
run it in a temporary directory with a fake ``/proc``.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import errno
import grp
import ipaddress
import json
import os
import pwd
import re
import signal
import stat
import tempfile
import time
from dataclasses import dataclass
from typing import Optional, Tuple

from ansible_collections.hosting.migration.plugins.module_utils.account_inventory import (
    SPEC_DIR_ARGUMENTS, selected_specs)
from ansible_collections.hosting.migration.plugins.module_utils.account_spec import (
    NAME_MAX)

ACTIVE = "active"
FROZEN = "frozen"
FORWARDED = "forwarded"
INACTIVE = "inactive"
STATES = (ACTIVE, FROZEN, FORWARDED, INACTIVE)
# The states in which the account's crontab is suspended and its processes are stopped.
STOPPED_STATES = (FROZEN, FORWARDED, INACTIVE)

STATE_DIR = "/etc/hosting/account-states"

# The first line of every file rendered here, as Ansible's template module wrote it before, so a
# server laid down by earlier versions of the account role is already up to date.
MANAGED = "# Ansible managed"
PHP_SOCKET = "/run/php/account-%s.sock"
RETRY_AFTER = 30
PROXY_CONNECT_TIMEOUT = "2s"
FORWARD_PORT = 80
# Self-contained (no PHP, no file): nginx sends it from the configuration itself. It must not
# contain "'", "$" or "\": the text is an nginx string in single quotes.
MAINTENANCE_PAGE = (
    '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
    '<title>Maintenance</title></head><body><h1>Back in a moment</h1>'
    '<p>This site is being moved to a new server. Please try again in a minute.</p>'
    '</body></html>')

# Stopping processes: SIGTERM, then SIGKILL for what is left after STOP_GRACE seconds; give up
# (and fail) when processes are still there after STOP_TIMEOUT seconds.
STOP_GRACE = 0.25
STOP_TIMEOUT = 5.0
POLL_INTERVAL = 0.01
# How long to wait for nginx's old workers to stop accepting connections after a reload.
RELOAD_TIMEOUT = 3.0

_ACCOUNT_NAME_RE = re.compile(r"[a-z][a-z0-9_-]*")

ACCOUNT_STATE_ARGUMENT_SPEC = dict(
    SPEC_DIR_ARGUMENTS,
    names=dict(type="list", elements="str", required=True),
    state=dict(type="str", required=True, choices=list(STATES)),
    forward_to=dict(type="str"),
    keep_recorded=dict(type="bool", default=False),
)


class AccountStateError(ValueError):
    """Bad input or a failure while applying a state, as one plain sentence."""


# --- input -----------------------------------------------------------------------------------

def check_state(state, forward_to=None):
    """Check a state and its forward_to; return forward_to normalised (None unless forwarded).

    forward_to is an IPv4 or IPv6 address (no brackets, no port, no host name) that another
    server can be reached at: not loopback, unspecified, multicast or link-local.
    """
    if state not in STATES:
        raise AccountStateError("state %r is not one of %s" % (state, ", ".join(STATES)))
    if state != FORWARDED:
        if forward_to:
            raise AccountStateError("forward_to is only used with state=forwarded, not with state=%s" % state)
        return None
    if not forward_to:
        raise AccountStateError("state=forwarded needs forward_to: the address of the server that "
                                "now serves the account")
    if not isinstance(forward_to, str):
        raise AccountStateError("forward_to must be an IP address as a string")
    text = forward_to.strip()
    if text.startswith("[") or text.endswith("]"):
        raise AccountStateError("forward_to %r: give the IPv6 address without brackets" % forward_to)
    if "%" in text:
        raise AccountStateError("forward_to %r: an address with a zone index cannot be forwarded to"
                                % forward_to)
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise AccountStateError("forward_to %r is not an IPv4 or IPv6 address" % forward_to) from None
    if address.version == 6 and address.ipv4_mapped is not None:
        raise AccountStateError("forward_to %r: write the IPv4 address %s instead"
                                % (forward_to, address.ipv4_mapped))
    for bad, what in ((address.is_unspecified, "unspecified"), (address.is_loopback, "a loopback"),
                      (address.is_multicast, "a multicast"), (address.is_link_local, "a link-local")):
        if bad:
            raise AccountStateError("forward_to %s is %s address: it must be an address another "
                                    "server is reached at" % (address, what))
    return str(address)


def check_names(names):
    """The account names asked for, each once, in order; at least one."""
    if not names:
        raise AccountStateError("names must list at least one account")
    seen = []
    for name in names:
        if not isinstance(name, str) or len(name) > NAME_MAX or not _ACCOUNT_NAME_RE.fullmatch(name):
            raise AccountStateError("%r is not an account name" % (name,))
        if name not in seen:
            seen.append(name)
    return seen


# --- rendering (pure) ------------------------------------------------------------------------

def nginx_site_text(spec, state, forward_to=None):
    """The account's nginx server blocks in a state, or None when it has none (inactive)."""
    forward_to = check_state(state, forward_to)
    if state == INACTIVE:
        return None
    lines = [MANAGED]
    if state == FROZEN:
        lines.append("# Account %s is frozen (hosting.migration.account_state): every domain "
                     "answers 503." % spec.name)
    elif state == FORWARDED:
        lines.append("# Account %s is forwarded to %s (hosting.migration.account_state)."
                     % (spec.name, forward_to))
    for site in spec.sites:
        lines.append("server {")
        lines.append("    listen 80;")
        lines.append("    listen [::]:80;")
        lines.append("    server_name %s;" % " ".join(site.domains))
        if state == ACTIVE:
            lines.extend(_served_site(spec, site))
        elif state == FROZEN:
            lines.extend(_maintenance_site())
        else:
            lines.extend(_forwarded_site(forward_to))
        lines.append("}")
    return "\n".join(lines) + "\n"


def _served_site(spec, site):
    php = site.php != "none"
    lines = ["    root %s/%s;" % (spec.home, site.document_root),
             "    index %sindex.html;" % ("index.php " if php else "")]
    if php:
        lines += [
            "",
            "    location ~ \\.php$ {",
            "        try_files $uri =404;",
            "        include fastcgi_params;",
            "        fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;",
            "        fastcgi_pass unix:%s;" % (PHP_SOCKET % spec.name),
            "    }",
        ]
    return lines


def _maintenance_site():
    # "types { }" makes every answer text/html, whatever the extension of the URI asked for;
    # "always" is needed for add_header to apply to a 503.
    return [
        "    types { }",
        "    default_type text/html;",
        "    charset utf-8;",
        "    add_header Retry-After %d always;" % RETRY_AFTER,
        "    add_header Cache-Control no-store always;",
        "    return 503 '%s';" % MAINTENANCE_PAGE,
    ]


def proxy_url(forward_to):
    """The proxy_pass URL for an address: IPv6 in brackets, always port 80."""
    address = ipaddress.ip_address(forward_to)
    host = "[%s]" % address if address.version == 6 else str(address)
    return "http://%s:%d" % (host, FORWARD_PORT)


def _forwarded_site(forward_to):
    return [
        "",
        "    location / {",
        "        proxy_pass %s;" % proxy_url(forward_to),
        "        proxy_set_header Host $host;",
        "        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "        proxy_set_header X-Real-IP $remote_addr;",
        "        proxy_set_header X-Forwarded-Proto $scheme;",
        "        proxy_connect_timeout %s;" % PROXY_CONNECT_TIMEOUT,
        "    }",
    ]


def php_versions(spec):
    """PHP versions the account's sites run on, each with one pool of the account."""
    return sorted({site.php for site in spec.sites if site.php != "none"})


def fpm_pool_text(spec):
    """The account's PHP-FPM pool: its own user, its own socket, workers only on demand."""
    return "\n".join([
        "; " + MANAGED.lstrip("# "),  # PHP's ini syntax: comments start with ";"
        "[account-%s]" % spec.name,
        "user = %s" % spec.name,
        "group = %s" % spec.name,
        "listen = %s" % (PHP_SOCKET % spec.name),
        "listen.owner = www-data",
        "listen.group = www-data",
        "listen.mode = 0660",
        "pm = ondemand",
        "pm.max_children = 4",
        "pm.process_idle_timeout = 60s",
        "chdir = /",
        "php_admin_value[open_basedir] = %s/:/tmp/" % spec.home,
    ]) + "\n"


def crontab_text(spec):
    """The account's crontab, the same in every state (suspended, it only lies elsewhere)."""
    lines = [MANAGED, "SHELL=/bin/sh", "HOME=%s" % spec.home]
    lines += ["%s %s" % (entry.schedule, entry.command) for entry in spec.cron]
    return "\n".join(lines) + "\n"


def state_text(state, forward_to=None):
    """The state file: the state, and the address when forwarded, on one line."""
    forward_to = check_state(state, forward_to)
    return "%s %s\n" % (state, forward_to) if forward_to else "%s\n" % state


def parse_state_text(text, path="state file"):
    """(state, forward_to) from the text of a state file; AccountStateError when malformed."""
    words = text.split()
    if not words or words[0] not in STATES:
        raise AccountStateError("%s: %r is not an account state (%s)" % (path, text.strip()[:40], ", ".join(STATES)))
    expected = 2 if words[0] == FORWARDED else 1
    if len(words) != expected:
        raise AccountStateError("%s: %r: %s" % (path, text.strip()[:80], (
            "forwarded needs the address it forwards to" if expected == 2
            else "%s takes no address" % words[0])))
    try:
        return words[0], check_state(words[0], words[1] if expected == 2 else None)
    except AccountStateError as error:
        raise AccountStateError("%s: %s" % (path, error)) from None


# --- where things are ------------------------------------------------------------------------

@dataclass(frozen=True)
class Layout:
    """Where the files of the states are on a server, who owns them, and how nginx is run."""
    nginx_dir: str = "/etc/nginx/sites-enabled"
    cron_dir: str = "/var/spool/cron/crontabs"
    suspended_dir: str = "/var/spool/cron/hosting-suspended"
    state_dir: str = STATE_DIR
    proc_dir: str = "/proc"
    nginx_pid_file: str = "/run/nginx.pid"
    root_uid: int = 0
    root_gid: int = 0
    crontab_gid: Optional[int] = None
    nginx_test: Optional[Tuple[str, ...]] = ("nginx", "-t")
    nginx_reload: Optional[Tuple[str, ...]] = ("nginx", "-s", "reload")
    php_pool_dir: str = "/etc/php/%s/fpm/pool.d"
    # A graceful reload: the pools that went away lose their workers, the others finish requests.
    php_reload: Optional[Tuple[str, ...]] = ("systemctl", "reload", "php%s-fpm")

    def pool_file(self, version, name):
        return os.path.join(self.php_pool_dir % version, "account-%s.conf" % name)

    def nginx_file(self, name):
        return os.path.join(self.nginx_dir, "account-%s.conf" % name)

    def crontab_file(self, name):
        return os.path.join(self.cron_dir, name)

    def suspended_crontab_file(self, name):
        return os.path.join(self.suspended_dir, name)

    def state_file(self, name):
        return os.path.join(self.state_dir, name)


# --- reading the state back (read-only) ------------------------------------------------------

def read_account_state(name, state_dir=STATE_DIR):
    """The recorded state of one account: {"name", "state", "forward_to"}.

    ``state`` is None when nothing is recorded (an account laid down before states existed is
    served, as if active). A malformed file raises AccountStateError. Changes nothing.
    """
    check_names([name])
    path = os.path.join(state_dir, name)
    try:
        with open(path, "rb") as handle:
            raw = handle.read(4096)
    except FileNotFoundError:
        return {"name": name, "state": None, "forward_to": None}
    except OSError as error:
        raise AccountStateError("%s cannot be read: %s" % (path, error.strerror or error)) from None
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise AccountStateError("%s: not an account state (not ASCII text)" % path) from None
    state, forward_to = parse_state_text(text, path)
    return {"name": name, "state": state, "forward_to": forward_to}


def read_account_states(names, state_dir=STATE_DIR):
    """read_account_state for several accounts, in the order given."""
    return [read_account_state(name, state_dir) for name in names]


def find_crontab(name, layout=None):
    """Where the account's crontab lies: {"path", "suspended"}; path None when it has none.

    Verification compares crontabs of a frozen source and an inactive target: both suspended,
    so looking only in the cron spool would compare two absences.
    """
    check_names([name])
    layout = layout or Layout()
    for path, suspended in ((layout.crontab_file(name), False), (layout.suspended_crontab_file(name), True)):
        if os.path.isfile(path):
            return {"path": path, "suspended": suspended}
    return {"path": None, "suspended": None}


# --- files: what is there, what should be, the changes ---------------------------------------

@dataclass(frozen=True)
class Want:
    """A file as a state needs it; content None means the file must not exist."""
    kind: str
    path: str
    content: Optional[bytes]
    uid: int = 0
    gid: int = 0
    mode: int = 0o644


@dataclass(frozen=True)
class Have:
    """A file as it is; content None when it is not a regular file (link: its target)."""
    content: Optional[bytes]
    uid: int
    gid: int
    mode: int
    link: Optional[str] = None


@dataclass(frozen=True)
class Change:
    """One change to one file: write, move (from source), remove or attributes."""
    action: str
    want: Want
    before: Optional[bytes] = None
    source: Optional[str] = None

    @property
    def kind(self):
        return self.want.kind

    @property
    def path(self):
        return self.want.path

    def describe(self):
        if self.action == "move":
            return "move %s to %s" % (self.source, self.path)
        if self.action == "attributes":
            return "set owner and mode of %s" % self.path
        return "%s %s" % (self.action, self.path)


def read_have(path):
    """The file at path, or None when there is none."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    content = link = None
    if stat.S_ISREG(info.st_mode):
        with open(path, "rb") as handle:
            content = handle.read()
    elif stat.S_ISLNK(info.st_mode):
        link = os.readlink(path)
    return Have(content, info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode), link)


def desired_files(spec, state, forward_to, layout):
    """Every file the state puts in place or removes for the account, as Want."""
    nginx = nginx_site_text(spec, state, forward_to)
    crontab = crontab_text(spec).encode("utf-8")
    active = state == ACTIVE
    return [
        Want("nginx", layout.nginx_file(spec.name), None if nginx is None else nginx.encode("utf-8"),
             layout.root_uid, layout.root_gid, 0o644),
        Want("crontab", layout.crontab_file(spec.name), crontab if active else None,
             spec.uid, layout.crontab_gid, 0o600),
        Want("crontab", layout.suspended_crontab_file(spec.name), None if active else crontab,
             spec.uid, layout.crontab_gid, 0o600),
        Want("state", layout.state_file(spec.name), state_text(state, forward_to).encode("ascii"),
             layout.root_uid, layout.root_gid, 0o644),
    ] + [
        # Without its pool, an account that is not served cannot have PHP workers started for
        # it by requests still queued on its socket.
        Want("pool", layout.pool_file(version, spec.name), fpm_pool_text(spec).encode("utf-8") if active else None,
             layout.root_uid, layout.root_gid, 0o644)
        for version in php_versions(spec)
    ]


_KINDS = ("nginx", "pool", "crontab", "state")


def plan_account(spec, state, forward_to, layout):
    """The changes that bring the account's files to the state; [] when they are there.

    Reads the files, changes nothing. A crontab that only has to change place is moved
    (rename), so suspending and resuming keep the very file; otherwise the file is written
    before the other place is cleared, so an interrupted run never loses it.
    """
    if layout.crontab_gid is None:
        raise AccountStateError("the group of crontabs (crontab) is not known")
    wants = desired_files(spec, state, forward_to, layout)
    haves = {want.path: read_have(want.path) for want in wants}
    changes = []
    moved_from = set()
    for want in wants:
        have = haves[want.path]
        if want.content is None:
            continue
        if have is not None and have.content == want.content:
            if (have.uid, have.gid, have.mode) != (want.uid, want.gid, want.mode):
                changes.append(Change("attributes", want, have.content))
            continue
        source = _move_source(want, wants, haves)
        if source is not None and have is None:
            moved_from.add(source)
            changes.append(Change("move", want, None, source=source))
        else:
            changes.append(Change("write", want, None if have is None else have.content))
    for want in wants:
        have = haves[want.path]
        if want.content is None and have is not None and want.path not in moved_from:
            changes.append(Change("remove", want, have.content))
    # nginx, crontab, state; within a kind, removals last (a crontab is written before the
    # copy at its other place goes).
    changes.sort(key=lambda change: (_KINDS.index(change.kind), change.action == "remove"))
    return changes


def _move_source(want, wants, haves):
    """Another path of the same kind that must go and already holds exactly this content."""
    for other in wants:
        have = haves[other.path]
        if (other.kind == want.kind and other.path != want.path and other.content is None
                and have is not None and have.content == want.content):
            return other.path
    return None


# --- files: applying -------------------------------------------------------------------------

def write_atomically(path, content, uid, gid, mode):
    """Write a file by temp file and rename, with owner and mode set before it appears.

    The temp file's name starts with '.', which nginx's include glob and cron both skip.
    """
    directory, base = os.path.split(path)
    fd, temp = tempfile.mkstemp(prefix=".%s." % base, dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        _set_attributes(temp, uid, gid, mode)
        os.rename(temp, path)
    except BaseException:
        _unlink(temp)
        raise
    _fsync_directory(directory)


def _set_attributes(path, uid, gid, mode):
    info = os.lstat(path)
    if (info.st_uid, info.st_gid) != (uid, gid):
        os.chown(path, uid, gid)
    if stat.S_IMODE(info.st_mode) != mode:
        os.chmod(path, mode)


def _unlink(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _fsync_directory(directory):
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def apply_change(change):
    want = change.want
    if change.action == "write":
        write_atomically(want.path, want.content, want.uid, want.gid, want.mode)
    elif change.action == "move":
        try:
            os.rename(change.source, want.path)
        except OSError as error:
            if error.errno != errno.EXDEV:
                raise
            write_atomically(want.path, want.content, want.uid, want.gid, want.mode)
            _unlink(change.source)
        else:
            _set_attributes(want.path, want.uid, want.gid, want.mode)
            _fsync_directory(os.path.dirname(want.path))
            _fsync_directory(os.path.dirname(change.source))
    elif change.action == "attributes":
        _set_attributes(want.path, want.uid, want.gid, want.mode)
    elif change.action == "remove":
        _unlink(want.path)
        _fsync_directory(os.path.dirname(want.path))
    else:
        raise ValueError("unknown action %r" % change.action)


def restore(path, have):
    """Put a file back as it was (have None: it did not exist)."""
    if have is None:
        _unlink(path)
    elif have.content is not None:
        write_atomically(path, have.content, have.uid, have.gid, have.mode)
    elif have.link is not None:
        _unlink(path)
        os.symlink(have.link, path)
    # a directory cannot have been replaced: renaming a file over it fails


def apply_with_nginx_test(changes, layout, runner):
    """Apply nginx changes, test the whole configuration, reload nginx once.

    On a failed test or reload every file is put back as it was and AccountStateError carries
    nginx's message. ``runner(argv)`` returns (rc, stdout, stderr).
    """
    if layout.nginx_test is None:
        raise AccountStateError("nginx is not installed on this server (no nginx command found)")
    saved = []
    try:
        for change in changes:
            saved.append((change.path, read_have(change.path)))
            apply_change(change)
        _run_or_fail(runner, layout.nginx_test, "the nginx configuration test")
        old_workers = nginx_workers(layout.proc_dir, layout.nginx_pid_file)
        _run_or_fail(runner, layout.nginx_reload, "reloading nginx")
    except BaseException:
        for path, have in reversed(saved):
            restore(path, have)
        raise
    return old_workers


def _run_or_fail(runner, argv, what):
    rc, out, err = runner(list(argv))
    if rc != 0:
        message = (err or "").strip() or (out or "").strip() or "exit code %s" % rc
        raise AccountStateError("%s failed, so the previous nginx files are back and nothing was "
                                "changed: %s" % (what.capitalize(), message))


def mark_spool_changed(spool_dir, clock=time.time):
    """Make sure cron sees the spool changed.

    Debian's cron rereads the spool only when the directory's mtime, in whole seconds, differs
    from the one it saw last. A change in the very second cron read it would go unseen; an mtime
    one second ahead differs from anything cron can have seen before this call.
    """
    ahead = int(clock()) + 1
    os.utime(spool_dir, (ahead, ahead))


# --- processes -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Process:
    pid: int
    ppid: int
    uids: Tuple[int, ...]
    state: str
    name: str

    def to_dict(self):
        return {"pid": self.pid, "name": self.name}


def read_process(proc_dir, pid):
    """A process from /proc/<pid>/status, or None when it is gone."""
    try:
        with open(os.path.join(proc_dir, str(pid), "status"), "rb") as handle:
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return None
    fields = {}
    for line in text.splitlines():
        key, _sep, value = line.partition(":")
        fields[key] = value.strip()
    try:
        uids = tuple(int(value) for value in fields["Uid"].split())
        return Process(pid, int(fields.get("PPid", "0") or 0), uids,
                       fields.get("State", "?")[:1], fields.get("Name", "?"))
    except (KeyError, ValueError):
        return None


def list_processes(proc_dir="/proc"):
    processes = []
    for entry in os.listdir(proc_dir):
        if entry.isdigit():
            process = read_process(proc_dir, int(entry))
            if process is not None:
                processes.append(process)
    return processes


def own_lineage(proc_dir="/proc", pid=None):
    """This process and its ancestors: never signalled, even if the account's user started them."""
    pid = os.getpid() if pid is None else pid
    lineage = set()
    while pid > 1 and pid not in lineage:
        lineage.add(pid)
        process = read_process(proc_dir, pid)
        if process is None:
            break
        pid = process.ppid
    return lineage


def account_processes(uid, proc_dir="/proc", exclude=()):
    """The live processes of a UID: any of its real, effective, saved or file-system UIDs.

    Never PID 1, never a process with any UID 0 (a set-user-ID program the user runs, sshd's
    privileged half), never zombies (already dead), never ``exclude``.
    """
    if isinstance(uid, bool) or not isinstance(uid, int) or uid <= 0:
        raise ValueError("refusing to select the processes of UID %r" % (uid,))
    return [process for process in list_processes(proc_dir)
            if process.pid != 1 and process.pid not in exclude and uid in process.uids
            and 0 not in process.uids and process.state not in ("Z", "X")]


class Signals:
    """How processes are signalled and time passes; the tests use a fake."""

    def send(self, pid, number):
        os.kill(pid, number)

    def sleep(self, seconds):
        time.sleep(seconds)

    def clock(self):
        return time.monotonic()


def stop_account_processes(uid, proc_dir="/proc", exclude=(), signals=None,
                           grace=STOP_GRACE, timeout=STOP_TIMEOUT):
    """Stop every process of the UID: SIGTERM (and SIGCONT, for stopped ones), SIGKILL after
    ``grace`` seconds; new processes found on the way get the same. Returns the processes
    signalled; AccountStateError when some are still there after ``timeout`` seconds.
    """
    signals = signals or Signals()
    start = signals.clock()
    stopped = {}
    termed, killed = set(), set()
    while True:
        processes = account_processes(uid, proc_dir, exclude)
        if not processes:
            return sorted(stopped.values(), key=lambda process: process.pid)
        elapsed = signals.clock() - start
        if elapsed >= timeout:
            raise AccountStateError("processes of UID %d are still running %.1f s after SIGKILL: %s"
                                    % (uid, elapsed, ", ".join("%d (%s)" % (process.pid, process.name)
                                                               for process in processes)))
        for process in processes:
            stopped.setdefault(process.pid, process)
            if elapsed < grace:
                if process.pid not in termed:
                    termed.add(process.pid)
                    _signal(signals, process.pid, signal.SIGTERM)
                    _signal(signals, process.pid, signal.SIGCONT)
            elif process.pid not in killed:
                killed.add(process.pid)
                _signal(signals, process.pid, signal.SIGKILL)
        signals.sleep(POLL_INTERVAL)


def _signal(signals, pid, number):
    try:
        signals.send(pid, number)
    except ProcessLookupError:
        pass


def nginx_workers(proc_dir="/proc", pid_file="/run/nginx.pid"):
    """The PIDs of the running nginx master's worker processes (empty when not running)."""
    try:
        with open(pid_file) as handle:
            master = int(handle.read().strip())
    except (OSError, ValueError):
        return set()
    return {process.pid for process in list_processes(proc_dir)
            if process.ppid == master and "worker process" in _cmdline(proc_dir, process.pid)}


def _cmdline(proc_dir, pid):
    try:
        with open(os.path.join(proc_dir, str(pid), "cmdline"), "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def wait_for_old_workers(workers, proc_dir="/proc", signals=None, timeout=RELOAD_TIMEOUT):
    """Wait until nginx's old workers stopped accepting: gone, or titled "shutting down".

    nginx starts the new workers first and tells the old ones to quit about 100 ms later; from
    then on every new connection gets the new configuration. Returns False on timeout.
    """
    signals = signals or Signals()
    deadline = signals.clock() + timeout
    while True:
        accepting = [pid for pid in workers
                     if "worker process" in _cmdline(proc_dir, pid)
                     and "shutting down" not in _cmdline(proc_dir, pid)]
        if not accepting:
            return True
        if signals.clock() >= deadline:
            return False
        signals.sleep(POLL_INTERVAL)


# --- one run: several accounts, one state ----------------------------------------------------

def set_account_states(specs, state, forward_to, layout, runner, check_mode=False, diff=False,
                       signals=None, exclude=None):
    """Bring the accounts to the state; the result the module returns.

    Order: plan everything (nothing changed yet); nginx files, ``nginx -t`` and one reload
    (rolled back on failure, so a failure here changes nothing); crontabs; processes; state
    files last, so an interrupted run is completed by the next one. nginx is also reloaded when
    only a state file changes: the previous run may have stopped between writing and reloading.
    """
    forward_to = check_state(state, forward_to)
    for directory in (layout.nginx_dir, layout.cron_dir):
        if not os.path.isdir(directory):
            raise AccountStateError("%s does not exist on this server: are nginx and cron installed?"
                                    % directory)
    signals = signals or Signals()
    if exclude is None:
        exclude = own_lineage(layout.proc_dir)
    warnings = []
    accounts, plans, stop_candidates = [], [], {}
    for spec in specs:
        try:
            previous = read_account_state(spec.name, layout.state_dir)
        except AccountStateError as error:
            warnings.append("%s; it is rewritten" % error)
            previous = {"name": spec.name, "state": None, "forward_to": None}
        changes = plan_account(spec, state, forward_to, layout)
        plans.append((spec, changes))
        if state in STOPPED_STATES:
            stop_candidates[spec.name] = account_processes(spec.uid, layout.proc_dir, exclude)
        accounts.append({
            "name": spec.name, "state": state, "forward_to": forward_to,
            "previous_state": previous["state"], "previous_forward_to": previous["forward_to"],
            "changes": [change.describe() for change in changes],
            "stopped_processes": [process.to_dict() for process in stop_candidates.get(spec.name, ())],
        })
    all_changes = [change for _spec, changes in plans for change in changes]
    nginx_changes = [change for change in all_changes if change.kind == "nginx"]
    reload_needed = bool(nginx_changes) or any(change.kind == "state" for change in all_changes)
    result = {"accounts": accounts, "nginx_reloaded": reload_needed, "warnings": warnings}
    if diff:
        result["diff"] = _diffs(all_changes)

    if not check_mode:
        if reload_needed:
            old_workers = apply_with_nginx_test(nginx_changes, layout, runner)
            if old_workers and not wait_for_old_workers(old_workers, layout.proc_dir, signals):
                warnings.append("nginx's old workers still accepted connections %.0f s after the "
                                "reload" % RELOAD_TIMEOUT)
        apply_pool_changes([change for change in all_changes if change.kind == "pool"], layout, runner)
        crontab_changes = [change for change in all_changes if change.kind == "crontab"]
        if any(change.path.startswith(layout.suspended_dir + os.sep) for change in crontab_changes):
            _ensure_directory(layout.suspended_dir, layout.root_uid, layout.root_gid, 0o700)
        for change in crontab_changes:
            apply_change(change)
        if crontab_changes:
            mark_spool_changed(layout.cron_dir)
        for entry, (spec, _changes) in zip(accounts, plans):
            if state in STOPPED_STATES:
                stopped = stop_account_processes(spec.uid, layout.proc_dir, exclude, signals)
                entry["stopped_processes"] = [process.to_dict() for process in stopped]
        state_changes = [change for change in all_changes if change.kind == "state"]
        if state_changes:
            _ensure_directory(layout.state_dir, layout.root_uid, layout.root_gid, 0o755)
        for change in state_changes:
            apply_change(change)

    for entry in accounts:
        entry["changed"] = bool(entry["changes"] or entry["stopped_processes"])
    result["changed"] = any(entry["changed"] for entry in accounts)
    return result


def apply_pool_changes(changes, layout, runner):
    """Write or remove PHP-FPM pool files, then reload each PHP version whose pools changed."""
    versions = set()
    for change in changes:
        if change.action != "remove" and not os.path.isdir(os.path.dirname(change.path)):
            raise AccountStateError("%s does not exist on this server: is PHP-FPM %s installed?"
                                    % (os.path.dirname(change.path), _pool_version(change.path, layout)))
        apply_change(change)
        versions.add(_pool_version(change.path, layout))
    if layout.php_reload:
        for version in sorted(versions):
            rc, out, err = runner([part.replace("%s", version) for part in layout.php_reload])
            if rc != 0:
                raise AccountStateError("Reloading PHP-FPM %s failed after its pools changed: %s"
                                        % (version, (err or out or "exit code %s" % rc).strip()))


def _pool_version(path, layout):
    prefix, _sep, suffix = layout.php_pool_dir.partition("%s")
    return path[len(prefix):].split(os.sep, 1)[0] if path.startswith(prefix) else "?"


def _ensure_directory(path, uid, gid, mode):
    if not os.path.isdir(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            os.mkdir(path, mode)
        except FileExistsError:
            pass
        _set_attributes(path, uid, gid, mode)


def _diffs(changes):
    diffs = []

    def text(content):
        return "" if content is None else content.decode("utf-8", "replace")

    for change in changes:
        if change.action == "move":
            diffs.append({"before_header": change.source, "after_header": "%s (moved away)" % change.source,
                          "before": text(change.want.content), "after": ""})
            diffs.append({"before_header": "%s (absent)" % change.path, "after_header": change.path,
                          "before": "", "after": text(change.want.content)})
        elif change.action == "attributes":
            diffs.append({"before_header": change.path, "after_header": change.path,
                          "before": "", "after": "",
                          "prepared": "owner %d:%d, mode %04o" % (change.want.uid, change.want.gid, change.want.mode)})
        else:
            diffs.append({"before_header": change.path, "after_header": change.path,
                          "before": text(change.before), "after": text(change.want.content)})
    return diffs


# --- the module ------------------------------------------------------------------------------

def run_account_state(module):
    """Everything account_state does; fails the module with a plain sentence on bad input."""
    params = module.params
    try:
        forward_to = check_state(params["state"], params["forward_to"])
        names = check_names(params["names"])
    except AccountStateError as error:
        module.fail_json(msg=str(error))
    specs = selected_specs(module, names)
    layout = _server_layout(module)
    problem = _identity_problem(specs) or _local_address_problem(module, forward_to)
    if problem:
        module.fail_json(msg=problem)

    def runner(argv):
        return module.run_command(argv)

    try:
        result = {"accounts": [], "nginx_reloaded": False, "warnings": [], "changed": False}
        for (state, target), group in _groups(specs, params["state"], forward_to, params["keep_recorded"], layout):
            part = set_account_states(group, state, target, layout, runner,
                                      check_mode=module.check_mode, diff=module._diff)
            result["accounts"] += part["accounts"]
            result["warnings"] += part["warnings"]
            result["nginx_reloaded"] = result["nginx_reloaded"] or part["nginx_reloaded"]
            result["changed"] = result["changed"] or part["changed"]
            if "diff" in part:
                result.setdefault("diff", []).extend(part["diff"])
    except AccountStateError as error:
        module.fail_json(msg=str(error))
    for warning in result.pop("warnings"):
        module.warn(warning)
    return result


def _groups(specs, state, forward_to, keep_recorded, layout):
    """Accounts by the state they get: the one asked for, or with keep_recorded the state a
    move recorded for them (so laying an account down again does not serve a moved copy)."""
    groups = {}
    for spec in specs:
        wanted = (state, forward_to)
        if keep_recorded:
            try:
                recorded = read_account_state(spec.name, layout.state_dir)
            except AccountStateError:
                recorded = {"state": None}
            if recorded["state"] is not None:
                wanted = (recorded["state"], recorded["forward_to"])
        groups.setdefault(wanted, []).append(spec)
    return sorted(groups.items(), key=lambda item: STATES.index(item[0][0]))


def _server_layout(module):
    try:
        crontab_gid = grp.getgrnam("crontab").gr_gid
    except KeyError:
        module.fail_json(msg="The group crontab does not exist on this server: is cron installed?")
    nginx = module.get_bin_path("nginx")
    systemctl = module.get_bin_path("systemctl")
    if systemctl and os.path.isdir("/run/systemd/system"):
        reload_command = (systemctl, "reload-or-restart", "nginx")
    else:
        reload_command = (nginx or "nginx", "-s", "reload")
    return Layout(crontab_gid=crontab_gid, nginx_test=(nginx, "-t") if nginx else None,
                  nginx_reload=reload_command)


def _identity_problem(specs):
    """The crontab belongs to the account's user: it has to exist, with the spec's UID."""
    for spec in specs:
        try:
            entry = pwd.getpwnam(spec.name)
        except KeyError:
            return ("The Unix user %s does not exist on this server: lay the account down first "
                    "(role hosting.migration.account)." % spec.name)
        if entry.pw_uid != spec.uid:
            return ("The Unix user %s has UID %d on this server, but its spec says %d."
                    % (spec.name, entry.pw_uid, spec.uid))
    return None


def _local_address_problem(module, forward_to):
    """Forwarding to an address of this very server would loop through nginx forever."""
    if forward_to is None:
        return None
    ip = module.get_bin_path("ip")
    if not ip:
        return None
    rc, out, _err = module.run_command([ip, "-j", "address", "show"])
    if rc != 0:
        return None
    try:
        interfaces = json.loads(out)
    except ValueError:
        return None
    local = set()
    for interface in interfaces:
        for info in interface.get("addr_info", []):
            try:
                local.add(ipaddress.ip_address(info.get("local", "")))
            except ValueError:
                pass
    if ipaddress.ip_address(forward_to) in local:
        return ("forward_to %s is an address of this server: forwarding to it would loop; give the "
                "address of the server that now serves the account." % forward_to)
    return None
