# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The accounts of one server: their specs, checked, and what they hold (for account_info)."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import traceback

from ansible_collections.hosting.migration.plugins.module_utils.account_resources import account_resources
from ansible_collections.hosting.migration.plugins.module_utils.account_spec import (
    DEFAULT_MIN_UID, SpecError, load_spec_dir)

VERSION_FILE = "/etc/hosting/infrastructure-version"

# The options of the doc fragment hosting.migration.accounts, shared by every module reading specs.
SPEC_DIR_ARGUMENTS = dict(
    spec_dir=dict(type="path", default="/etc/hosting/accounts"),
    min_uid=dict(type="int", default=DEFAULT_MIN_UID),
)

ACCOUNT_INFO_ARGUMENT_SPEC = dict(
    SPEC_DIR_ARGUMENTS,
    names=dict(type="list", elements="str", default=[]),
    resources=dict(type="bool", default=True),
)


class AccountNotFound(LookupError):
    pass


def select_accounts(specs, names):
    """The specs named, in the order given; all of them when no names are given."""
    if not names:
        return list(specs)
    by_name = {spec.name: spec for spec in specs}
    missing = [name for name in names if name not in by_name]
    if missing:
        raise AccountNotFound("no account named %s on this server (it has: %s)" % (
            ", ".join(repr(name) for name in missing), ", ".join(sorted(by_name)) or "none"))
    return [by_name[name] for name in names]


def infrastructure_version(path=VERSION_FILE):
    try:
        with open(path) as handle:
            return handle.read().strip()
    except OSError:
        return None


def selected_specs(module, names):
    """The checked specs of the accounts named (all when none are); fails the module with a plain
    sentence when the directory is missing, a spec breaks a rule or a name has no spec."""
    spec_dir = module.params["spec_dir"]
    if not os.path.isdir(spec_dir):
        module.fail_json(msg="The account spec directory %s does not exist on this server." % spec_dir)
    try:
        return select_accounts(load_spec_dir(spec_dir, min_uid=module.params["min_uid"]), names)
    except (SpecError, AccountNotFound) as error:
        module.fail_json(msg=str(error))


def read_accounts(module):
    """Everything account_info returns; fails the module with a plain sentence on bad input."""
    params = module.params
    specs = selected_specs(module, params["names"])

    def run(argv):
        rc, out, err = module.run_command(argv)
        if rc != 0:
            module.fail_json(msg="%s failed: %s" % (argv[0], err.strip() or out.strip()), rc=rc, cmd=argv)
        return out

    accounts = []
    for spec in specs:
        entry = {"name": spec.name, "spec": spec.to_dict()}
        if params["resources"]:
            try:
                entry["resources"] = account_resources(spec, run)
            except OSError as error:
                module.fail_json(msg="Could not measure account %s: %s" % (spec.name, error),
                                 exception=traceback.format_exc())
        accounts.append(entry)
    return {"infrastructure_version": infrastructure_version(), "accounts": accounts}
