#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r"""
module: transfer_key
short_description: The source server's SSH key pair for one server-to-server transfer
version_added: 0.1.0
description:
  - Run on the source server of a transfer. With O(state=present), makes an ed25519 key pair (with
    C(ssh-keygen), no passphrase) in C(/root/.ssh/hosting-migration/<transfer_id>/) (directory 0700,
    private key 0600) and a C(known_hosts) file there that holds only the target's host key for its
    address, and returns the public key to authorise on the target with
    M(hosting.migration.transfer_authorization).
  - The private key never leaves the source server. M(hosting.migration.account_sync),
    M(hosting.migration.database_copy) and M(hosting.migration.database_test) use it with that C(known_hosts) file and
    C(StrictHostKeyChecking=yes), ignoring every other SSH configuration.
  - With O(state=absent), removes the directory and everything in it.
  - An existing key is kept (modes fixed, a lost public half rebuilt); a changed O(peer_host_key) or
    O(peer) rewrites C(known_hosts). C(docs/transfer.md) in the collection describes the security model.
author: hosting.migration developers (!UNKNOWN)
extends_documentation_fragment:
  - hosting.migration.accounts.ATTRIBUTES
attributes:
  check_mode:
    support: full
    details: In check mode a key that does not exist yet is not made, so RV(public_key) is null.
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  transfer_id:
    description:
      - Name of the transfer, 1 to 40 lower-case letters, digits and C(-), starting with a letter or
        digit; the same on both servers.
    type: str
    required: true
  state:
    description:
      - V(present) makes the key pair and the C(known_hosts) file, V(absent) removes them.
    type: str
    choices: [present, absent]
    default: present
  peer:
    description:
      - The target server's address (IP address or host name) exactly as the transfer modules will
        connect to it. Required with O(state=present).
    type: str
  peer_host_key:
    description:
      - The target's SSH host public key, a line of C(/etc/ssh/ssh_host_ed25519_key.pub) (type and
        base64 data; a comment is ignored), read through a connection the controller trusts.
      - Required with O(state=present).
    type: str
  port:
    description:
      - The target's SSH port.
    type: int
    default: 22
"""

EXAMPLES = r"""
- name: Read the target's host key through the controller's own connection
  ansible.builtin.slurp:
    src: /etc/ssh/ssh_host_ed25519_key.pub
  delegate_to: "{{ migration_target }}"
  register: target_host_key

- name: Key pair for moving alice, on the source
  hosting.migration.transfer_key:
    transfer_id: move-12-alice
    peer: "{{ hostvars[migration_target].ansible_host }}"
    peer_host_key: "{{ target_host_key.content | b64decode }}"
  register: transfer_key

- name: Remove it once the move is done
  hosting.migration.transfer_key:
    transfer_id: move-12-alice
    state: absent
"""

RETURN = r"""
transfer_id:
  description: The transfer's name.
  returned: always
  type: str
  sample: move-12-alice
public_key:
  description:
    - The public key (C(ssh-ed25519 <data> hosting-migration:<transfer_id>)), to pass to
      M(hosting.migration.transfer_authorization); null with O(state=absent) and in check mode
      before the key exists.
  returned: always
  type: str
  sample: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH0Zb1lC9y4Cw2Qj0sFvYwqB7ZfM2n5kQk1r3uX2a7Tz hosting-migration:move-12-alice
directory:
  description: The directory holding the key pair and C(known_hosts).
  returned: always
  type: str
  sample: /root/.ssh/hosting-migration/move-12-alice
key_path:
  description: The private key.
  returned: always
  type: str
  sample: /root/.ssh/hosting-migration/move-12-alice/id_ed25519
public_key_path:
  description: The public key file.
  returned: always
  type: str
  sample: /root/.ssh/hosting-migration/move-12-alice/id_ed25519.pub
known_hosts_path:
  description: The C(known_hosts) file that holds only the peer's host key.
  returned: always
  type: str
  sample: /root/.ssh/hosting-migration/move-12-alice/known_hosts
known_hosts:
  description: The line written to C(known_hosts).
  returned: when O(state=present)
  type: str
  sample: 10.77.0.30 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIF2nqDk3mV1w8bq9n0nq5jH2xq6c9Zx3o1c4d7eL0aBc
ssh_command:
  description: The ssh command line the transfer modules use (for a manual check from the source).
  returned: when O(state=present)
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hosting.migration.plugins.module_utils.transfer import TransferError
from ansible_collections.hosting.migration.plugins.module_utils.transfer_keys import (
    TRANSFER_KEY_MODULE_KWARGS, run_transfer_key)


def main():
    module = AnsibleModule(**TRANSFER_KEY_MODULE_KWARGS)
    try:
        module.exit_json(**run_transfer_key(module.params, check_mode=module.check_mode))
    except TransferError as error:
        module.fail_json(msg=str(error), **error.details)


if __name__ == "__main__":
    main()
