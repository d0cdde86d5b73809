#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r"""
module: account_sync
short_description: Push a directory from this server to the transfer's target with rsync over SSH
version_added: 0.1.0
description:
  - Run on the source server of a transfer, after M(hosting.migration.transfer_key) on this server
    and M(hosting.migration.transfer_authorization) on the target (with C(rsync_to) O(target_path)).
  - Runs C(rsync -aHAXS --numeric-ids --delete --modify-window=-1 --info=stats2 SOURCE/ root@PEER:TARGET/)
    over ssh with the transfer's key and C(known_hosts) only (C(StrictHostKeyChecking=yes),
    C(BatchMode=yes), C(IdentitiesOnly=yes), no ssh_config) - hard links, ACLs, extended attributes,
    sparse files, numeric owners, modification times to the nanosecond. The data goes straight to the
    target; nothing passes through the controller.
  - Both sides need rsync 3.1.3 or later built with ACL and xattr support (Debian's are), and the
    target's file system must take the ACLs and extended attributes the source has.
  - Reports rsync's statistics and whether anything was created, changed or deleted; a failure
    names rsync's exit code with a sentence and its first messages.
author: hosting.migration developers (!UNKNOWN)
extends_documentation_fragment:
  - hosting.migration.transfer
  - hosting.migration.accounts.ATTRIBUTES
attributes:
  check_mode:
    support: full
    details: Runs rsync with C(--dry-run) (it connects to the target and compares, changes nothing).
  diff_mode:
    support: none
  idempotent:
    support: full
    details: A second run with nothing changed on the source transfers and deletes nothing.
options:
  source_path:
    description:
      - The directory to copy (its content), for example C(/home/alice).
    type: path
    required: true
  target_path:
    description:
      - The directory on the target that receives the content; it must be the C(rsync_to) of the
        transfer's authorisation. Default O(source_path).
    type: path
  delete:
    description:
      - Delete on the target what the source no longer has (inside O(target_path) only).
    type: bool
    default: true
  bandwidth_limit:
    description:
      - rsync's C(--bwlimit), in KiB per second, or with a C(K), C(M) or C(G) suffix (for example V(50M)).
    type: str
  ignore_vanished:
    description:
      - Treat rsync's exit code 24 (source files vanished during the copy, normal while the account is
        live) as success, with a warning. Leave it V(false) for the final sync of a frozen account.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Pre-copy alice's home while the account stays live
  hosting.migration.account_sync:
    transfer_id: move-12-alice
    peer: "{{ hostvars[migration_target].ansible_host }}"
    source_path: /home/alice
    ignore_vanished: true
    bandwidth_limit: 200M

- name: Final delta once alice is frozen
  hosting.migration.account_sync:
    transfer_id: move-12-alice
    peer: "{{ hostvars[migration_target].ansible_host }}"
    source_path: /home/alice
  register: final_sync
"""

RETURN = r"""
rc:
  description: rsync's exit code (0, or 24 with O(ignore_vanished=true)).
  returned: always
  type: int
  sample: 0
stats:
  description:
    - rsync's statistics as integers - C(files) (entries considered), C(created), C(deleted),
      C(transferred) (regular files sent), C(total_size), C(transferred_size), C(literal_data),
      C(matched_data), C(file_list_size), C(bytes_sent), C(bytes_received) (bytes are bytes).
  returned: always
  type: dict
  sample: {files: 23, created: 22, deleted: 0, transferred: 14, total_size: 4195300,
           transferred_size: 4195300, literal_data: 4195300, matched_data: 0, file_list_size: 612,
           bytes_sent: 4199120, bytes_received: 380}
changes:
  description: Entries created, changed (content or attributes) or deleted on the target, as itemised by rsync.
  returned: always
  type: int
  sample: 23
deleted:
  description: Entries deleted on the target.
  returned: always
  type: int
  sample: 0
elapsed_s:
  description: Seconds the rsync run took.
  returned: always
  type: float
  sample: 1.842
cmd:
  description: The rsync command line.
  returned: always
  type: list
  elements: str
source_path:
  description: The source directory, normalised.
  returned: always
  type: str
  sample: /home/alice
target_path:
  description: The target directory, normalised.
  returned: always
  type: str
  sample: /home/alice
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hosting.migration.plugins.module_utils.transfer import TransferError
from ansible_collections.hosting.migration.plugins.module_utils.transfer_rsync import (
    ACCOUNT_SYNC_MODULE_KWARGS, run_account_sync)


def main():
    module = AnsibleModule(**ACCOUNT_SYNC_MODULE_KWARGS)
    try:
        module.exit_json(**run_account_sync(module.params, check_mode=module.check_mode))
    except TransferError as error:
        module.fail_json(msg=str(error), **error.details)


if __name__ == "__main__":
    main()
