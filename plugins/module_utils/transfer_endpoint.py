# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""hosting-migration transfer endpoint: the forced command of a transfer key on the target.

sshd runs it as ``transfer-endpoint TRANSFER_ID`` for every connection made with a transfer key
(``command=`` in authorized_keys). It reads what the client asked for from SSH_ORIGINAL_COMMAND
and the operations the transfer allows from CONFIG_DIR/TRANSFER_ID.json, and runs the command only
when it matches one of them exactly, without a shell. Everything else is refused: a message on
stderr, exit status 1. Every decision is logged to syslog (authpriv) and to LOG_PATH.

The grammar (tokens separated by single spaces, only the characters of COMMAND_CHARS):

    rsync --server FLAGS [OPTION ...] . DIR[/]     allowed by {"rsync_to": DIR}
        FLAGS   -[nlHogDtpAXrS]+ optionally followed by e[.0-9][A-Za-z]* (the capability string)
        OPTION  --delete --numeric-ids --log-format=%i --bwlimit=N --info=WORDS -@N --modify-window=N
    hosting-restore mariadb DB                      allowed by {"mariadb_restore": DB}
        runs    mariadb [--sandbox] --database=DB (mysql where mariadb is missing)
    hosting-restore postgresql DB                   allowed by {"postgresql_restore": DB}
        runs    runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 DB

This file is a module of the hosting.migration collection; the transfer_authorization module
writes it to the target as an executable script. It uses the Python standard library only.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import datetime
import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
import time

try:
    import syslog
except ImportError:  # pragma: no cover - not on Linux
    syslog = None

CONFIG_DIR = "/etc/hosting/transfers"
LOG_PATH = "/var/log/hosting-migration-transfers.log"
SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
TRANSFER_ID_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")
DATABASE_RE = re.compile(r"[a-z0-9_]{1,63}")
DIRECTORY_RE = re.compile(r"(?:/[A-Za-z0-9._+@-]+){2,}")
COMMAND_CHARS = re.compile(r"[A-Za-z0-9 ._/=@%,+-]{1,4096}")
RSYNC_FLAGS_RE = re.compile(r"-([nlHogDtpAXrS]+)(e[.0-9][A-Za-z]{0,40})?")
RSYNC_CAPABILITIES_RE = re.compile(r"-e[.0-9][A-Za-z]{0,40}")
INFO_WORDS = ("BACKUP", "COPY", "DEL", "FLIST", "MISC", "MOUNT", "NAME", "NONREG", "PROGRESS", "REMOVE",
              "SKIP", "STATS", "SYMSAFE")
RSYNC_OPTIONS = (
    ("delete", re.compile(r"--delete")),
    ("numeric-ids", re.compile(r"--numeric-ids")),
    ("log-format", re.compile(r"--log-format=%i")),
    ("bwlimit", re.compile(r"--bwlimit=[0-9]{1,9}")),
    ("info", re.compile(r"--info=(?:(?:%s)[0-4]?)(?:,(?:%s)[0-4]?)*" % ("|".join(INFO_WORDS), "|".join(INFO_WORDS)))),
    ("modify-window", re.compile(r"(?:-@|--modify-window=)-?[0-9]{1,6}")),
)
RESTORE_OPERATIONS = {"mariadb": "mariadb_restore", "postgresql": "postgresql_restore"}
OPERATIONS = ("rsync_to", "mariadb_restore", "postgresql_restore")


class Refused(Exception):
    """The command is not one the transfer allows; the message says why."""


def load_config(transfer_id, config_dir=CONFIG_DIR):
    if not TRANSFER_ID_RE.fullmatch(transfer_id or ""):
        raise Refused("the transfer id %r is not valid" % (transfer_id,))
    path = os.path.join(config_dir, transfer_id + ".json")
    try:
        with open(path) as handle:
            config = json.load(handle)
    except FileNotFoundError:
        raise Refused("transfer %s is not authorised on this server (no %s)" % (transfer_id, path))
    except (OSError, ValueError) as error:
        raise Refused("transfer %s: cannot read %s: %s" % (transfer_id, path, error))
    if not isinstance(config, dict) or config.get("transfer_id") != transfer_id:
        raise Refused("transfer %s: %s does not describe this transfer" % (transfer_id, path))
    return config


def allowed(config, operation):
    """The values the config allows for ``operation`` (rsync_to, mariadb_restore, postgresql_restore)."""
    values = []
    for entry in config.get("allow") or []:
        if isinstance(entry, dict) and isinstance(entry.get(operation), str):
            values.append(entry[operation])
    return values


def _rsync(tokens, config):
    if len(tokens) < 5 or tokens[1] != "--server":
        raise Refused("only 'rsync --server' receiving into the allowed directory is possible")
    match = RSYNC_FLAGS_RE.fullmatch(tokens[2])
    if not match:
        raise Refused("rsync flags %r are not allowed (allowed letters: nlHogDtpAXrS, then e.<capabilities>)"
                      % tokens[2])
    rest, seen = tokens[3:], set()
    if not match.group(2) and rest and RSYNC_CAPABILITIES_RE.fullmatch(rest[0]):
        rest = rest[1:]
    while rest and rest[0] != ".":
        token = rest.pop(0)
        for name, pattern in RSYNC_OPTIONS:
            if pattern.fullmatch(token):
                if name in seen:
                    raise Refused("rsync option %r is given twice" % token)
                seen.add(name)
                break
        else:
            raise Refused("rsync option %r is not allowed" % token.split("=", 1)[0])
    if len(rest) != 2 or rest[0] != ".":
        raise Refused("rsync needs exactly '. DIRECTORY' at the end")
    destination = rest[1]
    stripped = destination[:-1] if destination.endswith("/") else destination
    if stripped not in allowed(config, "rsync_to"):
        raise Refused("rsync into %r is not allowed (allowed: %s)"
                      % (destination, ", ".join(allowed(config, "rsync_to")) or "no directory"))
    return ["rsync"] + tokens[1:], "rsync_to " + stripped


def _restore(tokens, config):
    if len(tokens) != 3 or tokens[1] not in RESTORE_OPERATIONS:
        raise Refused("use 'hosting-restore mariadb DATABASE' or 'hosting-restore postgresql DATABASE'")
    engine, database = tokens[1], tokens[2]
    operation = RESTORE_OPERATIONS[engine]
    if not DATABASE_RE.fullmatch(database) or database not in allowed(config, operation):
        raise Refused("restoring %s database %r is not allowed (allowed: %s)"
                      % (engine, database, ", ".join(allowed(config, operation)) or "none"))
    if engine == "mariadb":
        argv = ["mariadb", "--database=" + database]
    else:
        argv = ["runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", database]
    return argv, "%s %s" % (operation, database)


def _address(text):
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text


def decide(command, config, now=None, client=None):
    """The argv to run for SSH_ORIGINAL_COMMAND ``command`` and a short description; raises Refused."""
    now = time.time() if now is None else now
    expires = config.get("expires")
    if not isinstance(expires, (int, float)) or now >= expires:
        raise Refused("transfer %s has expired" % config.get("transfer_id"))
    sources = config.get("source") or []
    if client is not None and _address(client) not in [_address(source) for source in sources]:
        raise Refused("connections from %s are not allowed (only %s)" % (client, ", ".join(sources)))
    if not command:
        raise Refused("no command given (an interactive session is never allowed)")
    if not COMMAND_CHARS.fullmatch(command):
        raise Refused("the command holds characters that are never allowed (quotes, shell syntax, control "
                      "characters...)")
    tokens = command.split(" ")
    if "" in tokens:
        raise Refused("the command must be words separated by single spaces")
    if any(part == ".." for token in tokens for part in token.split("/")):
        raise Refused("'..' is never allowed")
    if tokens[0] == "rsync":
        return _rsync(tokens, config)
    if tokens[0] == "hosting-restore":
        return _restore(tokens, config)
    raise Refused("%r is not an operation of this transfer (rsync --server ..., hosting-restore ...)" % tokens[0])


def check_real_directory(path):
    """Refuse a directory reached through a symbolic link (the allowed path must be the real one)."""
    if not DIRECTORY_RE.fullmatch(path):
        raise Refused("%r is not a plain absolute directory" % path)
    existing = path
    while not os.path.lexists(existing):
        existing = os.path.dirname(existing)
    if os.path.realpath(existing) != existing:
        raise Refused("%s goes through a symbolic link on this server" % existing)


def resolve(argv, search_path=SAFE_PATH):
    """argv with its program found in the fixed PATH (mariadb falls back to mysql)."""
    names = ["mariadb", "mysql"] if argv[0] == "mariadb" else [argv[0]]
    for name in names:
        found = shutil.which(name, path=search_path)
        if found:
            return found, [name] + argv[1:]
    raise Refused("%s is not installed on this server" % " or ".join(names))


def mariadb_sandbox(program, argv):
    """argv with --sandbox (no \\! shell escapes, no file access from the SQL stream) where the client has it."""
    try:
        text = subprocess.run([program, "--no-defaults", "--help"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, timeout=30, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return argv
    return argv[:1] + ["--sandbox"] + argv[1:] if b"--sandbox" in text else argv


def log(log_path, transfer_id, client, outcome, command, detail):
    line = "%s transfer=%s client=%s %s %s command=%s" % (
        datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), transfer_id or "-",
        client or "-", outcome, detail, json.dumps((command or "")[:500]))
    if syslog is not None:
        try:
            syslog.openlog("hosting-migration-transfer", syslog.LOG_PID, syslog.LOG_AUTHPRIV)
            syslog.syslog(syslog.LOG_INFO if outcome == "accepted" else syslog.LOG_WARNING, line[21:])
        except OSError:
            pass
    if log_path:
        try:
            handle = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(handle, (line + "\n").encode("utf-8", "replace"))
            finally:
                os.close(handle)
        except OSError:
            pass


def _arguments(argv):
    config_dir, log_path, rest = CONFIG_DIR, LOG_PATH, list(argv)
    while len(rest) >= 2 and rest[0] in ("--config-dir", "--log-file"):
        if rest[0] == "--config-dir":
            config_dir = rest[1]
        else:
            log_path = rest[1]
        rest = rest[2:]
    return config_dir, log_path, rest


def main(argv=None, environ=None, execve=os.execve, stderr=None):
    """Run the allowed command (does not return) or refuse it (returns 1)."""
    argv = sys.argv[1:] if argv is None else argv
    environ = os.environ if environ is None else environ
    stderr = sys.stderr if stderr is None else stderr
    config_dir, log_path, rest = _arguments(argv)
    transfer_id = rest[0] if len(rest) == 1 else None
    command = environ.get("SSH_ORIGINAL_COMMAND", "")
    client = (environ.get("SSH_CONNECTION") or environ.get("SSH_CLIENT") or "").split(" ")[0] or None
    try:
        if transfer_id is None:
            raise Refused("the endpoint must be called with exactly one transfer id")
        if client is None:
            raise Refused("not started by sshd (no SSH_CONNECTION)")
        config = load_config(transfer_id, config_dir)
        argv_to_run, detail = decide(command, config, client=client)
        if detail.startswith("rsync_to "):
            check_real_directory(detail[len("rsync_to "):])
        program, argv_to_run = resolve(argv_to_run)
        if detail.startswith("mariadb_restore "):
            argv_to_run = mariadb_sandbox(program, argv_to_run)
    except Refused as refusal:
        log(log_path, transfer_id, client, "refused", command, str(refusal))
        stderr.write("hosting-migration transfer %s: refused: %s\n" % (transfer_id or "-", refusal))
        stderr.flush()
        return 1
    log(log_path, transfer_id, client, "accepted", command, detail)
    env = dict(PATH=SAFE_PATH, LANG="C.UTF-8", HOME=environ.get("HOME", "/root"),
               USER=environ.get("USER", "root"), LOGNAME=environ.get("LOGNAME", "root"))
    os.chdir("/")
    execve(program, argv_to_run, env)
    return 0
