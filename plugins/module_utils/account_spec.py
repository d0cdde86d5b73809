# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The account spec: read, check and normalise ``/etc/hosting/accounts/<name>.yml``.

The format and its rules are described in ``docs/account-spec.md``. Everything here runs on
the managed host inside a module, so it uses the standard library only; PyYAML is imported
where text is parsed or written, so validating a dict needs nothing else.
"""

from __future__ import (absolute_import, division, print_function)

# No "from __future__ import annotations": dataclasses then look the module up in sys.modules,
# which fails when a script loads this file directly (lab/bin/accounts.py does).
__metaclass__ = type

import base64
import binascii
import hashlib
import hmac
import os
import re
import stringprep
import unicodedata
from dataclasses import dataclass
from typing import Tuple

DEFAULT_MIN_UID = 10000
# Exclusive upper bound: Debian reserves 60000 and up (global allocations, systemd's dynamic
# users, nobody/nogroup at 65534).
MAX_UID = 60000

SPEC_SUFFIX = ".yml"
FILE_FIELD = "(file)"

ENGINES = ("mariadb", "postgresql")
CRON_SPECIALS = ("@hourly", "@daily", "@weekly", "@monthly", "@reboot")
HOME_PARENTS = ("/home", "/srv")

NAME_MAX = 32
SITE_NAME_MAX = 32
DATABASE_NAME_MAX = 63
DATABASE_USER_MAX = 32
DOMAIN_MAX = 253
LOCAL_PART_MAX = 64
PATH_MAX = 255

# The account's user *and* group are named after it, so system groups are reserved as well.
RESERVED_NAMES = frozenset((
    # Debian base-passwd users and groups
    "root", "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news", "uucp",
    "proxy", "www-data", "backup", "list", "irc", "gnats", "nobody", "nogroup", "adm", "tty",
    "disk", "kmem", "dialout", "fax", "voice", "cdrom", "floppy", "tape", "sudo", "audio",
    "dip", "operator", "src", "shadow", "utmp", "video", "sasl", "plugdev", "staff", "users",
    "input", "kvm", "render", "sgx", "netdev", "crontab", "ssl-cert", "wheel", "_apt",
    # system services
    "systemd-journal", "systemd-network", "systemd-resolve", "systemd-timesync",
    "systemd-coredump", "messagebus", "polkitd", "sshd", "tss", "uuidd", "tcpdump", "syslog",
    "ntp", "chrony", "_chrony", "avahi", "dnsmasq", "statd", "_rpc", "landscape", "lxd",
    "docker", "podman",
    # services of a hosting server
    "mysql", "mariadb", "postgres", "postgresql", "bind", "named", "nginx", "apache",
    "apache2", "httpd", "php", "php-fpm", "redis", "memcache", "memcached", "postfix",
    "postdrop", "dovecot", "dovenull", "vmail", "exim", "debian-exim", "opendkim", "clamav",
    "spamd", "debian-spamd", "amavis", "ftp", "proftpd", "vsftpd",
    # administrative and mail role names
    "admin", "administrator", "hosting", "ansible", "postmaster", "hostmaster", "webmaster",
    "abuse", "www", "web",
))
# Whole families of system names.
RESERVED_PREFIXES = ("systemd-",)
# The scratch databases of the test imports on a database test server are named this prefix and
# a random suffix (transfer_endpoint.SCRATCH_PREFIX, the same string): no account database may
# start with it, so that a scratch name can never be an account's database.
SCRATCH_DATABASE_PREFIX = "hmtest_"

_NAME_RE = re.compile(r"[a-z][a-z0-9_-]*")
_SITE_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]*")
_DB_IDENTIFIER_RE = re.compile(r"[a-z0-9_]+")
_DOMAIN_LABEL_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_LOCAL_PART_RE = re.compile(r"[a-z0-9](?:[a-z0-9._+-]*[a-z0-9])?")
_PATH_PART_RE = re.compile(r"[A-Za-z0-9._-]+")
_PHP_RE = re.compile(r"[0-9]+\.[0-9]+")
_MARIADB_HASH_RE = re.compile(r"\*[0-9A-F]{40}")
_SCRAM_RE = re.compile(
    r"SCRAM-SHA-256\$(\d+):([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)", re.ASCII)

# Cron fields: (field name, lowest, highest, names accepted in place of numbers)
_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_CRON_FIELDS = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, {name: number for number, name in enumerate(_MONTH_NAMES, 1)}),
    ("day of week", 0, 7, {name: number for number, name in enumerate(_DAY_NAMES)}),
)
_CRON_ITEM_RE = re.compile(r"(\*|[0-9a-z]+(?:-[0-9a-z]+)?)(?:/([0-9]+))?")

_TOP_LEVEL_FIELDS = ("name", "uid", "gid", "home", "sites", "databases", "cron", "mailboxes")
_SITE_FIELDS = ("name", "domains", "document_root", "php")
_DATABASE_FIELDS = ("engine", "name", "users")
_USER_FIELDS = ("name", "password_hash")
_CRON_ENTRY_FIELDS = ("schedule", "command")
_MAILBOX_FIELDS = ("address", "maildir")

# Keys that are refused with a hint rather than just "unknown".
_FIELD_HINTS = {
    "password": "clear-text passwords are not accepted; give the hash as 'password_hash'",
}


class SpecError(ValueError):
    """A spec breaks a rule: ``<file>: field '<field>': <reason>``."""

    def __init__(self, path, field, reason):
        self.path = path
        self.field = field
        self.reason = reason
        super().__init__("%s: field '%s': %s" % (path, field, reason))

    def __reduce__(self):
        # ValueError pickles its args, which here are the message only.
        return (type(self), (self.path, self.field, self.reason))


@dataclass(frozen=True)
class Site:
    name: str
    domains: Tuple[str, ...]
    document_root: str
    php: str

    def to_dict(self):
        return {"name": self.name, "domains": list(self.domains),
                "document_root": self.document_root, "php": self.php}


@dataclass(frozen=True)
class DatabaseUser:
    name: str
    password_hash: str

    def to_dict(self):
        return {"name": self.name, "password_hash": self.password_hash}


@dataclass(frozen=True)
class Database:
    engine: str
    name: str
    users: Tuple[DatabaseUser, ...]

    def to_dict(self):
        return {"engine": self.engine, "name": self.name,
                "users": [user.to_dict() for user in self.users]}


@dataclass(frozen=True)
class CronEntry:
    schedule: str
    command: str

    def to_dict(self):
        return {"schedule": self.schedule, "command": self.command}


@dataclass(frozen=True)
class Mailbox:
    address: str
    maildir: str

    def to_dict(self):
        return {"address": self.address, "maildir": self.maildir}


@dataclass(frozen=True)
class AccountSpec:
    name: str
    uid: int
    gid: int
    home: str
    sites: Tuple[Site, ...] = ()
    databases: Tuple[Database, ...] = ()
    cron: Tuple[CronEntry, ...] = ()
    mailboxes: Tuple[Mailbox, ...] = ()

    def to_dict(self):
        """The normalised spec as plain dicts and lists, keys in the documented order."""
        return {
            "name": self.name,
            "uid": self.uid,
            "gid": self.gid,
            "home": self.home,
            "sites": [site.to_dict() for site in self.sites],
            "databases": [database.to_dict() for database in self.databases],
            "cron": [entry.to_dict() for entry in self.cron],
            "mailboxes": [mailbox.to_dict() for mailbox in self.mailboxes],
        }


# --- describing values in messages ----------------------------------------------------------

def _show(value):
    """A value for a one-line message: ascii() makes newlines and look-alike letters visible."""
    text = ascii(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _kind(value):
    if value is None:
        return "empty (null)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number with a fraction"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return "a %s" % type(value).__name__


def _key_label(key):
    if isinstance(key, str) and re.fullmatch(r"[A-Za-z0-9_-]+", key):
        return key
    return _show(key)


def _join(parent, key):
    return "%s.%s" % (parent, key) if parent else key


def _item(parent, index):
    return "%s[%d]" % (parent, index)


def is_reserved_name(name):
    return name in RESERVED_NAMES or name.startswith(RESERVED_PREFIXES)


# --- the validator ---------------------------------------------------------------------------

class _Validator:
    """Checks one spec; carries the file path so every check can name it."""

    def __init__(self, path, min_uid):
        self.path = path
        self.min_uid = min_uid

    def fail(self, field, reason):
        raise SpecError(self.path, field, reason)

    # generic shapes

    def mapping(self, value, field, allowed, required):
        if not isinstance(value, dict):
            self.fail(field or FILE_FIELD, "must be a mapping, not %s" % _kind(value))
        for key in value:
            if key not in allowed:
                reason = _FIELD_HINTS.get(key) if isinstance(key, str) else None
                self.fail(_join(field, _key_label(key)),
                          reason or "unknown field (known fields: %s)" % ", ".join(allowed))
        for key in required:
            if key not in value:
                self.fail(_join(field, key), "required field is missing")
        return value

    def optional_list(self, value, field):
        # A key given without a value ("sites:") means the same as leaving it out.
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(field, "must be a list, not %s" % _kind(value))
        return value

    def nonempty_list(self, value, field):
        if not isinstance(value, list):
            self.fail(field, "must be a list, not %s" % _kind(value))
        if not value:
            self.fail(field, "must list at least one entry")
        return value

    def string(self, value, field):
        if not isinstance(value, str):
            self.fail(field, "must be a string, not %s" % _kind(value))
        if not value:
            self.fail(field, "must not be empty")
        return value

    def ascii_string(self, value, field):
        value = self.string(value, field)
        if not value.isascii():
            self.fail(field, "%s contains non-ASCII characters; only ASCII is accepted, "
                             "so look-alike letters cannot pass" % _show(value))
        return value

    def integer(self, value, field):
        # bool is a subclass of int: 'uid: yes' must not become uid 1.
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(field, "must be an integer, not %s" % _kind(value))
        return value

    def identifier(self, value, field, pattern, max_length, what):
        value = self.ascii_string(value, field)
        if len(value) > max_length:
            self.fail(field, "%s is longer than %d characters" % (_show(value), max_length))
        if not pattern.fullmatch(value):
            self.fail(field, "%s is not a valid name: %s" % (_show(value), what))
        return value

    def relative_path(self, value, field):
        """A path below the home: no leading '/', no '.' or '..' part, no empty part."""
        value = self.ascii_string(value, field)
        if len(value) > PATH_MAX:
            self.fail(field, "%s is longer than %d characters" % (_show(value), PATH_MAX))
        if value.startswith("/"):
            self.fail(field, "%s must be relative to the account's home, "
                             "without a leading '/'" % _show(value))
        for part in value.split("/"):
            if part in (".", ".."):
                self.fail(field, "%s must not contain '.' or '..' parts: "
                                 "the path has to stay inside the home" % _show(value))
            if not _PATH_PART_RE.fullmatch(part):
                self.fail(field, "%s is not a plain relative path: use letters, digits, '.', "
                                 "'_' and '-' between single '/'" % _show(value))
        return value

    # the account

    def account(self, data):
        data = self.mapping(data, "", _TOP_LEVEL_FIELDS, ("name", "uid", "gid"))
        name = self.account_name(data["name"])
        # Keyword arguments are evaluated in order: fields are checked in the documented order.
        spec = AccountSpec(
            name=name,
            uid=self.id_number(data["uid"], "uid"),
            gid=self.id_number(data["gid"], "gid"),
            home=self.home(data.get("home"), name),
            sites=self.sites(data.get("sites")),
            databases=self.databases(data.get("databases"), name),
            cron=self.cron(data.get("cron")),
            mailboxes=self.mailboxes(data.get("mailboxes")),
        )
        self.check_maildirs_outside_document_roots(spec.sites, spec.mailboxes)
        return spec

    def account_name(self, value):
        name = self.identifier(value, "name", _NAME_RE, NAME_MAX,
                               "use lower-case letters, digits, '_' and '-', starting with a letter")
        if is_reserved_name(name):
            self.fail("name", "%s is a reserved system name" % _show(name))
        if (database_prefix(name) + "_").startswith(SCRATCH_DATABASE_PREFIX):
            self.fail("name", "%s is reserved: its databases would have to start with %s, the prefix of the "
                      "database test's scratch databases" % (_show(name), _show(SCRATCH_DATABASE_PREFIX)))
        expected = name + SPEC_SUFFIX
        actual = os.path.basename(self.path)
        if actual != expected:
            self.fail("name", "%s does not match the file name %s (expected %s)"
                      % (_show(name), _show(actual), _show(expected)))
        return name

    def id_number(self, value, field):
        number = self.integer(value, field)
        if number < self.min_uid:
            self.fail(field, "%d is below the minimum %d" % (number, self.min_uid))
        if number >= MAX_UID:
            self.fail(field, "%d is too high: it must be below %d" % (number, MAX_UID))
        return number

    def home(self, value, name):
        allowed = ["%s/%s" % (parent, name) for parent in HOME_PARENTS]
        if value is None:
            return allowed[0]
        home = self.ascii_string(value, "home")
        if home not in allowed:
            self.fail("home", "%s must be %s" % (_show(home), " or ".join(allowed)))
        return home

    # sites

    def sites(self, value):
        sites = []
        names, domains = set(), {}
        for index, entry in enumerate(self.optional_list(value, "sites")):
            field = _item("sites", index)
            site = self.site(entry, field)
            if site.name in names:
                self.fail(_join(field, "name"), "%s is already the name of another site of "
                                                "this account" % _show(site.name))
            names.add(site.name)
            for position, domain in enumerate(site.domains):
                if domain in domains:
                    self.fail(_item(_join(field, "domains"), position),
                              "%s is already served by site %s" % (_show(domain), _show(domains[domain])))
                domains[domain] = site.name
            sites.append(site)
        return tuple(sites)

    def site(self, value, field):
        value = self.mapping(value, field, _SITE_FIELDS, _SITE_FIELDS)
        return Site(
            name=self.identifier(value["name"], _join(field, "name"), _SITE_NAME_RE, SITE_NAME_MAX,
                                 "use lower-case letters, digits, '_' and '-', starting with a "
                                 "letter or digit"),
            domains=self.domains(value["domains"], _join(field, "domains")),
            document_root=self.relative_path(value["document_root"], _join(field, "document_root")),
            php=self.php(value["php"], _join(field, "php")),
        )

    def domains(self, value, field):
        return tuple(self.domain(domain, _item(field, index))
                     for index, domain in enumerate(self.nonempty_list(value, field)))

    def domain(self, value, field):
        # Host names are case-insensitive; keep them lower-case so duplicates are found.
        domain = self.ascii_string(value, field).lower()
        if len(domain) > DOMAIN_MAX:
            self.fail(field, "%s is longer than %d characters" % (_show(domain), DOMAIN_MAX))
        labels = domain.split(".")
        if not all(_DOMAIN_LABEL_RE.fullmatch(label) for label in labels):
            self.fail(field, "%s is not a valid host name: use letters, digits and hyphens in "
                             "dot-separated labels of at most 63 characters" % _show(domain))
        if labels[-1].isdigit():
            self.fail(field, "%s looks like an IP address, not a host name" % _show(domain))
        return domain

    def php(self, value, field):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            # 'php: 8.10' unquoted is the number 8.1.
            self.fail(field, "must be a string such as \"8.2\" (quote it in YAML), not %s"
                      % _kind(value))
        php = self.ascii_string(value, field)
        if php != "none" and not _PHP_RE.fullmatch(php):
            self.fail(field, "%s is not a PHP version such as \"8.2\" or \"none\"" % _show(php))
        return php

    # databases

    def databases(self, value, account):
        databases = []
        seen, hashes = set(), {}
        for index, entry in enumerate(self.optional_list(value, "databases")):
            field = _item("databases", index)
            database = self.database(entry, field, account)
            if (database.engine, database.name) in seen:
                self.fail(_join(field, "name"), "%s is already declared for %s"
                          % (_show(database.name), database.engine))
            seen.add((database.engine, database.name))
            self.check_user_hashes_agree(database, field, hashes)
            databases.append(database)
        return tuple(databases)

    def check_user_hashes_agree(self, database, field, hashes):
        # A user granted on two databases is one server account: it has one password.
        for position, user in enumerate(database.users):
            key = (database.engine, user.name)
            if hashes.setdefault(key, user.password_hash) != user.password_hash:
                self.fail(_join(_item(_join(field, "users"), position), "password_hash"),
                          "%s user %s appears again with a different password hash"
                          % (database.engine, _show(user.name)))

    def database(self, value, field, account):
        value = self.mapping(value, field, _DATABASE_FIELDS, ("engine", "name"))
        engine = self.engine(value["engine"], _join(field, "engine"))
        prefix = database_prefix(account)
        name = self.database_identifier(value["name"], _join(field, "name"), DATABASE_NAME_MAX, prefix)
        if name.startswith(SCRATCH_DATABASE_PREFIX):
            self.fail(_join(field, "name"), "%s starts with %s, which is reserved for the database test's "
                      "scratch databases" % (_show(name), _show(SCRATCH_DATABASE_PREFIX)))
        return Database(engine=engine, name=name,
                        users=self.database_users(value.get("users"), _join(field, "users"), engine, prefix))

    def engine(self, value, field):
        engine = self.string(value, field)
        if engine not in ENGINES:
            self.fail(field, "%s is not a known engine (known engines: %s)"
                      % (_show(engine), ", ".join(ENGINES)))
        return engine

    def database_identifier(self, value, field, max_length, prefix):
        name = self.identifier(value, field, _DB_IDENTIFIER_RE, max_length,
                               "use lower-case letters, digits and '_'")
        if not name.startswith(prefix):
            self.fail(field, "%s must start with the account's name %s"
                      % (_show(name), _show(prefix)))
        return name

    def database_users(self, value, field, engine, prefix):
        users, names = [], set()
        for index, entry in enumerate(self.optional_list(value, field)):
            user_field = _item(field, index)
            entry = self.mapping(entry, user_field, _USER_FIELDS, _USER_FIELDS)
            name = self.database_identifier(entry["name"], _join(user_field, "name"),
                                            DATABASE_USER_MAX, prefix)
            if name in names:
                self.fail(_join(user_field, "name"), "%s is listed twice" % _show(name))
            names.add(name)
            users.append(DatabaseUser(
                name=name,
                password_hash=self.password_hash(entry["password_hash"],
                                                 _join(user_field, "password_hash"), engine)))
        return tuple(users)

    def password_hash(self, value, field, engine):
        # The value is never quoted in a message: it might be a clear-text password.
        if not isinstance(value, str):
            self.fail(field, "must be a string, not %s" % _kind(value))
        if engine == "mariadb" and not _MARIADB_HASH_RE.fullmatch(value):
            self.fail(field, "is not a MariaDB mysql_native_password hash ('*' and 40 upper-case "
                             "hex digits); clear-text passwords are not accepted")
        if engine == "postgresql":
            problem = _scram_problem(value)
            if problem:
                self.fail(field, "is not a PostgreSQL SCRAM-SHA-256 verifier (%s); clear-text "
                                 "passwords are not accepted" % problem)
        return value

    # cron

    def cron(self, value):
        entries = []
        for index, entry in enumerate(self.optional_list(value, "cron")):
            field = _item("cron", index)
            entry = self.mapping(entry, field, _CRON_ENTRY_FIELDS, _CRON_ENTRY_FIELDS)
            entries.append(CronEntry(
                schedule=self.cron_schedule(entry["schedule"], _join(field, "schedule")),
                command=self.cron_command(entry["command"], _join(field, "command")),
            ))
        return tuple(entries)

    def cron_schedule(self, value, field):
        schedule = self.ascii_string(value, field)
        fields = schedule.split()
        if len(fields) == 1 and fields[0] in CRON_SPECIALS:
            return fields[0]
        if len(fields) != len(_CRON_FIELDS):
            self.fail(field, "%s must be five crontab fields or one of %s"
                      % (_show(schedule), ", ".join(CRON_SPECIALS)))
        for text, spec in zip(fields, _CRON_FIELDS):
            problem = _cron_field_problem(text, *spec)
            if problem:
                self.fail(field, "%s: %s" % (_show(schedule), problem))
        # One space between fields, so equal schedules compare equal.
        return " ".join(fields)

    def cron_command(self, value, field):
        command = self.string(value, field)
        if not command.strip():
            self.fail(field, "must not be blank")
        for char in command:
            if char != "\t" and unicodedata.category(char) in ("Cc", "Zl", "Zp"):
                self.fail(field, "%s must be a single line without control characters"
                          % _show(command))
        if re.search(r"(?<!\\)%", command):
            # cron turns an unescaped '%' into a line break and feeds the rest to stdin.
            self.fail(field, "%s contains '%%', which cron turns into a line break; "
                             "write it as '\\%%'" % _show(command))
        return command

    # mailboxes

    def mailboxes(self, value):
        mailboxes, addresses, maildirs = [], set(), []
        for index, entry in enumerate(self.optional_list(value, "mailboxes")):
            field = _item("mailboxes", index)
            entry = self.mapping(entry, field, _MAILBOX_FIELDS, _MAILBOX_FIELDS)
            address = self.mail_address(entry["address"], _join(field, "address"))
            if address in addresses:
                self.fail(_join(field, "address"), "%s is listed twice" % _show(address))
            addresses.add(address)
            maildir = self.relative_path(entry["maildir"], _join(field, "maildir"))
            for other in maildirs:
                if _paths_overlap(maildir, other):
                    self.fail(_join(field, "maildir"), "%s overlaps the maildir %s of another "
                                                       "mailbox" % (_show(maildir), _show(other)))
            maildirs.append(maildir)
            mailboxes.append(Mailbox(address=address, maildir=maildir))
        return tuple(mailboxes)

    def mail_address(self, value, field):
        address = self.ascii_string(value, field).lower()
        local, at, domain = address.rpartition("@")
        if not at or len(local) > LOCAL_PART_MAX or ".." in local or not _LOCAL_PART_RE.fullmatch(local):
            self.fail(field, "%s is not a mail address of the form local@domain (local part: "
                             "letters, digits, '.', '_', '+' and '-')" % _show(address))
        self.domain(domain, field)
        return address

    def check_maildirs_outside_document_roots(self, sites, mailboxes):
        # Mail inside a document root would be published on the web.
        for index, mailbox in enumerate(mailboxes):
            for site in sites:
                if _paths_overlap(mailbox.maildir, site.document_root):
                    self.fail(_join(_item("mailboxes", index), "maildir"),
                              "%s overlaps the document root %s of site %s"
                              % (_show(mailbox.maildir), _show(site.document_root), _show(site.name)))


def _paths_overlap(first, second):
    return first == second or first.startswith(second + "/") or second.startswith(first + "/")


def _cron_field_problem(text, name, lowest, highest, names):
    """What is wrong with one crontab field, or None."""
    for item in text.lower().split(","):
        match = _CRON_ITEM_RE.fullmatch(item)
        if not match:
            return "the %s field %s is not a cron expression" % (name, _show(text))
        span, step = match.groups()
        if step is not None and int(step) == 0:
            return "the %s field %s has a step of 0" % (name, _show(text))
        if span == "*":
            continue
        bounds = [names.get(part, int(part) if part.isdigit() else None) for part in span.split("-")]
        if None in bounds:
            return "the %s field %s has a value that is neither a number nor a known name" % (name, _show(text))
        if any(not lowest <= bound <= highest for bound in bounds):
            return "the %s field %s is outside %d-%d" % (name, _show(text), lowest, highest)
        if bounds[0] > bounds[-1]:
            return "the %s field %s has a range that runs backwards" % (name, _show(text))
    return None


def _scram_problem(value):
    """What is wrong with a SCRAM-SHA-256 verifier, or None."""
    match = _SCRAM_RE.fullmatch(value)
    if not match:
        return "expected 'SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>'"
    iterations, salt, stored_key, server_key = match.groups()
    if int(iterations) < 1:
        return "the iteration count must be at least 1"
    try:
        decoded = [base64.b64decode(part, validate=True) for part in (salt, stored_key, server_key)]
    except (binascii.Error, ValueError):
        return "the salt and keys must be valid base64"
    if not decoded[0] or len(decoded[1]) != 32 or len(decoded[2]) != 32:
        return "the salt must not be empty and the keys must be 32 bytes each"
    return None


def database_prefix(account_name):
    """What every database and database user name of the account starts with.

    Database names cannot contain '-', so an account 'my-shop' owns names starting 'my_shop'.
    """
    return account_name.replace("-", "_")


# --- public entry points ---------------------------------------------------------------------

def validate_spec(data, path, min_uid=DEFAULT_MIN_UID):
    """Check a parsed spec against every rule and return it normalised.

    ``path`` is the file the spec came from: messages name it and the account's name must match
    its base name. Raises SpecError for the first broken rule.
    """
    return _Validator(path, min_uid).account(data)


def _parse_yaml(text):
    """Parse spec text like yaml.safe_load, but refuse a key given twice in one mapping."""
    import yaml  # lazily: only reading and writing files needs PyYAML

    class _UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            # safe_load keeps the last of two equal keys; a spec must not hide a value that way.
            seen = set()
            for key_node, _value_node in node.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                    key = (key_node.tag, key_node.value)
                    if key in seen:
                        raise yaml.constructor.ConstructorError(
                            None, None, "found duplicate key %s" % _show(key_node.value),
                            key_node.start_mark)
                    seen.add(key)
            return super().construct_mapping(node, deep=deep)

    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = " (line %d, column %d)" % (mark.line + 1, mark.column + 1) if mark else ""
        raise ValueError("%s%s" % (exc.problem or exc.context or "syntax error", where)) from None
    except yaml.YAMLError as exc:
        raise ValueError(" ".join(str(exc).split())) from None


def load_spec_file(path, min_uid=DEFAULT_MIN_UID):
    """Read, parse and validate one spec file."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise SpecError(path, FILE_FIELD, "cannot be read: %s" % (exc.strerror or exc)) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SpecError(path, FILE_FIELD, "is not UTF-8 text") from None
    try:
        data = _parse_yaml(text)
    except ValueError as exc:
        raise SpecError(path, FILE_FIELD, "is not valid YAML: %s" % exc) from None
    if data is None:
        raise SpecError(path, FILE_FIELD, "is empty")
    if not isinstance(data, dict):
        raise SpecError(path, FILE_FIELD, "must hold a YAML mapping, not %s" % _kind(data))
    return validate_spec(data, path, min_uid=min_uid)


def spec_file_names(directory):
    """The spec files of a directory, sorted: every '<name>.yml' that is a file."""
    try:
        names = os.listdir(directory)
    except OSError as exc:
        raise SpecError(directory, FILE_FIELD, "cannot be listed: %s" % (exc.strerror or exc)) from None
    return sorted(os.path.join(directory, name) for name in names
                  if name.endswith(SPEC_SUFFIX) and not name.startswith(".")
                  and os.path.isfile(os.path.join(directory, name)))


def load_spec_dir(directory, min_uid=DEFAULT_MIN_UID):
    """Load every spec of a directory, sorted by account name.

    Besides each file's own rules, checks what must be unique on a server: uids, gids, domains,
    database names and database users (per engine) and mail addresses.
    """
    claims = _Claims()
    specs = []
    for path in spec_file_names(directory):
        spec = load_spec_file(path, min_uid=min_uid)
        claims.add(spec, path)
        specs.append(spec)
    return sorted(specs, key=lambda spec: spec.name)


class _Claims:
    """What the accounts loaded so far hold, to refuse a second account claiming the same."""

    def __init__(self):
        self.owners = {}

    def add(self, spec, path):
        for kind, value, field in _server_wide_values(spec):
            owner = self.owners.setdefault((kind, value), spec.name)
            if owner != spec.name:
                raise SpecError(path, field, "%s %s is already used by account %s"
                                % (kind, _show(value), _show(owner)))


def _server_wide_values(spec):
    """(kind, value, field) for everything that only one account on a server may hold."""
    yield "uid", spec.uid, "uid"
    yield "gid", spec.gid, "gid"
    for index, site in enumerate(spec.sites):
        for position, domain in enumerate(site.domains):
            yield "domain", domain, "sites[%d].domains[%d]" % (index, position)
    for index, database in enumerate(spec.databases):
        yield "%s database" % database.engine, database.name, "databases[%d].name" % index
        for position, user in enumerate(database.users):
            yield ("%s user" % database.engine, user.name,
                   "databases[%d].users[%d].name" % (index, position))
    for index, mailbox in enumerate(spec.mailboxes):
        yield "mail address", mailbox.address, "mailboxes[%d].address" % index


def dump_spec(spec):
    """The normalised spec as YAML text, keys in the documented order."""
    import yaml  # lazily, as in _parse_yaml

    return yaml.safe_dump(spec.to_dict(), sort_keys=False, default_flow_style=False,
                          allow_unicode=True, width=1000)


# --- password hashes -------------------------------------------------------------------------

def mariadb_native_hash(password):
    """The mysql_native_password hash: '*' and the upper-case hex of SHA1(SHA1(password))."""
    inner = hashlib.sha1(password.encode("utf-8")).digest()
    return "*" + hashlib.sha1(inner).hexdigest().upper()


def postgres_scram_hash(password, salt=None, iterations=4096):
    """A PostgreSQL SCRAM-SHA-256 verifier, as CREATE ROLE ... PASSWORD stores it.

    ``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`` (RFC 5802, RFC 7677); the
    salt is 16 random bytes unless given, as PostgreSQL does.
    """
    if salt is None:
        salt = os.urandom(16)
    if not isinstance(salt, bytes) or not salt:
        raise ValueError("salt must be non-empty bytes")
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise ValueError("iterations must be a positive integer")
    salted = hashlib.pbkdf2_hmac("sha256", _saslprep(password).encode("utf-8"), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return "SCRAM-SHA-256$%d:%s$%s:%s" % (iterations, _b64(salt), _b64(stored_key), _b64(server_key))


def _b64(data):
    return base64.b64encode(data).decode("ascii")


_SASLPREP_PROHIBITED = (
    stringprep.in_table_c12, stringprep.in_table_c21, stringprep.in_table_c22,
    stringprep.in_table_c3, stringprep.in_table_c4, stringprep.in_table_c5,
    stringprep.in_table_c6, stringprep.in_table_c7, stringprep.in_table_c8,
    stringprep.in_table_c9, stringprep.in_table_a1,
)


def _saslprep(password):
    """SASLprep (RFC 4013) the way PostgreSQL applies it to passwords.

    PostgreSQL passes ASCII through unchanged and, when SASLprep refuses a password, uses the
    password as given; doing the same keeps the verifier matching what the server computes.
    """
    if password.isascii():
        return password
    mapped = "".join(" " if stringprep.in_table_c12(char) else char
                     for char in password if not stringprep.in_table_b1(char))
    prepared = unicodedata.ucd_3_2_0.normalize("NFKC", mapped)
    if not prepared or any(check(char) for char in prepared for check in _SASLPREP_PROHIBITED):
        return password
    if any(stringprep.in_table_d1(char) for char in prepared):
        # Right-to-left text must not mix in left-to-right letters and must start and end RTL.
        if (any(stringprep.in_table_d2(char) for char in prepared)
                or not stringprep.in_table_d1(prepared[0]) or not stringprep.in_table_d1(prepared[-1])):
            return password
    return prepared
