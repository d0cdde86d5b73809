# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r"""
name: freeze_window
short_description: The freeze window of a move as unix times
version_added: 0.1.0
description:
  - From a move recorded in the ledger, C([start, end]) of its freeze in unix seconds, widened by
    O(slack) seconds on both sides; for comparing with the prober's timeline.
author: hosting.migration developers (!UNKNOWN)
options:
  _input:
    description: A move as returned by M(hosting.migration.ledger).
    type: dict
    required: true
  slack:
    description: Seconds added before the start and after the end.
    type: float
    default: 0
"""

EXAMPLES = r"""
- name: When alice could fail
  ansible.builtin.debug:
    msg: "{{ recorded.moves | last | hosting.migration.freeze_window(1.0) }}"
"""

RETURN = r"""
_value:
  description: Start and end, unix seconds.
  type: list
  elements: float
"""

import datetime

from ansible.errors import AnsibleFilterError


def _unix(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def freeze_window(move, slack=0):
    started, ended = move.get("freeze_started_at"), move.get("freeze_ended_at")
    if not started or not ended:
        raise AnsibleFilterError("move %s of %s has no complete freeze window" % (move.get("id"), move.get("account")))
    return [_unix(started) - float(slack), _unix(ended) + float(slack)]


class FilterModule(object):

    def filters(self):
        return {"freeze_window": freeze_window}
