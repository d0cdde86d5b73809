#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r"""
module: account_plan_info
short_description: What moving hosting accounts to this server would change, what blocks it, how long each freeze is
version_added: 0.1.0
description:
  - Runs on the B(target) server of a migration. Takes the accounts of the source server, as
    M(hosting.migration.account_info) returns them there (with resources), and reports for each
    account its spec translated to the target infrastructure version, what changes (PHP, MariaDB,
    PostgreSQL, OS versions), what blocks the move, and the estimated freeze window.
  - Blockers come from the translation (a PHP version the target version neither offers nor maps
    to a newer one, a database server version that would go down), from the source (a database
    of the spec that does not exist there) and from this server (its infrastructure version is not
    O(target_version), an account of that name with a different UID or different data, a user or
    group of that name or with that UID or GID, a domain served by another account, a database of
    that name that belongs to no account of the same name, too little space for files and
    databases of all the accounts together).
  - An account that is already on this server with the same translated spec (a move being
    resumed) clashes with nothing.
  - Reads C(/etc/hosting/infrastructure-version), the account specs in O(spec_dir), the users and
    groups, the database names (C(mariadb) and C(psql) as the C(postgres) user, only for the
    engines the accounts use) and the free space of the filesystems holding the homes and the
    database data directories. Changes nothing on the server.
  - C(docs/preparation.md) in the collection explains each blocker and the freeze estimate.
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
  accounts:
    description:
      - The accounts to move, in the order they will move (free space is used up in that order).
      - The C(accounts) returned by M(hosting.migration.account_info) on the source server with
        O(hosting.migration.account_info#module:resources=true); each needs C(spec) and C(resources).
    type: list
    elements: dict
    required: true
  source_version:
    description:
      - The infrastructure version of the source server (C(infrastructure_version) returned by
        M(hosting.migration.account_info) there).
    type: str
    required: true
  target_version:
    description:
      - The infrastructure version the accounts move to. This server must run it.
      - Default is the newest version in O(catalogue).
    type: str
  catalogue:
    description:
      - The catalogue of infrastructure versions, the variable C(infrastructure_catalogue) of the
        role C(hosting.migration.catalogue).
    type: dict
    required: true
  freeze_rates:
    description:
      - Rates for the freeze estimate, overriding the defaults (the product's targets).
      - C(fixed_s) seconds per move (default 5), C(database_s_per_gb) seconds per GB (10^9 bytes)
        of database (default 10), C(files_s_per_10000) seconds per 10,000 files for the final
        delta sync (default 1).
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: The accounts of the customer's server
  hosting.migration.account_info:
  register: source_found

- name: What moving them to the transit server means
  hosting.migration.account_plan_info:
    accounts: "{{ source_found.accounts }}"
    source_version: "{{ source_found.infrastructure_version }}"
    target_version: "{{ migration_target_version | default(omit) }}"
    catalogue: "{{ infrastructure_catalogue }}"
  delegate_to: "{{ migration_target }}"
  register: plan

- name: Print the plan
  ansible.builtin.debug:
    msg: "{{ plan | hosting.migration.plan_table }}"

- name: Stop when something blocks
  ansible.builtin.assert:
    that: plan.ready
    fail_msg: "{{ plan.blockers | join('; ') }}"

- name: Freeze estimate with measured rates
  hosting.migration.account_plan_info:
    accounts: "{{ source_found.accounts }}"
    source_version: "2023"
    catalogue: "{{ infrastructure_catalogue }}"
    freeze_rates:
      database_s_per_gb: 26
  delegate_to: transit1
  register: plan_measured
"""

RETURN = r"""
source_version:
  description: The source's infrastructure version.
  returned: always
  type: str
  sample: "2023"
target_version:
  description: The infrastructure version the accounts were translated to.
  returned: always
  type: str
  sample: "2025"
ready:
  description: True when nothing blocks, on the target or for any account.
  returned: always
  type: bool
  sample: false
blockers:
  description: Every blocker as a sentence, those of the target first, then each account's.
  returned: always
  type: list
  elements: str
  sample:
    - "account bob: site main runs PHP 7.4, which infrastructure 2025 neither offers nor maps to a newer version"
target_blockers:
  description:
    - What blocks every move to this server, as sentences (also in RV(blockers)); the
      infrastructure version it records differs from RV(target_version), specs or database names
      or free space that could not be read.
  returned: always
  type: list
  elements: str
  sample: ["the target runs infrastructure 2023, not 2025: accounts translated for 2025 cannot run there"]
freeze_estimate_total_s:
  description: The estimated freezes of all the accounts added up, in seconds.
  returned: always
  type: float
  sample: 31.4
accounts:
  description: One entry per account of O(accounts), in that order.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Account name.
      type: str
      sample: alice
    translated_spec:
      description: The account's spec for the target version (each site's PHP version mapped), as a dict.
      type: dict
    changes:
      description:
        - What changes for the account; C(kind) is C(os), C(php), C(mariadb) or C(postgresql);
          C(what) is C(server), C(site <name>) or C(database <name>); C(from) and C(to) are
          versions; C(text) says it in a sentence.
      type: list
      elements: dict
      sample:
        - {kind: php, what: site main, from: "8.2", to: "8.4",
           text: "site main: PHP 8.2 becomes 8.4 (infrastructure 2025 does not offer 8.2)"}
        - {kind: mariadb, what: database alice_app, from: "10.11", to: "11.8",
           text: "database alice_app: MariaDB 10.11 becomes 11.8"}
    blockers:
      description: What blocks this account's move, each a sentence naming the account.
      type: list
      elements: str
      sample: ["account alice: domain alice.example is already served by account carol on the target"]
    resumed:
      description: The account is on this server already with the same translated spec (a move being resumed).
      type: bool
      sample: false
    freeze_estimate_s:
      description: Estimated freeze window of the account's move, in seconds.
      type: float
      sample: 5.0
    freeze_estimate_formula:
      description: How the estimate was computed, with the account's numbers.
      type: str
      sample: "5 s + 10 s/GB x 0.003 GB of databases + 1 s/10,000 files x 22 files = 5.0 s"
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hosting.migration.plugins.module_utils.account_inventory import SPEC_DIR_ARGUMENTS
from ansible_collections.hosting.migration.plugins.module_utils.move_plan import (
    PlanInputError, freeze_rates, parse_accounts, plan_moves, read_target_state)
from ansible_collections.hosting.migration.plugins.module_utils.spec_translate import (
    CatalogueError, newest_version, version_entry)

ARGUMENT_SPEC = dict(
    SPEC_DIR_ARGUMENTS,
    accounts=dict(type="list", elements="dict", required=True),
    source_version=dict(type="str", required=True),
    target_version=dict(type="str"),
    catalogue=dict(type="dict", required=True),
    freeze_rates=dict(type="dict", default={}),
)


def plan_on_this_server(module):
    """The module's result; bad input fails the module with a sentence before anything is read."""
    params = module.params
    try:
        target_version = params["target_version"] or newest_version(params["catalogue"])
        version_entry(params["catalogue"], params["source_version"], "source infrastructure")
        version_entry(params["catalogue"], target_version, "target infrastructure")
        rates = freeze_rates(params["freeze_rates"])
        accounts = parse_accounts(params["accounts"], min_uid=params["min_uid"])
    except (CatalogueError, PlanInputError) as error:
        module.fail_json(msg=str(error))

    def run(argv):
        # A missing command raises OSError, which read_target_state reports as a blocker.
        return module.run_command(argv, handle_exceptions=False)

    state = read_target_state([spec for spec, _resources in accounts], run,
                              spec_dir=params["spec_dir"], min_uid=params["min_uid"])
    try:
        return plan_moves(accounts, params["catalogue"], params["source_version"], target_version, state,
                          min_uid=params["min_uid"], rates=rates)
    except (CatalogueError, PlanInputError) as error:
        module.fail_json(msg=str(error))


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    module.exit_json(changed=False, **plan_on_this_server(module))


if __name__ == "__main__":
    main()
