# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r"""
name: dns_settled_at
short_description: When no resolver can still hold a server's DNS answers from before the migration changed them
version_added: 0.1.0
description:
  - From the ledger's events of a customer server (operation C(events), oldest first), the unix
    time from which every answer a resolver got before the current migration's DNS changes (its
    C(dns_changed) events since its last C(dns_restored)) has expired - each change's time plus
    its old TTL. 0 when there is none.
  - C(hosting.migration.reroute) waits until then before moving the addresses, so that a TTL
    lowered minutes ago (not days) is waited out too.
  - With O(naming), the time from which no resolver can still hold an answer that named one of
    these addresses, taken over every C(dns_changed) and C(dns_restored) event - the changes away
    from them (their old addresses among O(naming)), each one's time plus its old TTL.
    C(hosting.migration.release_transit) waits until then for the transit server's addresses
    before it wipes the server, so that no client still sent there by a cached answer finds it
    gone or, later, someone else's server.
author: hosting.migration developers (!UNKNOWN)
options:
  _input:
    description: Events as the ledger returns them (dicts with C(kind), C(at) and C(details)).
    type: list
    elements: dict
    required: true
  naming:
    description: Addresses; only the answers that named one of them count (see above).
    type: list
    elements: str
"""

EXAMPLES = r"""
- name: Seconds still to wait
  ansible.builtin.debug:
    msg: "{{ (server_events.events | hosting.migration.dns_settled_at) - now(utc=true).timestamp() }}"
"""

RETURN = r"""
_value:
  description: Unix time.
  type: float
"""

import datetime

from ansible.errors import AnsibleFilterError
from ansible_collections.hosting.migration.plugins.module_utils.dns_zone import DnsInputError, event_changes, migration_dns_events


def dns_settled_at(events, naming=None):
    """Unix time from which no resolver can still hold an answer from before the TTLs were
    lowered: for each change of the current migration, its time plus its old TTL (0 when none).
    With ``naming`` (addresses): for each change, ever, away from one of them."""
    if naming is not None and not isinstance(naming, (list, tuple)):
        raise AnsibleFilterError("dns_settled_at: naming is a list of addresses, not %s" % type(naming).__name__)
    try:
        # The current migration's changes; with naming, every change ever made (a restore does
        # not end the answers that named those addresses).
        found = migration_dns_events(events, since_restore=naming is None)
    except DnsInputError as error:
        raise AnsibleFilterError("dns_settled_at: %s" % error)
    if naming is not None:
        naming = set(str(address) for address in naming)
    settled = 0.0
    for event in found:
        try:
            moment = datetime.datetime.fromisoformat(str(event["at"]).replace("Z", "+00:00")).timestamp()
        except (KeyError, ValueError):
            raise AnsibleFilterError("dns_settled_at: an event without a valid time: %r" % (event,))
        for change in event_changes(event):
            if naming is not None and not naming.intersection(str(a) for a in change.get("old_addresses") or ()):
                continue
            settled = max(settled, moment + float(change.get("old_ttl") or 0))
    return settled


class FilterModule(object):
    def filters(self):
        return {"dns_settled_at": dns_settled_at}
