# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r"""
name: database_test_table
short_description: Format the results of a database test as a readable table
version_added: 0.1.0
description:
  - Turns what M(hosting.migration.database_test) returns into a plain-text table, one row per
    database with its account, the size of its dump, the time of its test, its numbers of errors
    and warnings and its first messages (one per line), and a summary line that says how many
    databases had errors.
  - Above the table, the server versions the dumps were imported into; under it, the warnings that
    the dump format itself causes (not counted as warnings).
  - Given the whole registered result or only its C(databases) list.
author: hosting.migration developers (!UNKNOWN)
options:
  _input:
    description: The result of M(hosting.migration.database_test), or its C(databases) list.
    type: raw
    required: true
  messages:
    description: How many messages to print per database (errors first, then warnings).
    type: int
    default: 3
"""

EXAMPLES = r"""
- name: Print the database test
  ansible.builtin.debug:
    msg: "{{ database_test | hosting.migration.database_test_table }}"

- name: Every message that the module kept
  ansible.builtin.debug:
    msg: "{{ database_test.databases | hosting.migration.database_test_table(messages=40) }}"
"""

RETURN = r"""
_value:
  description: The table, lines separated by newlines.
  type: str
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.hosting.migration.plugins.filter.account_table import human_bytes
from ansible_collections.hosting.migration.plugins.module_utils.text_table import table_lines

HEADER = ["account", "database", "dump", "time", "errors", "warnings", "messages"]
ENGINE_NAMES = {"mariadb": "MariaDB", "postgresql": "PostgreSQL"}


def _databases_of(result):
    if isinstance(result, dict) and isinstance(result.get("databases"), list):
        return result["databases"]
    if isinstance(result, list):
        return result
    raise AnsibleFilterError("database_test_table expects the result of hosting.migration.database_test "
                             "or its databases list, got %s" % type(result).__name__)


def _plural(count, word):
    return "%d %s%s" % (count, word, "" if count == 1 else "s")


def _messages(database, limit):
    lines = ["error: %s" % text for text in database["errors"]] + ["warning: %s" % text for text in database["warnings"]]
    if database.get("dropped") is False:
        lines.insert(0, "scratch database %s NOT dropped: %s" % (database.get("scratch"), database.get("drop_error")))
    shown = lines[:limit]
    hidden_errors = database["error_count"] - len([line for line in shown if line.startswith("error: ")])
    hidden_warnings = database["warning_count"] - len([line for line in shown if line.startswith("warning: ")])
    more = [_plural(count, word) for count, word in ((hidden_errors, "more error"), (hidden_warnings, "more warning"))
            if count > 0]
    if more:
        shown.append("... and %s" % ", ".join(more))
    return shown


def _rows(databases, limit):
    lines = []
    for database in databases:
        try:
            cells = [database.get("account") or "-", "%s %s" % (database["engine"], database["name"]),
                     "-" if database.get("bytes") is None else human_bytes(database["bytes"]),
                     "-" if database.get("elapsed_s") is None else "%.1f s" % database["elapsed_s"],
                     str(database["error_count"]), str(database["warning_count"])]
            messages = _messages(database, limit)
        except (KeyError, TypeError, AttributeError):
            raise AnsibleFilterError("database_test_table: %r is not a database of hosting.migration.database_test "
                                     "(run in check mode?)" % (database,)) from None
        lines.append(cells + [messages[0] if messages else "-"])
        lines.extend([""] * len(cells) + [message] for message in messages[1:])
    return lines


def _summary(databases):
    with_errors = [database for database in databases if database["error_count"]]
    text = "%s tested: %d without errors, %d with errors" % (
        _plural(len(databases), "database"), len(databases) - len(with_errors), len(with_errors))
    if with_errors:
        text += " (%s)" % ", ".join("%s %s" % (database["engine"], database["name"]) for database in with_errors)
    return text + "; %s, %s" % (_plural(sum(database["error_count"] for database in databases), "error"),
                                _plural(sum(database["warning_count"] for database in databases), "warning"))


def _head(databases):
    versions = sorted({(database["engine"], database.get("server_version")) for database in databases
                       if database.get("server_version")})
    if not versions:
        return []
    names = ["%s %s" % (ENGINE_NAMES.get(engine, engine), version) for engine, version in versions]
    return ["Imported into %s" % ", ".join(names)]


def _tail(databases):
    expected = sum(database.get("expected_warning_count") or 0 for database in databases)
    if not expected:
        return []
    texts = sorted({text for database in databases for text in database.get("expected_warnings") or []})
    return ["Not counted: %s caused by the dump format itself, whatever the data (%s)"
            % (_plural(expected, "warning"), "; ".join(texts))]


def database_test_table(result, messages=3):
    if isinstance(messages, bool) or not isinstance(messages, int) or messages < 0:
        raise AnsibleFilterError("database_test_table: messages must be a number of messages, 0 or more (got %r)"
                                 % (messages,))
    databases = _databases_of(result)
    lines = table_lines(HEADER, _rows(databases, messages))
    return "\n".join(_head(databases) + lines + _tail(databases) + [_summary(databases)])


class FilterModule(object):

    def filters(self):
        return {"database_test_table": database_test_table}
