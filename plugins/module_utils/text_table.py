# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plain-text tables for the reports the playbooks print."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type


def table_lines(header, rows):
    """Aligned columns, a rule under the header; the last column is not padded (it may be long)."""
    widths = [max(len(row[i]) for row in [header] + rows) for i in range(len(header) - 1)]
    lines = [("  ".join(cell.ljust(width) for cell, width in zip(row[:-1], widths)) + "  " + row[-1]).rstrip()
             for row in [header] + rows]
    lines.insert(1, "-" * max(len(line) for line in lines))
    return lines
