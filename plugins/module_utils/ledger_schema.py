# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ledger's tables, as an ordered list of schema steps applied when a ledger is opened.

A step is never edited once released: a change to the schema is a new step at the end of
``MIGRATIONS`` (see docs/state-store.md, "Adding a table"). ``schema_version`` holds one row per
applied step. All pending steps are applied in one transaction, under the backend's migration
lock, so two controllers opening an old ledger at once migrate it exactly once.

The DDL is written once for both engines: TEXT, BIGINT and CHECK constraints mean the same on
SQLite and PostgreSQL; ``{serial_primary_key}`` becomes the engine's auto-numbered key.
Times are TEXT (see ledger_records), JSON is TEXT holding JSON.
"""

from __future__ import (absolute_import, division, print_function)

# No "from __future__ import annotations": dataclasses then look the module up in sys.modules,
# which fails when a file is loaded by path.
__metaclass__ = type

import dataclasses
from typing import Tuple

from ansible_collections.hosting.migration.plugins.module_utils.ledger_errors import SchemaTooNew


@dataclasses.dataclass(frozen=True)
class SchemaStep:
    version: int
    description: str
    statements: Tuple[str, ...]


INITIAL_TABLES = (
    """CREATE TABLE servers (
        name TEXT PRIMARY KEY,
        infra_version TEXT,
        phase TEXT,
        phase_since TEXT,
        registered_at TEXT NOT NULL
    )""",
    """CREATE TABLE server_phases (
        id {serial_primary_key},
        server TEXT NOT NULL REFERENCES servers (name),
        phase TEXT NOT NULL,
        previous_phase TEXT,
        at TEXT NOT NULL
    )""",
    "CREATE INDEX server_phases_by_server ON server_phases (server, id)",
    """CREATE TABLE accounts (
        name TEXT PRIMARY KEY,
        home_server TEXT NOT NULL REFERENCES servers (name),
        live_server TEXT NOT NULL REFERENCES servers (name),
        registered_at TEXT NOT NULL
    )""",
    "CREATE INDEX accounts_by_home_server ON accounts (home_server)",
    "CREATE INDEX accounts_by_live_server ON accounts (live_server)",
    """CREATE TABLE copies (
        account TEXT NOT NULL REFERENCES accounts (name),
        server TEXT NOT NULL REFERENCES servers (name),
        state TEXT NOT NULL CHECK (state IN ('copying', 'verified', 'stale', 'removed')),
        verified_at TEXT,
        digest TEXT,
        verification TEXT,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (account, server)
    )""",
    "CREATE INDEX copies_by_server ON copies (server, state)",
    """CREATE TABLE moves (
        id {serial_primary_key},
        account TEXT NOT NULL REFERENCES accounts (name),
        source TEXT NOT NULL REFERENCES servers (name),
        target TEXT NOT NULL REFERENCES servers (name),
        direction TEXT NOT NULL CHECK (direction IN ('out', 'back')),
        step TEXT NOT NULL CHECK (step IN ('planned', 'precopied', 'frozen', 'synced',
            'verified', 'switched', 'done', 'rolled_back', 'failed')),
        planned_at TEXT NOT NULL,
        precopied_at TEXT,
        frozen_at TEXT,
        synced_at TEXT,
        verified_at TEXT,
        switched_at TEXT,
        done_at TEXT,
        rolled_back_at TEXT,
        failed_at TEXT,
        freeze_started_at TEXT,
        freeze_ended_at TEXT,
        files_bytes BIGINT NOT NULL DEFAULT 0,
        databases_bytes BIGINT NOT NULL DEFAULT 0,
        verification TEXT,
        error TEXT,
        updated_at TEXT NOT NULL,
        CHECK (source <> target)
    )""",
    # The engine itself refuses a second unfinished move of one account, whatever the code does.
    """CREATE UNIQUE INDEX moves_one_unfinished_per_account ON moves (account)
        WHERE step NOT IN ('done', 'rolled_back', 'failed')""",
    "CREATE INDEX moves_by_source ON moves (source)",
    "CREATE INDEX moves_by_target ON moves (target)",
    # Append-only and without foreign keys: the log must accept any record and outlive rows.
    """CREATE TABLE events (
        id {serial_primary_key},
        at TEXT NOT NULL,
        kind TEXT NOT NULL,
        server TEXT,
        account TEXT,
        move_id BIGINT,
        details TEXT NOT NULL
    )""",
    "CREATE INDEX events_by_time ON events (at)",
    """CREATE TABLE locks (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        acquired_at TEXT NOT NULL,
        expires_at TEXT NOT NULL
    )""",
)

LEASE_TABLES = (
    # A transit server leased to a customer server. The price is the customer server's, as text
    # holding an exact decimal; the charge is computed from these columns (transit_billing).
    """CREATE TABLE leases (
        id {serial_primary_key},
        transit TEXT NOT NULL REFERENCES servers (name),
        customer_server TEXT NOT NULL REFERENCES servers (name),
        state TEXT NOT NULL CHECK (state IN ('active', 'released')),
        started_at TEXT NOT NULL,
        free_days BIGINT NOT NULL CHECK (free_days >= 0),
        price_monthly TEXT NOT NULL,
        currency TEXT NOT NULL,
        time_zone TEXT NOT NULL,
        released_at TEXT,
        final_amount TEXT,
        wiped_at TEXT,
        CHECK (transit <> customer_server)
    )""",
    # The engine itself refuses a second active lease of a transit server or for a customer
    # server: two controllers racing for the last free server cannot both win.
    "CREATE UNIQUE INDEX leases_one_active_per_transit ON leases (transit) WHERE state = 'active'",
    "CREATE UNIQUE INDEX leases_one_active_per_customer ON leases (customer_server) WHERE state = 'active'",
    # The waiting list, first come first served: requests that found no free matching server.
    """CREATE TABLE lease_requests (
        id {serial_primary_key},
        customer_server TEXT NOT NULL REFERENCES servers (name),
        state TEXT NOT NULL CHECK (state IN ('waiting', 'served', 'withdrawn')),
        requested_at TEXT NOT NULL,
        candidates TEXT NOT NULL,
        free_days BIGINT NOT NULL CHECK (free_days >= 0),
        price_monthly TEXT NOT NULL,
        currency TEXT NOT NULL,
        time_zone TEXT NOT NULL,
        lease_id BIGINT REFERENCES leases (id),
        settled_at TEXT
    )""",
    """CREATE UNIQUE INDEX lease_requests_one_waiting_per_customer ON lease_requests (customer_server)
        WHERE state = 'waiting'""",
)

ADDRESS_TABLES = (
    # Where each service address of a customer server is routed: to its home server, or, during a
    # cut-over, to the transit server that serves its accounts meanwhile.
    """CREATE TABLE addresses (
        address TEXT PRIMARY KEY,
        home_server TEXT NOT NULL REFERENCES servers (name),
        routed_to TEXT NOT NULL REFERENCES servers (name),
        changed_at TEXT NOT NULL,
        switch_s TEXT
    )""",
    "CREATE INDEX addresses_by_home_server ON addresses (home_server)",
)

MIGRATIONS = (
    SchemaStep(1, "servers, accounts, copies, moves, events and locks", INITIAL_TABLES),
    SchemaStep(2, "leases of transit servers and their waiting list", LEASE_TABLES),
    SchemaStep(3, "service addresses and where they are routed", ADDRESS_TABLES),
)

SCHEMA_VERSION_TABLE = """CREATE TABLE IF NOT EXISTS schema_version (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at TEXT NOT NULL
)"""


def check_migrations(migrations):
    """Versions must count up from 1 without gaps: a gap is a step lost in a merge."""
    versions = [step.version for step in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError("schema steps must be numbered 1, 2, 3... in order, got %s" % versions)


def current_version(backend):
    row = backend.row("SELECT MAX(version) AS version FROM schema_version")
    return 0 if row is None or row["version"] is None else int(row["version"])


def migrate(backend, now, migrations=MIGRATIONS):
    """Bring the ledger's schema up to the last of ``migrations``; return the version it is at."""
    check_migrations(migrations)
    latest = migrations[-1].version if migrations else 0
    # Usually there is nothing to do: find out without the write lock, so that opening a ledger
    # does not wait for other controllers (and a read-only PostgreSQL role can open it).
    if "schema_version" in backend.table_names() and current_version(backend) == latest:
        return latest

    def apply_pending():
        backend.run(SCHEMA_VERSION_TABLE)
        version = current_version(backend)
        if version > latest:
            raise SchemaTooNew(
                "the ledger %s is at schema version %d, newer than this release of "
                "hosting.migration knows (%d); upgrade the collection on this controller" % (
                    backend.description, version, latest))
        for step in migrations[version:]:
            for statement in step.statements:
                backend.run(statement.replace("{serial_primary_key}", backend.serial_primary_key))
            backend.run("INSERT INTO schema_version (version, description, applied_at) "
                        "VALUES (?, ?, ?)", (step.version, step.description, now))
        return max(version, latest)

    return backend.migrate(apply_pending)
