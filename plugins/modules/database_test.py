#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r"""
module: database_test
short_description: Test-import databases of this server into scratch databases on a database test server
version_added: 0.1.0
description:
  - Run on the source server, after M(hosting.migration.transfer_key) on this server and
    M(hosting.migration.transfer_authorization) on the test server (with C(mariadb_test) or
    C(postgresql_test) for each database).
  - For each database in turn, runs the dump here and pipes it through ssh (the transfer's key and
    C(known_hosts) only) into the test server's transfer endpoint, which imports it into a new
    scratch database (C(hmtest_) and 12 random hex digits, a prefix no account database may have),
    counts the errors and warnings of the import, drops the scratch database whatever happened, and
    answers with a report. Nothing passes through the controller and nothing is written by the module on this server.
  - MariaDB - the dump of a move, C(mariadb-dump --single-transaction --routines --triggers --events
    --hex-blob --no-create-db DB) (C(mysqldump) where C(mariadb-dump) is missing), imported with
    C(mariadb --force --show-warnings) (and C(--sandbox) where the client has it) so that an error does
    not stop the import and every statement's warnings are seen. C(Note) lines are not counted.
  - PostgreSQL - C(pg_dump --no-owner --no-privileges --quote-all-identifiers DB) run as C(postgres)
    (the account's roles do not exist on the test server, so owners and grants are left out),
    imported with C(psql -X -q -v ON_ERROR_STOP=0 -f -) as C(postgres); C(ERROR) (C(FATAL)) and
    C(WARNING) messages are counted, with their C(DETAIL) and C(HINT) lines.
  - Errors in the import do not fail the module; they are the result. The module fails when a test
    could not be made at all (the key refused, ssh failing, no scratch database could be created).
  - Scratch databases left by a test that was killed are dropped by the next test on that server.
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
    support: full
    details: Changes nothing that lasts; every run tests again and reports no change.
options:
  databases:
    description:
      - The databases to test, in this order, each a dict with C(engine) (V(mariadb) or V(postgresql)),
        C(name) (1 to 63 lower-case letters, digits and C(_)) and optionally C(account), a label copied
        into the result.
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: Test-import alice's databases on the database test server
  hosting.migration.database_test:
    transfer_id: prepare-dedicated1
    peer: "{{ hostvars['dbtest1'].ansible_host }}"
    databases:
      - {engine: mariadb, name: alice_app, account: alice}
      - {engine: postgresql, name: alice_app, account: alice}
  register: database_test

- name: Print the results
  ansible.builtin.debug:
    msg: "{{ database_test | hosting.migration.database_test_table }}"
"""

RETURN = r"""
databases:
  description:
    - One entry per database, in order, with C(engine), C(name), C(account) (when given), C(bytes) (of
      the dump), C(elapsed_s), C(ok) (no error), C(error_count) and C(errors) (the first 20 messages,
      each at most 300 characters), C(warning_count) and C(warnings) (likewise), C(expected_warning_count)
      and C(expected_warnings) (warnings that the dump tool's own header and footer cause on the newer
      server whatever the data holds, such as MariaDB 11's about C(@@sql_notes) in a 10.11 dump; not in
      C(warning_count)), C(server_version) (of
      the test server's database server), C(scratch) (the scratch database's name), C(dropped),
      C(stale_dropped) (scratch databases of killed tests dropped before this one) and the C(dump) and
      C(test) command lines.
    - In check mode only the names and the command lines, C(bytes) and C(elapsed_s) null.
    - When the dump failed before the test server reported, C(errors) holds the dump's failure and
      C(scratch) and C(dropped) are null (the endpoint drops the scratch database when its input ends).
  returned: always
  type: list
  elements: dict
  sample: [{engine: mariadb, name: alice_app, account: alice, bytes: 2811904, elapsed_s: 0.913, ok: false,
            error_count: 1, errors: ["ERROR 1064 (42000) at line 52: You have an error in your SQL syntax..."],
            warning_count: 1, warnings: ["Warning (Code 1265): Data truncated for column 'b' at row 1"],
            expected_warning_count: 2, expected_warnings: ["Warning (Code 1287): '@@sql_notes' is deprecated..."],
            server_version: 11.8.3-MariaDB-0+deb13u1 from Debian, scratch: hmtest_3f9a0c2b71de, dropped: true,
            stale_dropped: [], dump: [mariadb-dump, "...", alice_app],
            test: [ssh, "...", root@10.77.0.40, hosting-restore-test mariadb alice_app]}]
tested:
  description: How many databases were tested.
  returned: when not in check mode
  type: int
  sample: 10
with_errors:
  description: How many databases had at least one error.
  returned: when not in check mode
  type: int
  sample: 1
with_warnings:
  description: How many databases had at least one warning.
  returned: when not in check mode
  type: int
  sample: 2
ok:
  description: True when no database had an error.
  returned: when not in check mode
  type: bool
  sample: false
bytes:
  description: Bytes of all the dumps.
  returned: always
  type: int
  sample: 5623808
elapsed_s:
  description: Seconds for all the tests.
  returned: always
  type: float
  sample: 1.734
peer:
  description: The test server's address, normalised.
  returned: always
  type: str
  sample: 10.77.0.40
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hosting.migration.plugins.module_utils.transfer import TransferError
from ansible_collections.hosting.migration.plugins.module_utils.transfer_test_import import (
    DATABASE_TEST_MODULE_KWARGS, run_database_test)


def main():
    module = AnsibleModule(**DATABASE_TEST_MODULE_KWARGS)
    try:
        module.exit_json(**run_database_test(module.params, check_mode=module.check_mode))
    except TransferError as error:
        module.fail_json(msg=str(error), **error.details)


if __name__ == "__main__":
    main()
