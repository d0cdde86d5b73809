# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type


class ModuleDocFragment(object):

    # The options of the modules that copy through a transfer key made by transfer_key.
    DOCUMENTATION = r"""
options:
  transfer_id:
    description:
      - The transfer whose key is used (made by M(hosting.migration.transfer_key) on this server).
    type: str
    required: true
  peer:
    description:
      - The target's address, the same as given to M(hosting.migration.transfer_key).
    type: str
    required: true
  port:
    description:
      - The target's SSH port.
    type: int
    default: 22
"""
