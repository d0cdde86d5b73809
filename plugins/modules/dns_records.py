#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r"""
module: dns_records
short_description: Move the provider's DNS records of a server to other addresses, change their TTL, restore them
version_added: 0.1.0
description:
  - Finds every A and AAAA record in O(zones) that points at one of the old addresses of
    O(addresses) (a TSIG-signed zone transfer per zone), limited to O(names) when given, and
    points it at the new address and/or gives it the TTL O(ttl). Addresses of a record that are
    not in O(addresses) are kept.
  - With O(restore), undoes changes returned earlier by this module (in the order they were
    made, for example a TTL lowering and then a move); every record goes back to its addresses
    and TTL from before the first of them.
  - Each zone's change is one atomic RFC 2136 update whose prerequisites require every record
    touched to still hold exactly the addresses read. If one changed behind our back, the name
    server applies nothing of that zone and the module fails naming the record. Zones are
    updated one after the other; on a failure, RV(changes) lists what earlier zones did.
  - Records already pointing at the new addresses with the requested TTL are left alone; when
    nothing is left to change nothing is sent and C(changed) is false.
  - Keep RV(changes) (for example in the state store) to restore later; a second run returns no
    changes. Running in check mode first gives the plan before anything is sent.
author: hosting.migration developers (!UNKNOWN)
extends_documentation_fragment:
  - hosting.migration.dns
  - hosting.migration.accounts.ATTRIBUTES
attributes:
  check_mode:
    support: full
    details: Reads the zones and returns the changes it would make; sends no update.
  diff_mode:
    support: full
    details: One diff per record, before and after, in zone file lines.
  idempotent:
    support: full
options:
  addresses:
    description:
      - The addresses whose records are changed, mapped to the address each is replaced with
        (an IPv4 address to an IPv4 address, an IPv6 address to an IPv6 address).
      - An address mapped to itself (or to nothing) is kept; map every address to itself to only
        change the TTL.
      - Required unless O(restore) is given.
    type: dict
  ttl:
    description:
      - The TTL, in seconds, that the changed records get. Their TTL is kept when not given.
    type: int
  names:
    description:
      - Change only the records with these names (fully qualified, case does not matter), for
        example the domains of one account. All the records pointing at the addresses when empty.
      - With O(restore), restore only the records with these names.
    type: list
    elements: str
    default: []
  restore:
    description:
      - Changes returned earlier by this module (RV(changes)), in the order they were made; each
        record is brought back to its O(restore[].old_addresses) and O(restore[].old_ttl) from
        before the first of them.
      - A record that is neither in its original state nor in one this module put it in fails the
        module, naming it, before anything is sent.
    type: list
    elements: dict
    suboptions:
      name:
        description: The record's name.
        type: str
        required: true
      type:
        description: The record's type.
        type: str
        required: true
        choices: [A, AAAA]
        aliases: [rtype]
      zone:
        description: The zone it is in; found from O(zones) when not given.
        type: str
      old_ttl:
        description: Its TTL before the change.
        type: int
        required: true
      old_addresses:
        description: Its addresses before the change.
        type: list
        elements: str
        required: true
      new_ttl:
        description: Its TTL after the change.
        type: int
        required: true
      new_addresses:
        description: Its addresses after the change.
        type: list
        elements: str
        required: true
  expect:
    description:
      - Changes made earlier to these records (RV(changes) of earlier runs, in the order they were
        made; not with O(restore)). A record about to be changed that one of them touched must
        still be as the last of them left it (its O(expect[].new_addresses) and
        O(expect[].new_ttl)); otherwise someone changed it between two steps of the migration,
        and the module fails naming it, before anything is sent.
      - The migration's playbooks give the ledger's C(dns_changed) events of the server.
    type: list
    elements: dict
    suboptions:
      name:
        description: The record's name.
        type: str
        required: true
      type:
        description: The record's type.
        type: str
        required: true
        choices: [A, AAAA]
        aliases: [rtype]
      zone:
        description: The zone it is in; found from O(zones) when not given.
        type: str
      old_ttl:
        description: Its TTL before the change.
        type: int
        required: true
      old_addresses:
        description: Its addresses before the change.
        type: list
        elements: str
        required: true
      new_ttl:
        description: Its TTL after the change.
        type: int
        required: true
      new_addresses:
        description: Its addresses after the change.
        type: list
        elements: str
        required: true
seealso:
  - module: hosting.migration.dns_records_info
"""

EXAMPLES = r"""
# Days ahead of the cut-over: lower the TTL of every record pointing at the server.
- name: Lower the TTL of the server's records
  hosting.migration.dns_records:
    zones: "{{ provider_dns_zones }}"
    key_secret: "{{ provider_dns_key_secret }}"
    addresses: "{{ dict(service_addresses | zip(service_addresses)) }}"
    ttl: 60
  delegate_to: localhost
  run_once: true
  register: dns_lowered

- name: Wait out the old TTL, so that no resolver holds the long one any more
  ansible.builtin.pause:
    seconds: "{{ dns_lowered.wait_seconds }}"
  when: dns_lowered.changed

# Before the reroute: point the records at the transit server's own addresses.
- name: Move the records to the transit server
  hosting.migration.dns_records:
    zones: "{{ provider_dns_zones }}"
    key_secret: "{{ provider_dns_key_secret }}"
    addresses:
      10.77.0.21: 10.77.0.30
      10.77.0.22: 10.77.0.30
      "fd77:7::21": "fd77:7::30"
  delegate_to: localhost
  run_once: true
  register: dns_moved

# One account's domains only (after moving that account).
- name: Move alice's domains to the transit server
  hosting.migration.dns_records:
    zones: "{{ provider_dns_zones }}"
    addresses: {10.77.0.21: 10.77.0.30, "fd77:7::21": "fd77:7::30"}
    names: [alice.hosted.test, www.alice.hosted.test]
  environment:
    HOSTING_DNS_KEY_SECRET: "{{ provider_dns_key_secret }}"
  delegate_to: localhost

# After the move back: addresses and TTLs as they were.
- name: Restore the records
  hosting.migration.dns_records:
    zones: "{{ provider_dns_zones }}"
    key_secret: "{{ provider_dns_key_secret }}"
    restore: "{{ dns_lowered.changes + dns_moved.changes }}"
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
changes:
  description:
    - One entry per record changed (or that would be changed, in check mode), with its state
      before and after; give them to O(restore) to undo them.
    - When the module fails in a later zone, the changes made in the zones before it.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The record's name, fully qualified, lower case, without the final dot.
      type: str
      sample: www.alice.hosted.test
    type:
      description: C(A) or C(AAAA).
      type: str
      sample: A
    zone:
      description: The zone it is in.
      type: str
      sample: hosted.test
    old_ttl:
      description: TTL before.
      type: int
      sample: 300
    old_addresses:
      description: Addresses before.
      type: list
      elements: str
      sample: [10.77.0.21, 192.0.2.9]
    new_ttl:
      description: TTL after.
      type: int
      sample: 60
    new_addresses:
      description: Addresses after; the ones not in O(addresses) are kept.
      type: list
      elements: str
      sample: [10.77.0.30, 192.0.2.9]
zones:
  description: One entry per zone that had changes, with whether its update was sent and the answer.
  returned: always
  type: list
  elements: dict
  sample: [{zone: hosted.test, server: 10.77.0.10, records: 3, sent: true, rcode: NOERROR}]
wait_seconds:
  description:
    - The longest TTL the changed records had before the change (0 when nothing changed);
      resolvers may serve the old data for that long.
  returned: success
  type: int
  sample: 300
records:
  description: On a refused update, the records that changed behind our back (C(name type)).
  returned: failure
  type: list
  elements: str
  sample: [www.alice.hosted.test A]
"""

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib
from ansible_collections.hosting.migration.plugins.module_utils.dns_zone import (
    DNSPYTHON_IMPORT_ERROR, HAS_DNSPYTHON, RECORDS_MODULE_KWARGS, DnsError, argument_spec, run_records)


def main():
    module = AnsibleModule(argument_spec=argument_spec("records", env_fallback), **RECORDS_MODULE_KWARGS)
    if not HAS_DNSPYTHON:
        module.fail_json(msg=missing_required_lib("dnspython"), exception=DNSPYTHON_IMPORT_ERROR)
    try:
        result = run_records(module.params, check_mode=module.check_mode, diff=module._diff)
    except DnsError as exc:
        module.fail_json(msg=str(exc), **exc.details())
    module.exit_json(**result)


if __name__ == "__main__":
    main()
