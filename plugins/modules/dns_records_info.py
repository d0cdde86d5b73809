#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r"""
module: dns_records_info
short_description: The provider's DNS records that point at given addresses, and their TTLs
version_added: 0.1.0
description:
  - Reads every zone of O(zones) with a TSIG-signed zone transfer (AXFR) and returns its A and
    AAAA records that hold one of O(addresses), limited to O(names) when given, with their TTLs
    and the longest of them (how long resolvers may keep serving them after a change).
  - Changes nothing.
author: hosting.migration developers (!UNKNOWN)
extends_documentation_fragment:
  - hosting.migration.dns
  - hosting.migration.accounts.ATTRIBUTES
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  addresses:
    description: IPv4 and IPv6 addresses, for example a server's service addresses.
    type: list
    elements: str
    required: true
  names:
    description:
      - Only the records with these names (fully qualified, case does not matter), for example
        the domains of one account. All of them when empty.
    type: list
    elements: str
    default: []
seealso:
  - module: hosting.migration.dns_records
"""

EXAMPLES = r"""
- name: The records in the provider's DNS that point at the server
  hosting.migration.dns_records_info:
    zones: "{{ provider_dns_zones }}"
    key_secret: "{{ provider_dns_key_secret }}"
    addresses: "{{ service_addresses }}"
  delegate_to: localhost
  run_once: true
  register: dns_found

- name: Show them
  ansible.builtin.debug:
    msg: "{{ dns_found.records | length }} records, longest TTL {{ dns_found.max_ttl }} s"
"""

RETURN = r"""
records:
  description: The records holding one of O(addresses), sorted by zone, name and type.
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
    ttl:
      description: Its TTL in seconds.
      type: int
      sample: 300
    addresses:
      description: All its addresses (also the ones not in O(addresses)).
      type: list
      elements: str
      sample: [10.77.0.21, 192.0.2.9]
max_ttl:
  description: The longest TTL of RV(records) (0 when there is none).
  returned: always
  type: int
  sample: 300
zones:
  description: The zones read, with the SOA serial each had.
  returned: always
  type: list
  elements: dict
  sample: [{zone: hosted.test, server: 10.77.0.10, serial: 7}]
unmatched_names:
  description: The O(names) that have no record pointing at O(addresses).
  returned: always
  type: list
  elements: str
  sample: [alice.example]
"""

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib
from ansible_collections.hosting.migration.plugins.module_utils.dns_zone import (
    DNSPYTHON_IMPORT_ERROR, HAS_DNSPYTHON, DnsError, argument_spec, run_records_info)


def main():
    module = AnsibleModule(argument_spec=argument_spec("info", env_fallback), supports_check_mode=True)
    if not HAS_DNSPYTHON:
        module.fail_json(msg=missing_required_lib("dnspython"), exception=DNSPYTHON_IMPORT_ERROR)
    try:
        result = run_records_info(module.params)
    except DnsError as exc:
        module.fail_json(msg=str(exc), **exc.details())
    module.exit_json(**result)


if __name__ == "__main__":
    main()
