#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r"""
module: transfer_authorization
short_description: Let one transfer key do a few named things on the target server, for a short time
version_added: 0.1.0
description:
  - Run on the target server of a transfer. With O(state=present), adds one line to
    C(/root/.ssh/authorized_keys) for the source's key made by M(hosting.migration.transfer_key) -
    C(from="<source>",restrict,expiry-time="<YYYYMMDDHHMM>Z",command="/usr/local/lib/hosting-migration/transfer-endpoint <transfer_id>")
    and the comment C(hosting-migration:<transfer_id>) - and writes what the key may do to
    C(/etc/hosting/transfers/<transfer_id>.json) (0600).
  - It installs the transfer endpoint (a Python 3 script, mode 0755) that sshd runs for every
    connection with the key. The endpoint runs only a command that matches an allowed operation
    exactly, without a shell, and refuses (and logs) everything else. C(docs/transfer.md) in the
    collection gives its grammar and the security model.
  - sshd stops accepting the key at its expiry time by itself (OpenSSH 8.2 or later; the time is
    UTC). A transfer that has started goes on after it; a new connection is refused.
  - With O(state=absent), removes the line (found by its comment; every other line and the file's
    owner and mode are kept, the file is replaced in one rename) and the JSON file. The endpoint
    stays, for other transfers.
  - Running it again with the same arguments changes nothing while more than half of O(valid_for_s)
    is left; after that it renews the expiry time.
author: hosting.migration developers (!UNKNOWN)
extends_documentation_fragment:
  - hosting.migration.accounts.ATTRIBUTES
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: The diff shows the transfer's authorized_keys line and its JSON file, before and after.
  idempotent:
    support: full
    details: Within the first half of O(valid_for_s); later a run renews the expiry time.
options:
  transfer_id:
    description:
      - Name of the transfer, the same as on the source (1 to 40 lower-case letters, digits and C(-)).
    type: str
    required: true
  state:
    description:
      - V(present) authorises the key, V(absent) removes the authorisation.
    type: str
    choices: [present, absent]
    default: present
  public_key:
    description:
      - The transfer's public key, RV(hosting.migration.transfer_key#module:public_key) (ed25519).
        Required with O(state=present).
    type: str
  source:
    description:
      - The IP address(es) the source server connects from (the key's C(from=)). Host names and
        networks are not accepted. Required with O(state=present).
    type: list
    elements: str
  allow:
    description:
      - What the key may do, a list of dicts with one key each; required (and not empty) with
        O(state=present).
      - Key C(rsync_to), a directory DIR - the source may push into DIR with rsync (rsync's server in
        receive mode, into exactly that directory, with the options of M(hosting.migration.account_sync)).
        DIR must be an absolute path at least two levels deep, not under C(/etc), C(/root), C(/usr),
        C(/var/lib) and other system trees, not reached through a symbolic link, and its parent must exist.
      - Key C(mariadb_restore), a database DB - the source may feed SQL to C(mariadb --database=DB) (run
        as root, with C(--sandbox) where the client has it, so that the SQL cannot run shell commands).
      - Key C(postgresql_restore), a database DB - the source may feed SQL to
        C(psql -X -q -v ON_ERROR_STOP=1 DB) run as the C(postgres) user.
      - Keys C(mariadb_test) and C(postgresql_test), a database DB - the source may test-import the dump
        of DB with M(hosting.migration.database_test) - the endpoint imports it into a new scratch
        database (never into DB or any other existing database), reports the errors and warnings, and
        drops the scratch database. For a database test server.
      - Database names are 1 to 63 lower-case letters, digits and C(_); system databases are refused.
    type: list
    elements: dict
  valid_for_s:
    description:
      - How long the key is accepted, in seconds (60 to 604800), rounded up to the next minute.
    type: int
    default: 3600
"""

EXAMPLES = r"""
- name: Let the source push alice's home and restore her databases, for an hour
  hosting.migration.transfer_authorization:
    transfer_id: move-12-alice
    public_key: "{{ transfer_key.public_key }}"
    source: ["{{ hostvars[migration_server].ansible_host }}"]
    allow:
      - rsync_to: /home/alice
      - mariadb_restore: alice_app
      - postgresql_restore: alice_app
  delegate_to: "{{ migration_target }}"

- name: Let the source test-import alice's databases on the database test server, for an hour
  hosting.migration.transfer_authorization:
    transfer_id: prepare-dedicated1
    public_key: "{{ transfer_key.public_key }}"
    source: ["{{ hostvars[migration_server].ansible_host }}"]
    allow:
      - mariadb_test: alice_app
      - postgresql_test: alice_app
  delegate_to: dbtest1

- name: Remove the authorisation once the move is done
  hosting.migration.transfer_authorization:
    transfer_id: move-12-alice
    state: absent
  delegate_to: "{{ migration_target }}"
"""

RETURN = r"""
transfer_id:
  description: The transfer's name.
  returned: always
  type: str
  sample: move-12-alice
authorized_keys:
  description: The authorized_keys file changed.
  returned: always
  type: str
  sample: /root/.ssh/authorized_keys
authorized_keys_line:
  description: The line the file holds for the transfer.
  returned: when O(state=present)
  type: str
  sample: >-
    from="10.77.0.20",restrict,expiry-time="202601011330Z",command="/usr/local/lib/hosting-migration/transfer-endpoint move-12-alice"
    ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH0Zb1lC9y4Cw2Qj0sFvYwqB7ZfM2n5kQk1r3uX2a7Tz hosting-migration:move-12-alice
expires:
  description: When sshd stops accepting the key (UTC, ISO 8601).
  returned: when O(state=present)
  type: str
  sample: "2026-01-01T13:30:00Z"
expiry_time:
  description: The same as written in the key's C(expiry-time) option.
  returned: when O(state=present)
  type: str
  sample: 202601011330Z
source:
  description: The addresses the key is accepted from, normalised.
  returned: when O(state=present)
  type: list
  elements: str
  sample: [10.77.0.20]
allow:
  description: The allowed operations, normalised (paths without a trailing slash, duplicates removed).
  returned: when O(state=present)
  type: list
  elements: dict
  sample: [{rsync_to: /home/alice}, {mariadb_restore: alice_app}]
config_path:
  description: The transfer's JSON file read by the endpoint.
  returned: always
  type: str
  sample: /etc/hosting/transfers/move-12-alice.json
endpoint_path:
  description: The endpoint script.
  returned: always
  type: str
  sample: /usr/local/lib/hosting-migration/transfer-endpoint
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hosting.migration.plugins.module_utils.transfer import TransferError
from ansible_collections.hosting.migration.plugins.module_utils.transfer_authorized import (
    TRANSFER_AUTHORIZATION_MODULE_KWARGS, run_transfer_authorization)


def main():
    module = AnsibleModule(**TRANSFER_AUTHORIZATION_MODULE_KWARGS)
    try:
        module.exit_json(**run_transfer_authorization(module.params, module.check_mode, module._diff))
    except TransferError as error:
        module.fail_json(msg=str(error), **error.details)


if __name__ == "__main__":
    main()
