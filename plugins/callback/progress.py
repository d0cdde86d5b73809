# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r"""
name: progress
type: aggregate
short_description: Progress of a migration - the phase, the account (i of N), bytes copied, time left
version_added: 0.1.0
description:
  - Adds a few lines to the normal output, readable in AWX's job output - one per phase (play),
    one when an account's move starts (its number of all the accounts to move, the time elapsed in
    the phase and an estimate of the time left, from the mean duration of the moves done so far)
    and one when it is done (how long it took, its freeze window, the bytes copied).
  - Enable it with C(callbacks_enabled = hosting.migration.progress) in C(ansible.cfg) or
    E(ANSIBLE_CALLBACKS_ENABLED=hosting.migration.progress); it works next to any stdout callback,
    and says nothing when the stdout callback writes JSON (its output must stay parseable).
author: hosting.migration developers (!UNKNOWN)
requirements:
  - enable in configuration
"""

from ansible import constants as C
from ansible.plugins.callback import CallbackBase

from ansible_collections.hosting.migration.plugins.module_utils.progress_tracker import ProgressTracker


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "hosting.migration.progress"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super(CallbackModule, self).__init__(*args, **kwargs)
        self._tracker = ProgressTracker()
        # A machine-readable stdout (the json callbacks) must stay parseable: say nothing then.
        self._quiet = "json" in str(C.config.get_config_value("DEFAULT_STDOUT_CALLBACK")).lower()

    def _say(self, lines):
        if self._quiet:
            return
        for line in lines:
            self._display.display(line, color="cyan")

    def v2_playbook_on_play_start(self, play):
        self._say(self._tracker.play_start(play.get_name().strip()))

    def v2_runner_on_ok(self, result):
        self._say(self._tracker.result(result._task.action, result._result))

    def v2_runner_item_on_ok(self, result):
        self._say(self._tracker.result(result._task.action, result._result))
