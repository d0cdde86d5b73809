#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r"""
module: account_state
short_description: Decide how a server serves hosting accounts during a move
version_added: 0.1.0
description:
  - Puts the accounts named in O(names) in one state on the server, from their specs in
    O(spec_dir), and records the state in C(/etc/hosting/account-states/<name>) so it can be read
    back. The states are described in the collection's C(docs/account-states.md).
  - V(active) serves the account's sites with nginx (listen 80 and C([::]:80), the site's
    domains, its document root, PHP through C(/run/php/account-<name>.sock)) and installs its
    crontab at C(/var/spool/cron/crontabs/<name>).
  - V(frozen) answers every domain of the account with HTTP 503 and a short maintenance page
    (header C(Retry-After) 30, C(Cache-Control) no-store), suspends its crontab (moved to
    C(/var/spool/cron/hosting-suspended/<name>)) and stops its processes, PHP-FPM workers included
    (SIGTERM, SIGKILL after 0.25 s). The PHP-FPM pool file stays.
  - V(forwarded) proxies every domain of the account to O(forward_to) on port 80, keeping the
    C(Host) header, so domains that do not use the provider's DNS keep working through this
    server's addresses; crontab suspended, processes stopped.
  - V(inactive) removes the account's nginx server blocks (the server's default server answers
    404), suspends its crontab and stops its processes. Files, databases and mail are never
    touched.
  - Files are written atomically (temporary file and rename) and only when their content,
    owner or mode differ. When a server block changes, C(nginx -t) runs before nginx is
    reloaded, once per run; when the test fails the previous files are put back and the module
    fails with nginx's message, having changed nothing.
  - Bad input (an unknown account, a bad spec, O(forward_to) missing or not an address, an
    address of this server) fails the module before anything is changed.
author: hosting.migration developers (!UNKNOWN)
extends_documentation_fragment:
  - hosting.migration.accounts
  - hosting.migration.accounts.ATTRIBUTES
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  idempotent:
    support: full
    details:
      - A second run in the same state reports a change only when processes of the account were
        started again in between and had to be stopped.
options:
  names:
    description:
      - The accounts to put in O(state), each with a spec in O(spec_dir).
      - At least one; naming an account that has no spec fails, listing the accounts the server has.
    type: list
    elements: str
    required: true
  state:
    description:
      - How the server serves the accounts.
    type: str
    required: true
    choices: [active, frozen, forwarded, inactive]
  forward_to:
    description:
      - IPv4 or IPv6 address (without brackets) of the server that now serves the accounts;
        required with O(state=forwarded) and refused with any other state.
      - Must not be an address of this server, a loopback, link-local, multicast or unspecified
        address.
    type: str
  keep_recorded:
    description:
      - Accounts that already have a recorded state keep it (its files are brought back in line
        with it); only accounts without one get O(state).
      - For laying accounts down again (the lab, a repaired server) without serving a copy that
        a move made inactive or forwarding.
    type: bool
    default: false
notes:
  - Runs as root on the server; the accounts' Unix users must exist (the
    P(hosting.migration.account#role) role creates them).
  - Debian's cron rereads its spool at the start of every minute, before it runs that minute's
    jobs, when the spool directory's modification time changed; a suspended crontab runs no
    more jobs from the next minute on, and jobs already running are stopped with the other
    processes.
seealso:
  - module: hosting.migration.account_info
"""

EXAMPLES = r"""
- name: Freeze an account for the final copy
  hosting.migration.account_state:
    names: [alice]
    state: frozen

- name: Serve it from the target from now on
  hosting.migration.account_state:
    names: [alice]
    state: active
  delegate_to: transit1

- name: Forward its domains from the source to the target
  hosting.migration.account_state:
    names: [alice]
    state: forwarded
    forward_to: 2001:db8:77::21

- name: Lay it down without serving it
  hosting.migration.account_state:
    names: [alice, bob]
    state: inactive
"""

RETURN = r"""
accounts:
  description: One entry per account, in the order of O(names).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Account name.
      type: str
      sample: alice
    state:
      description: The state the account is in now (in check mode, would be in).
      type: str
      sample: forwarded
    forward_to:
      description: The address the account is forwarded to; null unless O(state=forwarded).
      type: str
      sample: 2001:db8:77::21
    previous_state:
      description:
        - The state recorded before this run; null when none was recorded (an account laid
          down before states existed is served as in V(active)).
      type: str
      sample: frozen
    previous_forward_to:
      description: The address recorded before this run, when it was V(forwarded).
      type: str
      sample: null
    changed:
      description: Whether a file of the account changed or one of its processes was stopped.
      type: bool
    changes:
      description: The file changes, one sentence each (write, move, remove, owner and mode).
      type: list
      elements: str
      sample: ["write /etc/nginx/sites-enabled/account-alice.conf",
               "move /var/spool/cron/crontabs/alice to /var/spool/cron/hosting-suspended/alice",
               "write /etc/hosting/account-states/alice"]
    stopped_processes:
      description: The processes of the account that were stopped (in check mode, would be).
      type: list
      elements: dict
      sample: [{pid: 4242, name: php-fpm8.2}]
nginx_reloaded:
  description:
    - Whether nginx was tested and reloaded (in check mode, would be).
    - It is when a server block changed, or a recorded state changed (a previous run may have
      stopped between writing its files and reloading).
  returned: always
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hosting.migration.plugins.module_utils.account_render import (
    ACCOUNT_STATE_ARGUMENT_SPEC, run_account_state)


def main():
    module = AnsibleModule(argument_spec=ACCOUNT_STATE_ARGUMENT_SPEC, supports_check_mode=True,
                           required_if=[("state", "forwarded", ("forward_to",))])
    result = run_account_state(module)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
