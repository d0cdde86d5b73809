# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r"""
name: time_window
short_description: A window of unix times around a time the ledger recorded
version_added: 0.1.0
description:
  - From a time as the ledger records it (ISO 8601, UTC), C([start, end]) in unix seconds, from
    O(before) seconds before it to O(after) seconds after it; for comparing with the prober's
    timeline (for example around a reroute event).
author: hosting.migration developers (!UNKNOWN)
options:
  _input:
    description: A time, ISO 8601 with a zone (C(2025-03-01T12:00:00.000000Z)).
    type: str
    required: true
  before:
    description: Seconds before the time.
    type: float
    default: 0
  after:
    description: Seconds after the time.
    type: float
    default: 0
"""

EXAMPLES = r"""
- name: Around each reroute
  ansible.builtin.debug:
    msg: "{{ reroutes.events | map(attribute='at') | map('hosting.migration.time_window', 30.0, 3.0) | list }}"
"""

RETURN = r"""
_value:
  description: Start and end, unix seconds.
  type: list
  elements: float
"""

import datetime

from ansible.errors import AnsibleFilterError


def time_window(at, before=0, after=0):
    try:
        moment = datetime.datetime.fromisoformat(str(at).replace("Z", "+00:00"))
    except ValueError:
        raise AnsibleFilterError("time_window: %r is not an ISO 8601 time" % (at,))
    if moment.tzinfo is None:
        raise AnsibleFilterError("time_window: %r has no time zone" % (at,))
    unix = moment.timestamp()
    return [unix - float(before), unix + float(after)]


class FilterModule(object):
    def filters(self):
        return {"time_window": time_window}
