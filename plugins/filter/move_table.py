# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r"""
name: move_table
short_description: Format moves recorded in the ledger as a readable table
version_added: 0.1.0
description:
  - One line per move (account, from, to, step, freeze window, bytes of files and databases),
    then a line with the totals and the longest freeze window.
author: hosting.migration developers (!UNKNOWN)
options:
  _input:
    description: Moves as returned by M(hosting.migration.ledger) (C(move) or C(moves) items).
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: Print the moves
  ansible.builtin.debug:
    msg: "{{ recorded.results | map(attribute='moves') | map('last') | hosting.migration.move_table }}"
"""

RETURN = r"""
_value:
  description: The table, lines separated by newlines.
  type: str
"""

from ansible_collections.hosting.migration.plugins.filter.account_table import human_bytes
from ansible_collections.hosting.migration.plugins.module_utils.text_table import table_lines


def _seconds(value):
    return "-" if value is None else "%.2f s" % value


def move_table(moves):
    header = ["account", "from", "to", "step", "freeze", "files", "databases"]
    rows = [[move["account"], move["source"], move["target"], move["step"], _seconds(move.get("freeze_window_s")),
             human_bytes(move.get("files_bytes") or 0), human_bytes(move.get("databases_bytes") or 0)]
            for move in moves if move]
    lines = table_lines(header, rows)
    freezes = [move["freeze_window_s"] for move in moves if move and move.get("freeze_window_s") is not None]
    lines.append("%d moves, longest freeze %s" % (len(rows), _seconds(max(freezes)) if freezes else "-"))
    return "\n".join(lines)


class FilterModule(object):

    def filters(self):
        return {"move_table": move_table}
