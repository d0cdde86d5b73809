#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r"""
module: account_info
short_description: Read the hosting accounts of a server and what each of them holds
version_added: 0.1.0
description:
  - Reads and checks every account spec in O(spec_dir) (or the ones named in O(names)), and
    reports for each account its normalised spec and, with O(resources=true), its resources
    files under its home (count and bytes), databases (engine, name, size), cron entries,
    mailboxes, domains and PHP versions.
  - A spec that breaks a rule fails the module with the file and the field named, before
    anything else is read.
  - Changes nothing on the server.
author: hosting.migration developers (!UNKNOWN)
extends_documentation_fragment:
  - hosting.migration.accounts
  - hosting.migration.accounts.ATTRIBUTES
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  names:
    description:
      - Accounts to read; all of them when empty.
      - Naming an account that has no spec fails, listing the accounts the server has.
    type: list
    elements: str
    default: []
  resources:
    description:
      - Also measure what each account holds (walks the homes, asks the database servers).
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Every account of the server, with sizes
  hosting.migration.account_info:
  register: found

- name: One account's spec only
  hosting.migration.account_info:
    names: [alice]
    resources: false
"""

RETURN = r"""
infrastructure_version:
  description: The infrastructure version the server records in C(/etc/hosting/infrastructure-version).
  returned: always
  type: str
  sample: "2023"
accounts:
  description: One entry per account, sorted by name.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Account name.
      type: str
      sample: alice
    spec:
      description: The normalised spec (defaults filled in), as documented in C(docs/account-spec.md).
      type: dict
    resources:
      description:
        - What the account holds; returned with O(resources=true).
        - C(files) and C(bytes) count entries and bytes under the home, hard links once;
          C(databases) lists C(engine), C(name), C(bytes) and C(exists) per database.
      type: dict
      returned: when O(resources=true)
      sample:
        files: 22
        bytes: 4195300
        databases: [{engine: mariadb, name: alice_app, bytes: 2637824, exists: true}]
        database_bytes: 2637824
        cron_entries: 1
        mailboxes: 1
        domains: [alice.example, alice.hosted.test]
        php: ["8.2"]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hosting.migration.plugins.module_utils.account_inventory import (
    ACCOUNT_INFO_ARGUMENT_SPEC, read_accounts)


def main():
    module = AnsibleModule(argument_spec=ACCOUNT_INFO_ARGUMENT_SPEC, supports_check_mode=True)
    result = read_accounts(module)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
