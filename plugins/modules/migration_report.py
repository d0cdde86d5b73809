#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r"""
module: migration_report
short_description: Write the migration report of a customer server, as one HTML file and as JSON
version_added: 0.1.0
description:
  - Reads what the ledger (the state store) records about the migration of O(server) and writes
    C(<dest>/<basename>.html) and C(<dest>/<basename>.json) on the controller (an action plugin).
  - The HTML page is self-contained (inline CSS and SVG, no script, nothing fetched), so it opens in
    a browser with no network and prints cleanly. It shows a summary, a timeline chart of the
    phases, freeze windows, reroutes, DNS changes and the transit lease, and tables of the phases,
    every account (where it lives, its copies, each move with its freeze window, bytes and
    verification), every service address (each reroute with its measured loss), the DNS changes and
    restores, and the leases with their charges. The JSON holds the same data; see the collection's
    C(docs/report.md).
  - Works at any point of a migration; sections with nothing recorded yet say so.
  - Each file is written to a temporary file in O(dest) and renamed, so a reader never sees half a
    report. O(dest) is created when missing.
author: hosting.migration developers (!UNKNOWN)
extends_documentation_fragment:
  - hosting.migration.accounts.ATTRIBUTES
attributes:
  check_mode:
    support: full
    details: Reports whether the files would change; writes nothing.
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - The time the report was generated is not compared; the files are rewritten only when what they
        report changed. A running lease's amount so far changes with the days billed.
options:
  location:
    description:
      - The ledger, as for M(hosting.migration.ledger) (an SQLite path or a PostgreSQL DSN; default
        E(HOSTING_MIGRATION_LEDGER), then C(~/.local/state/hosting-migration/ledger.sqlite3)).
    type: str
  server:
    description: The customer server whose migration is reported (as the ledger names it).
    type: str
    required: true
  dest:
    description:
      - The directory on the controller the files are written to; C(~) is expanded, and a relative
        path is relative to the directory C(ansible-playbook) runs in.
    type: path
    default: ./reports
  basename:
    description:
      - The files' name without C(.html) or C(.json); a file name, without a directory.
      - Default C(migration-<server>).
    type: str
"""

EXAMPLES = r"""
- name: The migration report of dedicated1
  hosting.migration.migration_report:
    location: "{{ migration_ledger | default(omit) }}"
    server: dedicated1
    dest: /srv/hosting-migration-reports
  register: report

- name: Where it is
  ansible.builtin.debug:
    msg: "Open {{ report.html_path }} in a browser; longest freeze {{ report.summary.freeze_max_s }} s"
"""

RETURN = r"""
html_path:
  description: The HTML report (absolute path on the controller).
  returned: success
  type: str
  sample: /root/hosting-migration-reports/migration-dedicated1.html
json_path:
  description: The same data as JSON (absolute path on the controller).
  returned: success
  type: str
  sample: /root/hosting-migration-reports/migration-dedicated1.json
summary:
  description: The report's summary, also at the top of the page and in the JSON's C(summary).
  returned: success
  type: dict
  contains:
    server:
      description: The customer server.
      type: str
    infra_version:
      description: The infrastructure version it runs now.
      type: str
    status:
      description: The phase of its migration, or C(not started).
      type: str
    accounts_total:
      description: How many accounts belong to the server.
      type: int
    accounts_live_on:
      description: How many of them are served from each server.
      type: dict
      sample: {dedicated1: 3, transit1: 2}
    moves_total:
      description: Moves recorded (out and back, finished or not).
      type: int
    moves_done:
      description: Moves at step C(done).
      type: int
    moves_unfinished:
      description: Moves still in progress.
      type: int
    freeze_total_s:
      description: Seconds the accounts were frozen, all moves together.
      type: float
    freeze_max_s:
      description: The longest freeze window in seconds; null before the first one ended.
      type: float
    freeze_max_account:
      description: The account frozen longest.
      type: str
    files_bytes:
      description: Bytes of files copied by all moves.
      type: int
    databases_bytes:
      description: Bytes of databases streamed by all moves.
      type: int
    bytes_moved:
      description: The two together.
      type: int
    reroutes:
      description: Every reroute of a service address, oldest first, with C(address), C(to) and C(switch_s) (measured loss in seconds).
      type: list
      elements: dict
    switch_max_s:
      description: The longest measured loss of a reroute, in seconds; null when none was measured.
      type: float
    dns_records_changed:
      description: DNS records changed for the migration (restores not counted).
      type: int
    lease_amount:
      description: What the server's transit leases cost (final, or so far for a running one), per currency; null without a lease.
      type: str
      sample: 3.00 EUR
    lease_running:
      description: A lease is still running (its amount is so far).
      type: bool
    waiting_position:
      description: The server's place in line for a transit server (1 is next); null when not waiting.
      type: int
"""
