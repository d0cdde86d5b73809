#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r"""
module: server_reinstall
short_description: Reinstall a server at an infrastructure version and pin its new SSH host key
version_added: 0.1.0
description:
  - Reinstalls a server from scratch at infrastructure version O(version), learns the new
    system's SSH host key through a path that does not trust the network, replaces the server's
    lines in the controller's known_hosts file (O(known_hosts)) with it, and waits until a real
    SSH login with that key succeeds. C(docs/reinstall.md) in the collection describes it in full.
  - B(Everything on the server is lost.) Whether the server may be reinstalled at all (every
    account living and verified elsewhere, its service addresses rerouted) is for the playbook
    to decide before it calls this module; C(hosting.migration.reinstall_server) asks the ledger
    (operation C(check_reinstall)).
  - "Runs on the controller (C(delegate_to: localhost))."
  - "Driver C(lab): the lab's servers are podman containers on the controller's host. The
    container O(name) is removed (C(podman rm --force)) and run again from the image of the
    target version (O(image), default O(image_prefix)C(:)O(version)), with the same O(hostname),
    O(network), O(ipv4), O(ipv6), O(mac), O(labels) and O(capabilities), C(--systemd=always),
    C(--pull=never). The image must exist, else nothing is removed. Host forwarding is switched
    back off (netavark switches it on). The host key is read with C(podman exec NAME cat
    /etc/ssh/ssh_host_ed25519_key.pub) once the first boot made it, and the controller's key
    (O(authorized_key)) is added to root's C(authorized_keys) the same way."
  - "Driver C(command): runs O(command) with the arguments C(SERVER VERSION) (no shell), at most
    O(command_timeout_s) seconds. The new host key is taken from a line C(host-key: TYPE BASE64)
    of the script's output; without one, from C(ssh-keyscan) of O(address), accepted only if its
    fingerprint equals O(host_key_fingerprint). With neither, the module fails: a key that merely
    answers on the network is never trusted."
author: hosting.migration developers (!UNKNOWN)
extends_documentation_fragment:
  - hosting.migration.accounts.ATTRIBUTES
attributes:
  check_mode:
    support: full
    details: Checks the options (and, with the lab driver, that the image exists) and returns RV(plan); changes nothing.
  diff_mode:
    support: none
  idempotent:
    support: none
    details: Every run reinstalls. The playbook C(hosting.migration.reinstall_server) skips servers already at the version.
options:
  name:
    description: The server (the inventory hostname; with the lab driver, also the container's name).
    type: str
    required: true
  version:
    description: The infrastructure version to reinstall at (a version of the catalogue, for example C(2025)).
    type: str
    required: true
  driver:
    description: How the server is reinstalled.
    type: str
    choices: [lab, command]
    default: lab
  address:
    description:
      - Where SSH reaches the server after the reinstall (its management address, V(ansible_host)).
      - Default O(ipv4).
    type: str
  port:
    description: SSH port of the server.
    type: int
    default: 22
  known_hosts:
    description:
      - The controller's known_hosts file that pins the server's host key (in the lab
        V({{ lab_state_dir }}/ssh/known_hosts)). The lines of O(address), O(ipv6) and O(hostname)
        are replaced with the new key (one line for O(address) always, the others only where they
        had one); every other line is kept as it was. The file is replaced in one rename.
    type: path
    required: true
  private_key:
    description:
      - The controller's SSH private key for the server (V(ansible_ssh_private_key_file)).
      - With the lab driver and no O(authorized_key), the public key next to it (C(.pub)) is authorised.
    type: path
  ssh_args:
    description:
      - More arguments for C(ssh) (for example V(ansible_ssh_common_args)). Host key checking
        against O(known_hosts), batch mode and no connection sharing are always in force; a
        different value here for those options has no effect.
    type: str
    default: ""
  ssh_user:
    description: User of the SSH login that proves the server is back.
    type: str
    default: root
  timeout_s:
    description:
      - Seconds the server has, once the reinstall returned, to make its host key and answer
        over SSH with it.
    type: int
    default: 300
  image:
    description: The image to run (lab). Default O(image_prefix)C(:)O(version).
    type: str
  image_prefix:
    description: Images of the lab's versions are C(PREFIX:VERSION) (the lab role's C(lab_host_image_prefix)).
    type: str
    default: localhost/hosting-lab
  network:
    description: The podman network of the server (lab; C(lab_network.name)).
    type: str
  ipv4:
    description: The server's IPv4 address on O(network) (lab; V(ansible_host)).
    type: str
  ipv6:
    description: The server's IPv6 address on O(network) (lab; C(lab_ipv6)).
    type: str
  mac:
    description: The server's MAC address (lab; C(lab_mac)).
    type: str
  hostname:
    description: Host name inside the container (lab). Default O(name).
    type: str
  labels:
    description: Labels of the container (lab).
    type: dict
    default: {hosting.lab: server}
  capabilities:
    description: Capabilities added to the container (lab); IP moves need C(NET_ADMIN) and C(NET_RAW).
    type: list
    elements: str
    default: [NET_ADMIN, NET_RAW]
  stop_timeout_s:
    description: Seconds podman lets the old container stop before killing it (lab).
    type: int
    default: 10
  authorized_key:
    description: Public key authorised for root in the new server (lab). Default the C(.pub) of O(private_key).
    type: str
  command:
    description: The operator's reinstall script (command driver), run as C(COMMAND SERVER VERSION).
    type: path
  command_timeout_s:
    description: Seconds the script may run before it is stopped (with every process it started).
    type: int
    default: 3600
  host_key_fingerprint:
    description:
      - The new host key's fingerprint as C(ssh-keygen -lf) prints it (C(SHA256:...)), from the
        provider's console (command driver).
      - When the script prints a key, it must have this fingerprint; when it does not, the key
        C(ssh-keyscan) fetches is accepted only if it has this fingerprint.
    type: str
  resume:
    description:
      - The ledger says an earlier run started this reinstall and did not finish it (it was
        killed, or the server did not come back in time). When the server demonstrably runs the
        new system already, it is not reinstalled again; only its host key is learned and pinned
        and SSH waited for (RV(resumed)).
      - "Lab driver: the container runs from the target version's image. Command driver: the
        address answers with the key of O(host_key_fingerprint); without a fingerprint the
        script runs again."
    type: bool
    default: false
notes:
  - The lab driver needs root (rootful podman) on the controller.
  - A server that does not answer within O(timeout_s) fails the module; the reinstall itself is
    not undone (there is nothing to undo). Running again with O(resume=true) does not reinstall
    a server that came up with its new system meanwhile.
seealso:
  - module: hosting.migration.ledger
"""

EXAMPLES = r"""
- name: Reinstall dedicated1 at 2025 in the lab
  hosting.migration.server_reinstall:
    name: dedicated1
    version: "2025"
    driver: lab
    network: "{{ lab_network.name }}"
    ipv4: "{{ ansible_host }}"
    ipv6: "{{ lab_ipv6 }}"
    mac: "{{ lab_mac }}"
    known_hosts: "{{ lab_state_dir }}/ssh/known_hosts"
    private_key: "{{ ansible_ssh_private_key_file }}"
  delegate_to: localhost
  register: reinstalled

- name: Reinstall through the provider's API, the key's fingerprint read from its console
  hosting.migration.server_reinstall:
    name: web42
    version: "2025"
    driver: command
    command: /usr/local/bin/provider-reinstall
    command_timeout_s: 1800
    host_key_fingerprint: SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8
    address: "{{ ansible_host }}"
    known_hosts: ~/.ssh/known_hosts
    timeout_s: 900
  delegate_to: localhost
"""

RETURN = r"""
resumed:
  description: True when an interrupted run's reinstall had happened and was not done again (O(resume)).
  returned: success
  type: bool
host_key:
  description: The new host key (C(TYPE BASE64)), now in O(known_hosts). None in check mode.
  returned: always
  type: str
  sample: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINRMhn4/exDIDUsc09f2qFWLpvOLFGGLFeZ089kkBFor
fingerprint:
  description: Its SHA256 fingerprint. None in check mode.
  returned: always
  type: str
  sample: SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8
elapsed_s:
  description: Seconds from the start of the reinstall until SSH answered with the new key.
  returned: always
  type: float
  sample: 4.2
timings:
  description: Seconds of each part (C(recreate_s), C(host_key_s), C(ssh_s)).
  returned: success, not in check mode
  type: dict
  sample: {recreate_s: 1.9, host_key_s: 1.1, ssh_s: 1.2}
plan:
  description: What the module does (in check mode, would do), one sentence each.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hosting.migration.plugins.module_utils.server_reinstall import (
    SERVER_REINSTALL_ARGUMENT_SPEC, ReinstallError, reinstall)


def main():
    module = AnsibleModule(argument_spec=SERVER_REINSTALL_ARGUMENT_SPEC, supports_check_mode=True)
    try:
        result = reinstall(module.params, check_mode=module.check_mode)
    except ReinstallError as error:
        module.fail_json(msg=str(error), **error.details)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
