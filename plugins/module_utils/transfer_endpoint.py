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
    hosting-restore-test mariadb DB                 allowed by {"mariadb_test": DB}
    hosting-restore-test postgresql DB              allowed by {"postgresql_test": DB}
        imports the dump into a new scratch database SCRATCH_PREFIX + 12 hex digits (never DB
        itself), counting the errors and warnings, drops it whatever happens and prints one JSON
        report on stdout; scratch databases left by a killed test are dropped first

This file is a module of the hosting.migration collection; the transfer_authorization module
writes it to the target as an executable script. It uses the Python standard library only.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import binascii
import datetime
import fcntl
import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
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
TEST_OPERATIONS = {"mariadb": "mariadb_test", "postgresql": "postgresql_test"}
OPERATIONS = ("rsync_to", "mariadb_restore", "postgresql_restore", "mariadb_test", "postgresql_test")
# Scratch databases of the test imports. Account databases may never start with this prefix
# (account_spec refuses it), so a scratch name can never be an account's database.
SCRATCH_PREFIX = "hmtest_"
SCRATCH_RE = re.compile(re.escape(SCRATCH_PREFIX) + r"[0-9a-f]{12}")
# The report keeps the first MESSAGE_LIMIT errors and warnings, each cut at MESSAGE_CHARS.
MESSAGE_LIMIT = 20
MESSAGE_CHARS = 300
LINE_LIMIT = 65536


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


def _restore_test(tokens, config):
    if len(tokens) != 3 or tokens[1] not in TEST_OPERATIONS:
        raise Refused("use 'hosting-restore-test mariadb DATABASE' or 'hosting-restore-test postgresql DATABASE'")
    engine, database = tokens[1], tokens[2]
    operation = TEST_OPERATIONS[engine]
    if not DATABASE_RE.fullmatch(database) or database not in allowed(config, operation):
        raise Refused("test-importing %s database %r is not allowed (allowed: %s)"
                      % (engine, database, ", ".join(allowed(config, operation)) or "none"))
    return None, "%s %s" % (operation, database)


def _address(text):
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text


def decide(command, config, now=None, client=None):
    """The argv to run for SSH_ORIGINAL_COMMAND ``command`` and a short description; raises Refused.

    A test import has no argv (None): the endpoint runs it itself, see restore_test().
    """
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
    if tokens[0] == "hosting-restore-test":
        return _restore_test(tokens, config)
    raise Refused("%r is not an operation of this transfer (rsync --server ..., hosting-restore ..., "
                  "hosting-restore-test ...)" % tokens[0])


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


# ---------------------------------------------------------------------------------------------
# Test imports: the dump goes into a scratch database that is dropped at the end, whatever happens


class ImportTestFailed(Exception):
    """The test import could not be made (no scratch database, no client); the message says why."""


class Interrupted(Exception):
    """The endpoint got SIGTERM, SIGHUP or SIGINT during a test import."""


def _cut(text):
    text = " ".join(text.split())
    return text if len(text) <= MESSAGE_CHARS else text[:MESSAGE_CHARS - 3] + "..."


class Messages(object):
    """Counts messages and keeps the first MESSAGE_LIMIT of them, each cut at MESSAGE_CHARS."""

    def __init__(self):
        self.count, self.kept, self.lock = 0, [], threading.Lock()

    def add(self, text):
        """Counts a message; returns its index among the kept ones, or None when it is not kept."""
        with self.lock:
            self.count += 1
            if len(self.kept) >= MESSAGE_LIMIT:
                return None
            self.kept.append(_cut(text))
            return len(self.kept) - 1

    def extend(self, index, text):
        """Adds a continuation line to a kept message."""
        if index is not None and len(self.kept[index]) < MESSAGE_CHARS:
            with self.lock:
                self.kept[index] = _cut(self.kept[index] + " / " + text)


MARIADB_STATEMENT_RULE = "--------------"
# Warnings that the dump tool's own header and footer cause on a newer server, whatever the
# database holds: counted apart (expected_warning_count), so that a warning means the data.
#   MariaDB 11.x reading @@SQL_NOTES, which the dumps of older mariadb-dump and mysqldump (10.11's
#   among them) save and restore (newer dumps use @@NOTE_VERBOSITY).
MARIADB_EXPECTED_WARNINGS = re.compile(r"Warning \(Code 1287\): '@@sql_notes' is deprecated")
MARIADB_WARNING_RE = re.compile(r"(Warning|Note|Error) \(Code [0-9]+\): ")
POSTGRESQL_MESSAGE_RE = re.compile(r"(?:psql:[^:]*:[0-9]+: )?(ERROR|FATAL|PANIC|WARNING|NOTICE|INFO|LOG|DEBUG):")
POSTGRESQL_CONTEXT_RE = re.compile(r"(?:LINE [0-9]+:|\s*\^\s*$)")


class MariadbOutput(object):
    """What `mariadb --force --show-warnings` writes: on stderr each failed statement between two
    rules, then ``ERROR 1064 (42000) at line 3: ...``; on stdout ``Warning (Code 1265): ...`` after
    each statement with warnings (``Note`` lines are not warnings; ``Error`` lines repeat stderr)."""

    def __init__(self, errors, warnings):
        self.errors, self.warnings = errors, warnings
        self.in_statement, self.current, self.expected = False, None, Messages()

    def stderr_line(self, line):
        if line == MARIADB_STATEMENT_RULE:
            self.in_statement, self.current = not self.in_statement, None
        elif self.in_statement or not line:
            return
        elif line.startswith("Warning"):
            self.current = (self.warnings, self.warnings.add(line))
        elif line.startswith("ERROR") or self.current is None:
            self.current = (self.errors, self.errors.add(line))
        else:
            self.current[0].extend(self.current[1], line)

    def stdout_line(self, line):
        match = MARIADB_WARNING_RE.match(line)
        if match and match.group(1) == "Warning" and MARIADB_EXPECTED_WARNINGS.match(line):
            self.current = (self.expected, self.expected.add(line))
        elif match:
            self.current = (self.warnings, self.warnings.add(line)) if match.group(1) == "Warning" else None
        elif line and self.current is not None:
            self.current[0].extend(self.current[1], line)


class PostgresqlOutput(object):
    """What `psql -f -` writes on stderr: ``psql:<stdin>:12: ERROR:  ...`` (or WARNING), then
    DETAIL, HINT, LINE lines that belong to it; psql's own complaints start with ``psql:``."""

    def __init__(self, errors, warnings):
        self.errors, self.warnings = errors, warnings
        self.current, self.expected = None, Messages()

    def stderr_line(self, line):
        match = POSTGRESQL_MESSAGE_RE.match(line)
        if match:
            level = match.group(1)
            if level == "WARNING":
                self.current = (self.warnings, self.warnings.add(line))
            elif level in ("ERROR", "FATAL", "PANIC"):
                self.current = (self.errors, self.errors.add(line))
            else:
                self.current = None
        elif not line or POSTGRESQL_CONTEXT_RE.match(line):
            return
        elif line.startswith("psql:") or self.current is None:
            self.current = (self.errors, self.errors.add(line))
        else:
            self.current[0].extend(self.current[1], line)

    def stdout_line(self, line):
        return


def _read_lines(stream, handle):
    """Hands each line of ``stream`` to ``handle`` (at most LINE_LIMIT bytes of each line)."""
    partial = False
    while True:
        chunk = stream.readline(LINE_LIMIT)
        if not chunk:
            break
        if not partial:
            handle(chunk.decode("utf-8", "replace").rstrip("\r\n"))
        partial = not chunk.endswith(b"\n")
    stream.close()


def admin_command(engine, statements):
    """The client running our own SQL statements (listing, creating, dropping scratch databases)."""
    if engine == "mariadb":
        return ["mariadb", "--batch", "--skip-column-names", "-e", "; ".join(statements)]
    argv = ["runuser", "-u", "postgres", "--", "psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-d", "postgres"]
    for statement in statements:
        argv += ["-c", statement]
    return argv


def import_test_command(engine, scratch):
    """The client the dump is fed to: errors do not stop it, warnings are shown."""
    if engine == "mariadb":
        return ["mariadb", "--force", "--show-warnings", "--database=" + scratch]
    return ["runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-v", "ON_ERROR_STOP=0", "-f", "-", "-d", scratch]


def _quoted(engine, name):
    # Only scratch names (SCRATCH_RE) reach here: quoting guards against a keyword, not against injection.
    return ("`%s`" if engine == "mariadb" else '"%s"') % name


def run_admin(engine, statements, search_path=SAFE_PATH, env=None):
    program, argv = resolve(admin_command(engine, statements), search_path)
    try:
        process = subprocess.run(argv, executable=program, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, env=env, timeout=300, check=False)
    except (OSError, subprocess.SubprocessError) as error:
        raise ImportTestFailed("%s failed: %s" % (argv[0], error))
    if process.returncode != 0:
        message = _cut(process.stderr.decode("utf-8", "replace")) or "no message"
        raise ImportTestFailed("%s exited with %d: %s" % (argv[0], process.returncode, message))
    return process.stdout.decode("utf-8", "replace")


def scratch_lock_dir(config_dir):
    return os.path.join(config_dir, "scratch")


def _take_if_stale(path):
    """(True, fd or None) when no test holds the lock ``path`` (fd: the lock, now ours); (False, None) otherwise."""
    try:
        handle = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return True, None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(handle)
        return False, None
    return True, handle


def _new_scratch(lock_dir):
    """A new scratch name and its lock, held; the lock file is made before the database."""
    while True:
        scratch = SCRATCH_PREFIX + binascii.hexlify(os.urandom(6)).decode("ascii")
        try:
            handle = os.open(os.path.join(lock_dir, scratch + ".lock"), os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        fcntl.flock(handle, fcntl.LOCK_EX)
        return scratch, handle


def drop_stale_scratch(engine, lock_dir, search_path=SAFE_PATH, env=None):
    """Drop the scratch databases whose test is not running any more (its lock is free or gone).

    A test holds the lock of its scratch database from before CREATE DATABASE to after DROP DATABASE,
    so a database whose lock can be taken belongs to a test that was killed (or a server that rebooted).
    """
    listing = "SHOW DATABASES" if engine == "mariadb" else "SELECT datname FROM pg_database"
    dropped = []
    for name in run_admin(engine, [listing], search_path, env).split():
        if not SCRATCH_RE.fullmatch(name):
            continue
        path = os.path.join(lock_dir, name + ".lock")
        stale, handle = _take_if_stale(path)
        if not stale:
            continue
        try:
            run_admin(engine, [_drop_statement(engine, name)], search_path, env)
            dropped.append(name)
        finally:
            if handle is not None:
                _unlink_quietly(path)
                os.close(handle)
    return dropped


def _drop_statement(engine, name):
    if engine == "mariadb":
        return "DROP DATABASE IF EXISTS %s" % _quoted(engine, name)
    return "DROP DATABASE IF EXISTS %s WITH (FORCE)" % _quoted(engine, name)


def _create_statements(engine, name):
    if engine == "mariadb":
        return ["SELECT VERSION()", "CREATE DATABASE %s" % _quoted(engine, name)]
    return ["SHOW server_version", "CREATE DATABASE %s TEMPLATE template0" % _quoted(engine, name)]


def _unlink_quietly(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def _stop(process):
    """Stop the import: SIGTERM first (runuser passes it on to psql), SIGKILL if that is not enough."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _interrupt(signum, frame):
    raise Interrupted("interrupted by signal %d" % signum)


def restore_test(engine, database, config_dir=CONFIG_DIR, search_path=SAFE_PATH, env=None, stdin=None,
                 clock=time.monotonic):
    """Import the dump read from ``stdin`` into a new scratch database and drop it; returns the report.

    Raises ImportTestFailed when the scratch database cannot be made; it is dropped in every case.
    """
    started = clock()
    if engine == "postgresql":
        # The messages are read by their level's name, which the server would otherwise translate.
        env = dict(os.environ if env is None else env, PGOPTIONS="-c lc_messages=C")
    lock_dir = scratch_lock_dir(config_dir)
    if not os.path.isdir(lock_dir):
        os.makedirs(lock_dir, 0o700)
    report = dict(engine=engine, database=database, stale_dropped=drop_stale_scratch(engine, lock_dir, search_path, env))
    scratch, handle = _new_scratch(lock_dir)
    report.update(scratch=scratch, dropped=False)
    errors, warnings = Messages(), Messages()
    output = MariadbOutput(errors, warnings) if engine == "mariadb" else PostgresqlOutput(errors, warnings)
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = dict((number, signal.signal(number, _interrupt))
                        for number in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT))
    process = None
    try:
        report["server_version"] = run_admin(engine, _create_statements(engine, scratch), search_path, env).strip()
        program, argv = resolve(import_test_command(engine, scratch), search_path)
        if engine == "mariadb":
            argv = mariadb_sandbox(program, argv)
        try:
            process = subprocess.Popen(argv, executable=program, stdin=stdin, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, env=env)
        except OSError as error:
            raise ImportTestFailed("cannot start %s: %s" % (argv[0], error))
        readers = [threading.Thread(target=_read_lines, args=(process.stdout, output.stdout_line)),
                   threading.Thread(target=_read_lines, args=(process.stderr, output.stderr_line))]
        for reader in readers:
            reader.daemon = True
            reader.start()
        try:
            report["restore_rc"] = process.wait()
        except Interrupted:
            _stop(process)
            raise
        finally:
            for reader in readers:
                reader.join(30)
        if report["restore_rc"] != 0 and errors.count == 0:
            errors.add("%s exited with %d" % (argv[0], report["restore_rc"]))
    finally:
        if process is not None:
            _stop(process)
        try:
            run_admin(engine, [_drop_statement(engine, scratch)], search_path, env)
            report["dropped"] = True
        except (ImportTestFailed, Refused) as error:
            report["drop_error"] = str(error)
        _unlink_quietly(os.path.join(lock_dir, scratch + ".lock"))
        os.close(handle)
        for number, handler in previous.items():
            signal.signal(number, handler)
    report.update(error_count=errors.count, errors=errors.kept, warning_count=warnings.count, warnings=warnings.kept,
                  expected_warning_count=output.expected.count, expected_warnings=sorted(set(output.expected.kept)),
                  elapsed_s=round(clock() - started, 3))
    return report


def log(log_path, transfer_id, client, outcome, command, detail):
    line = "%s transfer=%s client=%s %s %s command=%s" % (
        datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), transfer_id or "-",
        client or "-", outcome, detail, json.dumps((command or "")[:500]))
    if syslog is not None:
        try:
            syslog.openlog("hosting-migration-transfer", syslog.LOG_PID, syslog.LOG_AUTHPRIV)
            syslog.syslog(syslog.LOG_INFO if outcome in ("accepted", "tested") else syslog.LOG_WARNING, line[21:])
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


def main(argv=None, environ=None, execve=os.execve, stderr=None, stdout=None, stdin=None, search_path=SAFE_PATH):
    """Run the allowed command (does not return) or refuse it (returns 1); a test import returns 0 or 1."""
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
        if argv_to_run is not None:
            program, argv_to_run = resolve(argv_to_run, search_path)
        if detail.startswith("mariadb_restore "):
            argv_to_run = mariadb_sandbox(program, argv_to_run)
    except Refused as refusal:
        log(log_path, transfer_id, client, "refused", command, str(refusal))
        stderr.write("hosting-migration transfer %s: refused: %s\n" % (transfer_id or "-", refusal))
        stderr.flush()
        return 1
    log(log_path, transfer_id, client, "accepted", command, detail)
    env = dict(PATH=search_path, LANG="C.UTF-8", HOME=environ.get("HOME", "/root"),
               USER=environ.get("USER", "root"), LOGNAME=environ.get("LOGNAME", "root"))
    os.chdir("/")
    if argv_to_run is None:
        return _run_import_test(detail, config_dir, log_path, transfer_id, client, command, env,
                                stdout or sys.stdout, stderr, stdin, search_path)
    execve(program, argv_to_run, env)
    return 0


def _run_import_test(detail, config_dir, log_path, transfer_id, client, command, env, stdout, stderr, stdin,
                     search_path):
    """The test import named by ``detail`` (``mariadb_test DB``): its JSON report on stdout, exit 0;
    a message on stderr and exit 1 when no test could be made."""
    operation, database = detail.split(" ")
    engine = operation[:-len("_test")]
    try:
        report = restore_test(engine, database, config_dir, search_path, env, stdin)
    except (ImportTestFailed, Interrupted, Refused) as failure:
        log(log_path, transfer_id, client, "failed", command, "%s: %s" % (detail, failure))
        stderr.write("hosting-migration transfer %s: test import of %s database %s failed: %s\n"
                     % (transfer_id, engine, database, failure))
        stderr.flush()
        return 1
    log(log_path, transfer_id, client, "tested", command, "%s into %s: %d errors, %d warnings, %s%s" % (
        detail, report["scratch"], report["error_count"], report["warning_count"],
        "dropped" if report["dropped"] else "NOT dropped: " + report.get("drop_error", ""),
        "; stale scratch databases dropped: " + " ".join(report["stale_dropped"]) if report["stale_dropped"] else ""))
    try:
        stdout.write(json.dumps(report, sort_keys=True) + "\n")
        stdout.flush()
    except OSError:
        return 1
    return 0
