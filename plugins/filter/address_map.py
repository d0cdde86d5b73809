# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r"""
name: address_map
short_description: Map addresses to the first address of the same family on another server
version_added: 0.1.0
description:
  - For every address of the input, the first address of O(to) of the same family (IPv4 or
    IPv6). This is how DNS records move from the service addresses of one server to the own addresses of another.
  - An address whose family O(to) lacks is refused, naming it.
author: hosting.migration developers (!UNKNOWN)
options:
  _input:
    description: Addresses records point at now.
    type: list
    elements: str
    required: true
  to:
    description: Addresses of the server records should point at.
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: Records of alice's domains move to the transit server
  hosting.migration.dns_records:
    addresses: "{{ hostvars['dedicated1'].service_addresses | hosting.migration.address_map(hostvars['transit1'].server_addresses) }}"
"""

RETURN = r"""
_value:
  description: Old address to new address.
  type: dict
"""

import ipaddress

from ansible.errors import AnsibleFilterError


def address_map(addresses, to):
    try:
        targets = [ipaddress.ip_address(address) for address in to]
        mapping = {}
        for address in addresses:
            family = ipaddress.ip_address(address).version
            same = [target for target in targets if target.version == family]
            if not same:
                raise AnsibleFilterError("no IPv%d address among %s for %s" % (family, ", ".join(to), address))
            mapping[address] = str(same[0])
        return mapping
    except ValueError as error:
        raise AnsibleFilterError("address_map: %s" % error)


class FilterModule(object):

    def filters(self):
        return {"address_map": address_map}
