# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Where the ledger lives: SQLite or PostgreSQL behind one small interface.

The ledger writes its SQL once, with ``?`` placeholders and types both engines accept, and
passes every change to :meth:`write` as a function, so that the backend can make it one
transaction that no other controller's change interleaves with:

- SQLite: ``BEGIN IMMEDIATE`` takes the file's write lock before the first read, so a decision
  is always made on the rows it then changes; a second writer waits up to ``timeout_s`` (the
  busy timeout) instead of failing at once.
- PostgreSQL: ``SERIALIZABLE`` transactions; when the server detects that two of them raced, it
  aborts one, and :meth:`write` runs that change again from the start on fresh rows.

psycopg is imported only when a PostgreSQL location is opened, so SQLite users need nothing
beyond the standard library.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import random
import re
import sqlite3
import time
from urllib.parse import urlsplit

from ansible_collections.hosting.migration.plugins.module_utils.ledger_errors import (
    InvalidRequest, LedgerBusy, LedgerUnavailable)

ENV_LOCATION = "HOSTING_MIGRATION_LEDGER"
DEFAULT_SQLITE_PATH = "~/.local/state/hosting-migration/ledger.sqlite3"
POSTGRES_SCHEMES = ("postgresql://", "postgres://")
SQLITE_SCHEME = "sqlite://"
# libpq's other DSN form: "host=db dbname=ledger user=ledger".
CONNINFO = re.compile(r"^[a-z_]+\s*=")
CONNINFO_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)")

# Key of the PostgreSQL advisory lock held while the schema is migrated (any constant works as
# long as every release uses the same one).
MIGRATION_LOCK_KEY = 0x686d6c6564676572  # "hmledger"
SERIALIZABLE_ATTEMPTS = 20


def resolve_location(location=None):
    """("sqlite", absolute path) or ("postgresql", DSN) for a location setting.

    No location means the environment variable ``HOSTING_MIGRATION_LEDGER``, then the default
    SQLite file in the controller user's home.
    """
    location = location or os.environ.get(ENV_LOCATION) or DEFAULT_SQLITE_PATH
    if isinstance(location, os.PathLike):
        location = os.fspath(location)
    if not isinstance(location, str):
        raise LedgerUnavailable("the ledger location must be a path or a URL, not %r" % (location,))
    location = location.strip()
    if location.startswith(POSTGRES_SCHEMES) or CONNINFO.match(location):
        return "postgresql", location
    if location.startswith(SQLITE_SCHEME):
        path = location[len(SQLITE_SCHEME):]
    elif "://" in location:
        raise LedgerUnavailable(
            "unknown ledger location %r: use a file path, sqlite:///abs/path, "
            "postgresql://user@host/db or host=... dbname=..." % describe_location(location))
    else:
        path = os.path.expanduser(location)
    if not os.path.isabs(path):
        raise LedgerUnavailable(
            "the SQLite ledger path %r is not absolute; give /abs/path, ~/path or "
            "sqlite:///abs/path" % path)
    return "sqlite", os.path.normpath(path)


def describe_location(location):
    """The location without its password, for messages and logs."""
    if CONNINFO.match(location):
        return CONNINFO_PASSWORD.sub(r"\1***", location)
    parts = urlsplit(location)
    if parts.password is None:
        return location
    netloc = parts.netloc.replace(":" + parts.password + "@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def open_backend(location=None, timeout_s=30.0):
    kind, target = resolve_location(location)
    if kind == "sqlite":
        return SqliteBackend(target, timeout_s)
    return PostgresBackend(target, timeout_s)


class SqliteBackend:
    dialect = "sqlite"
    serial_primary_key = "INTEGER PRIMARY KEY AUTOINCREMENT"

    def __init__(self, path, timeout_s):
        self.path = path
        self.description = SQLITE_SCHEME + path
        self.timeout_s = timeout_s
        try:
            # The default lives under ~/.local/state, which may not exist yet.
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            # isolation_level=None: the module must not open transactions behind our back;
            # write() opens them itself with BEGIN IMMEDIATE.
            self._conn = sqlite3.connect(path, timeout=timeout_s, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise LedgerUnavailable("cannot open the SQLite ledger %s: %s; check the path and "
                                    "the permissions of its directory" % (path, exc)) from None
        self._conn.row_factory = sqlite3.Row
        self.run("PRAGMA foreign_keys = ON")

    def _execute(self, sql, params):
        try:
            return self._conn.execute(sql, params)
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise LedgerBusy(
                    "the SQLite ledger %s stayed locked by another controller for more than "
                    "%s s; retry when the other run has finished" % (self.path, self.timeout_s)
                ) from None
            raise LedgerUnavailable("the SQLite ledger %s cannot be used: %s" % (self.path, exc)) from None
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.IntegrityError):
                raise
            raise LedgerUnavailable("the SQLite ledger %s cannot be used: %s" % (self.path, exc)) from None

    def rows(self, sql, params=()):
        return [dict(row) for row in self._execute(sql, params).fetchall()]

    def row(self, sql, params=()):
        found = self.rows(sql, params)
        return found[0] if found else None

    def run(self, sql, params=()):
        """Execute a statement; the number of rows it changed."""
        return self._execute(sql, params).rowcount

    def write(self, change):
        """Run ``change()`` in one write transaction and return its result."""
        self.run("BEGIN IMMEDIATE")
        try:
            result = change()
            self.run("COMMIT")
            return result
        except BaseException:
            self._conn.rollback()
            raise

    # One writer at a time already: migrating needs nothing more.
    migrate = write

    def table_names(self):
        return [row["name"] for row in self.rows(
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite_%' ORDER BY name")]

    def close(self):
        self._conn.close()


def _import_psycopg():
    try:
        import psycopg
        from psycopg.rows import dict_row
    except ImportError:
        raise LedgerUnavailable(
            "a PostgreSQL ledger needs psycopg 3 on the controller: pip install "
            "'psycopg[binary]' (it is in the collection's requirements.txt)") from None
    return psycopg, dict_row


class PostgresBackend:
    dialect = "postgresql"
    serial_primary_key = "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"

    def __init__(self, dsn, timeout_s):
        self._psycopg, dict_row = _import_psycopg()
        self.description = describe_location(dsn)
        self.timeout_s = timeout_s
        options = {} if "connect_timeout" in dsn else {"connect_timeout": max(1, int(timeout_s))}
        try:
            self._conn = self._psycopg.connect(dsn, autocommit=True, row_factory=dict_row, **options)
        except self._psycopg.Error as exc:
            raise LedgerUnavailable("cannot connect to the PostgreSQL ledger %s: %s" % (
                self.description, " ".join(str(exc).split()))) from None
        # Waiting for a row or the migration lock ends after timeout_s, like SQLite's busy
        # timeout. set_config, because SET does not take parameters.
        self.row("SELECT set_config('lock_timeout', ?, false)", ("%dms" % (timeout_s * 1000),))
        errors = self._psycopg.errors
        # A unique index that refuses a row a concurrent transaction inserted first (two
        # controllers claiming the last free transit server) is a lost race too: retried, the
        # change sees the other row and decides again.
        self._retryable = (errors.SerializationFailure, errors.DeadlockDetected, errors.UniqueViolation)

    def _execute(self, sql, params):
        # The ledger's SQL never contains "%", so the placeholders are the only ones psycopg sees.
        sql = sql.replace("?", "%s")
        try:
            return self._conn.execute(sql, params)
        except self._retryable:
            raise
        except self._psycopg.errors.LockNotAvailable:
            raise LedgerBusy("the PostgreSQL ledger %s stayed locked by another controller for "
                             "more than %s s; retry when the other run has finished" % (
                                 self.description, self.timeout_s)) from None
        except self._psycopg.OperationalError as exc:
            raise LedgerUnavailable("the PostgreSQL ledger %s cannot be used: %s" % (
                self.description, " ".join(str(exc).split()))) from None

    def rows(self, sql, params=()):
        cursor = self._execute(sql, params)
        return list(cursor.fetchall()) if cursor.description else []

    def row(self, sql, params=()):
        found = self.rows(sql, params)
        return found[0] if found else None

    def run(self, sql, params=()):
        return self._execute(sql, params).rowcount

    def write(self, change):
        """Run ``change()`` in one serializable transaction, again if it lost a race."""
        last = None
        for attempt in range(SERIALIZABLE_ATTEMPTS):
            try:
                with self._conn.transaction():
                    self.run("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
                    return change()
            except self._retryable as exc:
                last = exc
                # Jittered backoff so that the racing controllers do not collide again.
                time.sleep(random.uniform(0, min(0.5, 0.01 * 2 ** attempt)))
        if isinstance(last, self._psycopg.errors.UniqueViolation):
            # Not a race after all: the change itself breaks a rule of the schema.
            raise InvalidRequest("the PostgreSQL ledger %s refused the change: %s" % (
                self.description, " ".join(str(last).split())))
        raise LedgerBusy("the PostgreSQL ledger %s: a change lost %d races in a row against other "
                         "controllers; retry when they have finished" % (
                             self.description, SERIALIZABLE_ATTEMPTS))

    def migrate(self, change):
        """Run ``change()`` holding the migration lock.

        READ COMMITTED, not serializable: a controller that waited for the lock must see the
        schema_version rows the other one committed meanwhile.
        """
        with self._conn.transaction():
            self.row("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK_KEY,))
            return change()

    def table_names(self):
        return [row["table_name"] for row in self.rows(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema() ORDER BY table_name")]

    def close(self):
        self._conn.close()
