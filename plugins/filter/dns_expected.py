# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r"""
name: dns_expected
short_description: The DNS changes of a server's current migration, for the expect option of dns_records
version_added: 0.1.0
description:
  - From the ledger's events of a customer server (operation C(events), oldest first), the
    changes recorded by its C(dns_changed) events since its last C(dns_restored) event, in order,
    as C(hosting.migration.dns_records) takes them in O(hosting.migration.dns_records#module:expect).
  - A restore ends a migration; records changed after it (by the customer, between two
    migrations) are not held against the next migration.
author: hosting.migration developers (!UNKNOWN)
options:
  _input:
    description: Events as the ledger returns them (dicts with C(kind) and C(details)).
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: The records point at the transit server, unless someone changed them since the migration did
  hosting.migration.dns_records:
    zones: "{{ provider_dns_zones }}"
    addresses: "{{ {'10.77.0.21': '10.77.0.30'} }}"
    expect: "{{ server_events.events | hosting.migration.dns_expected }}"
"""

RETURN = r"""
_value:
  description: The changes, oldest first (dicts as RV(hosting.migration.dns_records#module:changes) returns them).
  type: list
  elements: dict
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.hosting.migration.plugins.module_utils.dns_zone import DnsInputError, event_changes, migration_dns_events


def dns_expected(events):
    try:
        return [change for event in migration_dns_events(events) for change in event_changes(event)]
    except DnsInputError as error:
        raise AnsibleFilterError("dns_expected: %s" % error)


class FilterModule(object):
    def filters(self):
        return {"dns_expected": dns_expected}
