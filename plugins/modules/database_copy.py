#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r"""
module: database_copy
short_description: Stream databases from this server into the transfer's target, dump piped into restore
version_added: 0.1.0
description:
  - Run on the source server of a transfer, after M(hosting.migration.transfer_key) on this server
    and M(hosting.migration.transfer_authorization) on the target (with C(mariadb_restore) or
    C(postgresql_restore) for each database).
  - For each database in turn, runs the dump here and pipes it through ssh (the transfer's key and
    C(known_hosts) only) into the target's transfer endpoint, which runs the restore; the module
    copies and counts the bytes itself, without temporary files, and nothing passes through the
    controller.
  - MariaDB - C(mariadb-dump --single-transaction --routines --triggers --events --hex-blob --no-create-db DB)
    (C(mysqldump) where C(mariadb-dump) is missing), restored by C(mariadb --database=DB) on the target.
    The database must exist on the target (the account role makes it); tables, views and routines
    are dropped and made again, so a copy after an interrupted one works.
  - PostgreSQL - C(pg_dump --clean --if-exists --quote-all-identifiers DB) run as C(postgres), owners and
    grants kept, restored by C(psql -X -q -v ON_ERROR_STOP=1 DB) as C(postgres) on the target. The
    database and its roles must exist on the target (made by the account role, with the same names
    and password hashes); every object of the dump is dropped first if it exists.
  - The copy fails if either side fails, with the first lines of each side's messages. A failed or
    interrupted copy can leave a partial database on the target; run it again.
author: hosting.migration developers (!UNKNOWN)
extends_documentation_fragment:
  - hosting.migration.transfer
  - hosting.migration.accounts.ATTRIBUTES
attributes:
  check_mode:
    support: partial
    details: Checks the input, the transfer's key and the dump tools, and returns the commands without running them.
  diff_mode:
    support: none
  idempotent:
    support: none
    details: Every run copies the databases again and reports a change.
options:
  databases:
    description:
      - The databases to copy, in this order, each a dict with C(engine) (V(mariadb) or
        V(postgresql)) and C(name) (1 to 63 lower-case letters, digits and C(_)).
      - The name is the same on both servers.
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: Copy alice's databases once the account is frozen
  hosting.migration.database_copy:
    transfer_id: move-12-alice
    peer: "{{ hostvars[migration_target].ansible_host }}"
    databases:
      - {engine: mariadb, name: alice_app}
      - {engine: postgresql, name: alice_app}
  register: database_copy
"""

RETURN = r"""
databases:
  description:
    - One entry per database copied, in order, with C(engine), C(name), C(bytes) (of the dump),
      C(elapsed_s) and the C(dump) and C(restore) command lines (null bytes and times in check mode).
  returned: always
  type: list
  elements: dict
  sample: [{engine: mariadb, name: alice_app, bytes: 2811904, elapsed_s: 0.913,
            dump: [mariadb-dump, --single-transaction, --routines, --triggers, --events, --hex-blob,
                   --no-create-db, alice_app],
            restore: [ssh, "...", root@10.77.0.30, hosting-restore mariadb alice_app]}]
bytes:
  description: Bytes of all the dumps.
  returned: always
  type: int
  sample: 5623808
elapsed_s:
  description: Seconds for all the copies.
  returned: always
  type: float
  sample: 1.734
peer:
  description: The target's address, normalised.
  returned: always
  type: str
  sample: 10.77.0.30
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hosting.migration.plugins.module_utils.transfer import TransferError
from ansible_collections.hosting.migration.plugins.module_utils.transfer_stream import (
    DATABASE_COPY_MODULE_KWARGS, run_database_copy)


def main():
    module = AnsibleModule(**DATABASE_COPY_MODULE_KWARGS)
    try:
        module.exit_json(**run_database_copy(module.params, check_mode=module.check_mode))
    except TransferError as error:
        module.fail_json(msg=str(error), **error.details)


if __name__ == "__main__":
    main()
