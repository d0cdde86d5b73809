#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r"""
module: server_wipe
short_description: Wipe everything a customer had on a transit server, then check nothing is left
version_added: 0.1.0
description:
  - Run on a transit server when its lease ends, before it goes to the next customer. It removes
    every hosting account found on the server and every transfer credential, then scans the
    server again and fails, listing what it found, unless nothing of a customer is left.
    C(docs/transit.md) in the collection ("Wiping a transit server") describes it in full.
  - The accounts are those with a spec in O(spec_dir), every Unix user or group whose ID is at
    least O(min_uid) (and below 60000), and every name that a site C(account-<name>.conf), a
    PHP-FPM pool C(account-<name>.conf), a crontab, a state file, a mail spool or a directory in
    C(/home) still carries without belonging to a system user; so a wipe that was interrupted
    finds the rest of an account whose user it already removed.
  - For each account, in this order, it removes the nginx site (then runs C(nginx -t) and reloads
    nginx), the PHP-FPM pools of every PHP version (then reloads each installed PHP-FPM), the crontab and
    the suspended crontab, stops the account's processes (SIGTERM, then SIGKILL), removes its
    files in C(/tmp), C(/var/tmp), C(/dev/shm) and C(/var/lib/php/sessions), drops its MariaDB and
    PostgreSQL databases and then their users and roles (MariaDB roles with C(DROP ROLE), PostgreSQL
    roles after C(DROP OWNED BY); those of its spec and any whose name
    starts with the account's name, the spec's own rule), removes its mail spool, its home (with
    the Maildirs; C(/home/<name>), or C(/srv/<name>) when that is its home), its state file, the
    Unix user and group (C(userdel), C(groupdel)) and, last, its spec.
  - The account render writes no log file per account; nginx and PHP-FPM log to the server's
    shared logs (C(/var/log/nginx/access.log), C(error.log), C(/var/log/php*-fpm.log)), which hold
    the customer's visitors' requests - they are emptied in place (owner and mode kept) and their
    rotated copies removed. They are not part of the check, since the services write to them again
    at once.
  - Transfer credentials - everything in C(/root/.ssh/hosting-migration/), the lines of
    C(/root/.ssh/authorized_keys) whose comment starts with C(hosting-migration:) (every other
    line is kept byte for byte; the file is replaced in one rename, under the lock that
    M(hosting.migration.transfer_authorization) takes), C(/etc/hosting/transfers/*.json) - are
    removed, and the transfer log C(/var/log/hosting-migration-transfers.log) is emptied (its
    rotated copies removed). The endpoint script stays, for the next customer's transfers.
  - A step that fails does not stop the others; the module then fails naming each failure, and
    keeps the specs so the next run finds the accounts again.
  - The check lists, as sentences, users and groups with IDs of the account range, directories in
    C(/home) that are no system user's home (and C(lost+found) aside), directories in C(/srv)
    owned by the account range, specs, state files, nginx sites in C(/etc/nginx/sites-enabled)
    (Debian's C(default) aside; the provider's default server is in C(/etc/nginx/conf.d/)),
    PHP-FPM pools other than C(www.conf), crontabs and mail spools of names that are not system
    users, suspended crontabs, temporary files and processes of the account range, databases that
    are not system ones (MariaDB C(mysql), C(information_schema), C(performance_schema), C(sys);
    PostgreSQL C(postgres), C(template0), C(template1)), database users and roles other than the
    system ones (MariaDB C(root), C(mysql), C(mariadb.sys), C(PUBLIC), C(debian-sys-maint), anonymous;
    PostgreSQL C(postgres) and the C(pg_*) roles), transfer keys, authorisations and a non-empty
    transfer log. Anything there fails the module, even what the wipe would not remove by itself
    (a database whose name starts with no account's name, a site not named after an account), so
    that somebody looks at it.
  - "B(The server must be named:) O(confirm) must equal the server's own name, from
    C(/etc/hostname) or the kernel's host name (compared without case and a trailing dot). Set it
    to the inventory hostname of the transit server, never to a variable of the host the play
    runs on: a C(delegate_to) that points at the wrong server then fails before anything is read
    or changed. Whether the server may be wiped at all (a transit server, its lease ended, no
    account's only verified copy on it) is for the playbook to decide before it calls this module."
author: hosting.migration developers (!UNKNOWN)
extends_documentation_fragment:
  - hosting.migration.accounts
  - hosting.migration.accounts.ATTRIBUTES
attributes:
  check_mode:
    support: full
    details: As O(check_only=true).
  diff_mode:
    support: none
  idempotent:
    support: full
    details: A second run on a clean server removes nothing and reloads nothing.
options:
  confirm:
    description:
      - The name of the server to wipe, which must be this server's own name (C(/etc/hostname) or
        the kernel's host name). Usually V({{ inventory_hostname }}) of the transit server.
      - A mismatch fails the module before anything is read or changed.
    type: str
    required: true
  check_only:
    description:
      - Change nothing; RV(removed) says what a wipe would remove and RV(found) lists what is on the
        server now (empty on a clean server). The module does not fail because something is found.
    type: bool
    default: false
notes:
  - Runs as root (C(become)) on the transit server.
  - O(min_uid) below 1000 is refused. Every user with a UID from O(min_uid) to 59999 is treated as
    a customer's account and removed, with its home, processes and files.
  - Homes are removed only at C(/home/<name>) or C(/srv/<name>); never a mount point, never the
    home of a system user. Symbolic links are removed, not followed.
  - Databases are asked through the local socket as root (C(mariadb)) and as the C(postgres)
    system user (C(runuser -u postgres -- psql)); when a server is installed but does not answer,
    the module fails, since it could not prove the server clean. PostgreSQL databases are dropped
    C(WITH (FORCE)) (PostgreSQL 13 or later).
  - Without systemd, nginx is reloaded with C(nginx -s reload) and PHP-FPM is not reloaded.
  - Entries of the transfers in syslog (tag C(hosting-migration-transfer)) are left to the
    system's log rotation.
seealso:
  - module: hosting.migration.account_state
  - module: hosting.migration.transfer_authorization
  - module: hosting.migration.transfer_key
"""

EXAMPLES = r"""
- name: What a wipe of transit2 would remove, and what is there now
  hosting.migration.server_wipe:
    confirm: transit2
    check_only: true
  delegate_to: transit2
  become: true
  register: wipe_preview

- name: Wipe the transit server of the lease (fails listing anything left)
  hosting.migration.server_wipe:
    confirm: "{{ migration_transit }}"
  delegate_to: "{{ migration_transit }}"
  become: true
  register: wipe

- name: Show what went
  ansible.builtin.debug:
    msg: "{{ wipe.removed.accounts | map(attribute='name') | list }}"
"""

RETURN = r"""
removed:
  description:
    - What was removed (with O(check_only) or in check mode, what would be).
  returned: always
  type: dict
  contains:
    accounts:
      description: One entry per account found, sorted by name.
      type: list
      elements: dict
      contains:
        name:
          description: The account's name.
          type: str
          sample: alice
        removed:
          description: What of the account was removed, in the order it went.
          type: list
          elements: str
          sample: ["nginx site /etc/nginx/sites-enabled/account-alice.conf",
                   "PHP-FPM pool /etc/php/8.4/fpm/pool.d/account-alice.conf",
                   "crontab /var/spool/cron/crontabs/alice", "process 4242 (php-fpm8.4)",
                   "MariaDB database alice_app", "PostgreSQL database alice_app",
                   "MariaDB user 'alice_app'@'localhost'", "PostgreSQL role alice_app",
                   "home /home/alice", "state file /etc/hosting/account-states/alice",
                   "Unix user alice (UID 10001)", "Unix group alice (GID 10001)",
                   "account spec /etc/hosting/accounts/alice.yml"]
    transfer_credentials:
      description: Transfer keys, authorisations and the transfer log.
      type: list
      elements: str
      sample: ["transfer key /root/.ssh/hosting-migration/move-12-alice",
               "transfer authorization hosting-migration:move-12-alice in /root/.ssh/authorized_keys",
               "transfer authorization /etc/hosting/transfers/move-12-alice.json",
               "transfer log /var/log/hosting-migration-transfers.log (2048 bytes emptied)"]
    other:
      description: Processes and temporary files of account-range UIDs that belong to no account found.
      type: list
      elements: str
      sample: ["temporary file /tmp/upload.bin (owner UID 10077)"]
reloaded:
  description: The services reloaded after the sites and pools went (nginx after C(nginx -t), each PHP-FPM).
  returned: always
  type: list
  elements: str
  sample: [nginx, php8.4-fpm]
found:
  description:
    - What the check found on the server after the wipe, one sentence each; empty when the server
      is clean. With O(check_only) or in check mode, what is on the server now.
    - Outside O(check_only), anything here fails the module.
  returned: always
  type: list
  elements: str
  sample: ["MariaDB database legacy_shop is still there."]
errors:
  description: The steps that failed, one sentence each (they fail the module).
  returned: always
  type: list
  elements: str
  sample: []
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hosting.migration.plugins.module_utils.server_wipe import (
    SERVER_WIPE_ARGUMENT_SPEC, run_server_wipe)


def main():
    module = AnsibleModule(argument_spec=SERVER_WIPE_ARGUMENT_SPEC, supports_check_mode=True)
    module.exit_json(**run_server_wipe(module))


if __name__ == "__main__":
    main()
