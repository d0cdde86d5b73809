#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r"""
module: transit_lease
short_description: Lease a transit server for a customer server, wait in line for one, or release it
version_added: 0.1.0
description:
  - Runs on the controller (an action plugin) with the inventory and the ledger (the state store).
  - O(state=present) leases the best free transit server of the pool that matches the customer
    server (at least as many cores, as much memory and disk, the same architecture and zone, the
    target infrastructure version; see C(docs/transit.md)), atomically in the ledger, so two
    controllers racing for the last free server cannot both win. A customer server that holds a
    lease already gets the same lease back.
  - When every matching server is leased, the request joins a first-come-first-served waiting
    list (unless O(queue=false)); with O(wait=true) the module waits, printing its place in
    line, until a server is handed to it or O(timeout_s) passes, then fails with the request
    still queued (or withdrawn, with O(withdraw_on_timeout=true)). A released server goes to the
    head of the line at once.
  - O(state=absent) withdraws a waiting request; O(state=released) closes the lease with its
    final charge and hands the server to the next request in line - refused while the transit
    server serves an account or holds the only verified copy of one (wipe it first, see
    the playbook C(hosting.migration.release_transit)); O(state=info) only reads.
  - The request is checked in full before the ledger is touched - the server in the inventory and
    not in the pool, its C(server_profile) and C(server_price), the pool's profiles and versions,
    a match that can ever exist.
author: hosting.migration developers (!UNKNOWN)
extends_documentation_fragment:
  - hosting.migration.accounts.ATTRIBUTES
attributes:
  check_mode:
    support: partial
    details: Reports what O(state=info) reports; changes nothing.
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  location:
    description:
      - The ledger, as for M(hosting.migration.ledger) (an SQLite path or a PostgreSQL DSN; default
        E(HOSTING_MIGRATION_LEDGER), then C(~/.local/state/hosting-migration/ledger.sqlite3)).
    type: str
  server:
    description: The customer server (an inventory host with C(server_profile) and C(server_price)).
    type: str
    required: true
  state:
    description: What to do.
    type: str
    choices: [present, absent, released, info]
    default: present
  pool:
    description: The inventory group of the transit servers (each with C(server_profile) and C(infrastructure_version)).
    type: str
    default: transit_pool
  target_version:
    description: The infrastructure version the transit server must run (required for O(state=present) and O(state=info)).
    type: str
  free_days:
    description: Days the lease costs nothing (from its start); then the customer server's price per day.
    type: int
    default: 7
  time_zone:
    description: The IANA time zone of the calendar days billed (see C(docs/transit.md)).
    type: str
    default: UTC
  warn_days:
    description: Warn when the free period of a running lease ends within this many days.
    type: int
    default: 2
  queue:
    description: Join the waiting list when no matching server is free (otherwise return with none).
    type: bool
    default: true
  wait:
    description: Wait in line until a server is handed over or O(timeout_s) passes.
    type: bool
    default: false
  timeout_s:
    description: How long to wait in line, in seconds.
    type: int
    default: 3600
  poll_s:
    description: How often to look at the waiting list while waiting, in seconds.
    type: float
    default: 10
  withdraw_on_timeout:
    description: Withdraw the request when the wait times out (by default it stays in line).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: A transit server for dedicated1, waiting up to an hour for one
  hosting.migration.transit_lease:
    location: "{{ migration_ledger }}"
    server: dedicated1
    target_version: "2025"
    wait: true
    timeout_s: 3600
  register: lease

- name: Release it once every account is back and it has been wiped
  hosting.migration.transit_lease:
    location: "{{ migration_ledger }}"
    server: dedicated1
    state: released
"""

RETURN = r"""
transit:
  description: The leased transit server; null when none (queued, or no lease).
  returned: always
  type: str
  sample: transit1
lease:
  description:
    - The lease (C(id), C(transit), C(customer_server), C(state), C(started_at), C(free_days),
      C(price_monthly), C(currency), C(time_zone), C(released_at), C(final_amount)) with
      C(charge), its charge so far or in all (see the C(hosting.migration.transit_charge) filter).
  returned: when there is one
  type: dict
queued:
  description: The request waits in line.
  returned: state=present or state=info
  type: bool
position:
  description: The request's place in line (1 is next).
  returned: when queued
  type: int
request:
  description: The waiting request (C(id), C(requested_at), C(candidates), ...).
  returned: when queued
  type: dict
matching:
  description: The transit servers that match the customer server, best fit first.
  returned: state=present or state=info
  type: list
  elements: str
rejected:
  description: For each transit server that does not match, why, as sentences.
  returned: state=present or state=info
  type: dict
handed_to:
  description: The lease that the released server went to (the next request in line), or null.
  returned: state=released
  type: dict
leases:
  description: Every lease of the customer server, with its charge.
  returned: state=info
  type: list
  elements: dict
withdrawn:
  description: A waiting request was withdrawn.
  returned: state=absent
  type: bool
"""
