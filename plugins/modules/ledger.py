#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r"""
module: ledger
short_description: Read and write the migration state store (the ledger)
version_added: 0.1.0
description:
  - The record of truth of every migration - where each account lives and is verified, each
    move's step, timings and bytes, each server's phase, locks and events. See the collection's
    C(docs/state-store.md).
  - Runs on the controller (an action plugin). The ledger is an SQLite file there, or a
    PostgreSQL database for AWX and several controllers.
  - Every write is one transaction. Repeating a step a move already has changes nothing, so a
    resumed run can repeat its last call.
author: hosting.migration developers (!UNKNOWN)
extends_documentation_fragment:
  - hosting.migration.accounts.ATTRIBUTES
attributes:
  check_mode:
    support: partial
    details: Reads run; writes are skipped and reported as changed.
  diff_mode:
    support: none
  idempotent:
    support: partial
    details: Repeated steps and resumed moves report no change; events are always appended.
options:
  location:
    description:
      - SQLite file path, C(sqlite:///path), or a PostgreSQL DSN (C(postgresql://user@host/db)).
      - Default the environment variable E(HOSTING_MIGRATION_LEDGER), then
        C(~/.local/state/hosting-migration/ledger.sqlite3) on the controller.
    type: str
  operation:
    description: What to do.
    type: str
    required: true
    choices: [register_server, set_phase, register_account, start_move, set_step, acquire, release, record_event,
              record_wiped, register_address, route_address, account, server, check_wipe, check_reinstall, events,
              leases, addresses, accounts, progress]
  server:
    description:
      - Server name (register_server, set_phase, server, check_wipe, record_wiped, check_reinstall, addresses, accounts;
        the home server for register_address; optional for record_event).
      - For leases, only the leases of that customer server.
    type: str
  infrastructure_version:
    description: Infrastructure version of the server (register_server); the version it migrates to (progress).
    type: str
  phase:
    description: Phase of the server's migration (set_phase).
    type: str
  account:
    description: Account name (register_account, start_move, account; optional for record_event).
    type: str
  home_server:
    description: The customer server the account belongs to (register_account).
    type: str
  source:
    description: Server the account moves from (start_move).
    type: str
  target:
    description: Server the account moves to (start_move).
    type: str
  direction:
    description: C(out) to the transit server, C(back) to the reinstalled server (start_move).
    type: str
    choices: [out, back]
  move_id:
    description: The move (set_step; optional for record_event).
    type: int
  step:
    description: Step the move reaches (set_step); see C(docs/state-store.md) for the allowed transitions.
    type: str
  files_bytes:
    description: Bytes of files moved in this step, added to the move's total.
    type: int
  databases_bytes:
    description: Bytes of databases moved in this step, added to the move's total.
    type: int
  verification:
    description: Verification results recorded with the C(verified) step.
    type: dict
  digest:
    description: Content digest of the verified copies.
    type: str
  error:
    description: Why the move failed (required with step C(failed)).
    type: str
  lock:
    description: Lock name (acquire, release).
    type: str
  holder:
    description:
      - Who holds the lock, in words a person can find (what runs, for which server).
      - The controller's host name and the ansible-playbook process are added to it, so a lock
        left by a run that was killed on this controller is taken over by the next run at once
        (and the takeover recorded as an event) instead of when it expires. A lock held by a
        live process, or by another controller, is only taken over once it expires.
    type: str
  ttl_s:
    description: Seconds after which an unreleased lock expires.
    type: int
    default: 3600
  kind:
    description: Kind of event (record_event).
    type: str
  details:
    description: Details of the event (record_event).
    type: dict
  address:
    description: A service address, IPv4 or IPv6 (register_address, route_address).
    type: str
  routed_to:
    description: The server the address reaches now (route_address).
    type: str
  switch_s:
    description: The measured time the address took to answer from its new server (route_address).
    type: float
"""

EXAMPLES = r"""
- name: Start (or resume) the move of alice to the transit server
  hosting.migration.ledger:
    operation: start_move
    account: alice
    source: dedicated1
    target: transit1
    direction: out
  register: move

- name: Record the freeze
  hosting.migration.ledger:
    operation: set_step
    move_id: "{{ move.move.id }}"
    step: frozen

- name: Refuse to wipe a server holding the only verified copy of an account
  hosting.migration.ledger:
    operation: check_wipe
    server: transit1
"""

RETURN = r"""
move:
  description: The move after the operation (start_move, set_step).
  returned: when the operation concerns a move
  type: dict
account:
  description: The account's record (register_account, account).
  returned: when the operation concerns an account
  type: dict
copies:
  description: Every copy of the account, with state, digest and verification (account).
  returned: operation account
  type: list
  elements: dict
moves:
  description: Every move of the account (account).
  returned: operation account
  type: list
  elements: dict
server:
  description: The server's record, with its phase (register_server, set_phase, server).
  returned: when the operation concerns a server
  type: dict
only_verified_copy:
  description: Accounts whose only verified copy is on the server (server, check_wipe).
  returned: operations server and check_wipe
  type: list
  elements: str
lock:
  description: The lock held (acquire).
  returned: operation acquire
  type: dict
event:
  description: The event recorded (record_event).
  returned: operation record_event
  type: dict
events:
  description: Events, oldest first, of the account, server, kind and move given (events).
  returned: operation events
  type: list
  elements: dict
address:
  description: The address's record (C(address), C(home_server), C(routed_to), C(changed_at), C(switch_s)).
  returned: operations register_address and route_address
  type: dict
phases:
  description:
    - The phases of the server's required migration in order, each with C(phase), C(title),
      C(done) and C(left) (the accounts or addresses still to do) (progress).
  returned: operation progress
  type: list
  elements: dict
plan:
  description: The same as text, one line per phase (progress).
  returned: operation progress
  type: str
transit:
  description: The transit server of the server's latest lease, or null (progress).
  returned: operation progress
  type: str
accounts:
  description: The accounts whose home is the server, each with its C(live_server) (accounts).
  returned: operation accounts
  type: list
  elements: dict
addresses:
  description: The service addresses of the server, each with C(rerouted).
  returned: operation addresses
  type: list
  elements: dict
missing:
  description: Empty when the server may be reinstalled (check_reinstall fails naming what is missing otherwise).
  returned: operation check_reinstall
  type: list
  elements: str
removed_copies:
  description: Accounts whose copy on the server is recorded as removed by the wipe (record_wiped).
  returned: operation record_wiped
  type: list
  elements: str
leases:
  description: Leases of transit servers, oldest first (leases).
  returned: operation leases
  type: list
  elements: dict
waiting:
  description: The waiting list of lease requests, first in line first (leases).
  returned: operation leases
  type: list
  elements: dict
"""
