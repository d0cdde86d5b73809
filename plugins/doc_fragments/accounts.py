# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type


class ModuleDocFragment(object):

    DOCUMENTATION = r"""
options:
  spec_dir:
    description:
      - Directory of the account specs on the server, one C(<name>.yml) per account.
      - The format is documented in the collection's C(docs/account-spec.md).
    type: path
    default: /etc/hosting/accounts
  min_uid:
    description:
      - Lowest UID and GID an account may have; lower ones belong to the system.
    type: int
    default: 10000
"""

    ATTRIBUTES = r"""
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
  idempotent:
    description:
      - When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
"""
