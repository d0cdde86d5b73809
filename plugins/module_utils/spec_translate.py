# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Translate an account spec from one infrastructure version to another.

The catalogue (``infrastructure_catalogue``, ``roles/catalogue/defaults/main.yml``) says what
each version offers; this module says what that means for one account: the PHP version of each
site on the target, the database server versions its databases move to, and what cannot move at
all. ``docs/preparation.md`` describes the report built from it.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import dataclasses
import re

from ansible_collections.hosting.migration.plugins.module_utils.account_spec import (
    AccountSpec, SpecError, validate_spec)

ENGINE_LABELS = {"mariadb": "MariaDB", "postgresql": "PostgreSQL"}
CHANGE_KINDS = ("os", "php", "mariadb", "postgresql")

_PHP_VERSION_RE = re.compile(r"[0-9]+\.[0-9]+")
_NATURAL_RE = re.compile(r"([0-9]+)")


class CatalogueError(ValueError):
    """The catalogue, or a version name given for it, cannot be used."""


def version_key(text):
    """Sort key for version names and service versions: numbers compare as numbers.

    "10.11" sorts after "10.2", "2025" after "2023", "2025b" after "2025".
    """
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part)
                 for part in _NATURAL_RE.split(str(text)) if part)


def _mapping(value, where):
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise CatalogueError("%s must be a mapping, not %s" % (where, type(value).__name__))
    return value


def _catalogue(catalogue):
    """The catalogue with its version names as strings."""
    if not isinstance(catalogue, dict) or not catalogue:
        raise CatalogueError("the infrastructure catalogue is empty or not a mapping of version "
                             "names to versions (the variable infrastructure_catalogue)")
    return {str(name): entry for name, entry in catalogue.items()}


def catalogue_versions(catalogue):
    """The version names of the catalogue, oldest first."""
    return sorted(_catalogue(catalogue), key=version_key)


def newest_version(catalogue):
    """The newest version of the catalogue: the default target of a migration."""
    return catalogue_versions(catalogue)[-1]


def version_entry(catalogue, version, role="infrastructure"):
    """The catalogue's entry for a version; a clear error for a name it does not know."""
    versions = _catalogue(catalogue)
    name = str(version) if version is not None else None
    if name not in versions:
        raise CatalogueError("unknown %s version %r: the catalogue has %s" % (
            role, version, ", ".join(catalogue_versions(catalogue))))
    return _mapping(versions[name], "infrastructure_catalogue[%r]" % name)


def os_text(entry):
    """'Debian 13 (trixie)' for a version's os entry; None when the entry names no OS."""
    os_entry = _mapping(entry.get("os"), "os")
    if not os_entry:
        return None
    text = " ".join(str(os_entry[key]) for key in ("family", "release") if os_entry.get(key) is not None)
    if os_entry.get("codename"):
        text = "%s (%s)" % (text, os_entry["codename"]) if text else str(os_entry["codename"])
    return text or None


def service_version(entry, service):
    """The version of a service in a catalogue entry, as text; None when it lacks the service."""
    services = _mapping(entry.get("services"), "services")
    details = _mapping(services.get(service), "services.%s" % service)
    version = details.get("version")
    if isinstance(version, (float, bool)):
        # Unquoted in YAML, 11.10 is the number 11.1.
        raise CatalogueError("services.%s.version: %r must be a quoted string in the catalogue" % (service, version))
    return None if version is None else str(version)


def _php_version(value, where):
    # A number is refused: unquoted in YAML, 8.10 is the number 8.1.
    if not isinstance(value, str) or not _PHP_VERSION_RE.fullmatch(value):
        raise CatalogueError("%s: %r is not a PHP version such as \"8.4\" (a quoted string in YAML)"
                             % (where, value))
    return value


def php_offered(entry, version):
    """The PHP versions a catalogue entry offers."""
    php = _mapping(_mapping(entry.get("services"), "services").get("php"), "services.php")
    offered = php.get("offered")
    if offered is None:
        offered = [php["version"]] if php.get("version") is not None else []
    if not isinstance(offered, list):
        raise CatalogueError("infrastructure_catalogue[%r].services.php.offered must be a list" % version)
    where = "infrastructure_catalogue[%r].services.php.offered" % version
    return [_php_version(value, where) for value in offered]


def php_upgrades(entry, version):
    """The entry's map from a PHP version it no longer offers to a newer one."""
    where = "infrastructure_catalogue[%r].php_upgrades" % version
    upgrades = _mapping(entry.get("php_upgrades"), where)
    return {_php_version(old, where): _php_version(new, "%s[%r]" % (where, old)) for old, new in upgrades.items()}


def map_php(version, offered, upgrades):
    """The PHP version a site running ``version`` gets: itself when offered, else the mapping
    followed (8.0 -> 8.1 -> 8.4) until an offered version; None when there is none."""
    current, seen = version, set()
    while current not in offered:
        if current in seen or current not in upgrades:
            return None
        seen.add(current)
        current = upgrades[current]
    return current


def _change(kind, what, old, new, text):
    return {"kind": kind, "what": what, "from": old, "to": new, "text": text}


def _os_changes(source, target):
    old, new = os_text(source), os_text(target)
    if old == new or new is None:
        return []
    return [_change("os", "server", old, new, "server: %s becomes %s" % (old or "an unknown OS", new))]


def _php_changes(spec, target, target_version):
    offered = php_offered(target, target_version)
    upgrades = php_upgrades(target, target_version)
    sites, changes, blockers = [], [], []
    for site in spec.sites:
        if site.php == "none":
            sites.append(site)
            continue
        new = map_php(site.php, offered, upgrades)
        if new is None:
            blockers.append("site %s runs PHP %s, which infrastructure %s neither offers nor maps to a "
                            "newer version" % (site.name, site.php, target_version))
            new = site.php
        elif version_key(new) < version_key(site.php):
            blockers.append("site %s runs PHP %s, which infrastructure %s maps to the older %s; a site "
                            "is never moved to an older PHP" % (site.name, site.php, target_version, new))
            new = site.php
        elif new != site.php:
            changes.append(_change("php", "site %s" % site.name, site.php, new,
                                   "site %s: PHP %s becomes %s (infrastructure %s does not offer %s)"
                                   % (site.name, site.php, new, target_version, site.php)))
        sites.append(dataclasses.replace(site, php=new))
    return tuple(sites), changes, blockers


def _database_changes(spec, source, target, source_version, target_version):
    changes, blockers = [], []
    for database in spec.databases:
        engine, label = database.engine, ENGINE_LABELS.get(database.engine, database.engine)
        what = "database %s" % database.name
        old, new = service_version(source, engine), service_version(target, engine)
        if new is None:
            blockers.append("%s needs %s, which infrastructure %s does not provide"
                            % (what, label, target_version))
        elif old is None:
            changes.append(_change(engine, what, None, new, "%s: runs on %s %s (the catalogue names no %s "
                                   "version for infrastructure %s)" % (what, label, new, label, source_version)))
        elif version_key(new) < version_key(old):
            blockers.append("%s would go from %s %s down to %s on infrastructure %s; a database is never "
                            "moved to an older server version" % (what, label, old, new, target_version))
        elif new != old:
            changes.append(_change(engine, what, old, new, "%s: %s %s becomes %s" % (what, label, old, new)))
    return changes, blockers


def translate_spec(spec, catalogue, source_version, target_version):
    """The account's spec for the target version, what changes and what blocks the move.

    ``spec`` is an AccountSpec (or a spec dict, validated first). Returns ``(translated,
    changes, blockers)``: the translated AccountSpec (each site's PHP mapped; on a blocker the
    site keeps its version), the changes as dicts ``{kind, what, from, to, text}`` (``kind``
    one of os, php, mariadb, postgresql; ``text`` a sentence) and the blockers as sentences.
    Raises CatalogueError for a version the catalogue does not know or a malformed entry.
    """
    if isinstance(spec, dict):
        spec = validate_spec(spec, "%s.yml" % spec.get("name"), min_uid=0)
    if not isinstance(spec, AccountSpec):
        raise TypeError("translate_spec needs an AccountSpec, not %s" % type(spec).__name__)
    source = version_entry(catalogue, source_version, "source infrastructure")
    target = version_entry(catalogue, target_version, "target infrastructure")
    source_version, target_version = str(source_version), str(target_version)
    sites, php_changes, blockers = _php_changes(spec, target, target_version)
    db_changes, db_blockers = _database_changes(spec, source, target, source_version, target_version)
    translated = dataclasses.replace(spec, sites=sites)
    try:
        # Whatever the catalogue says, the result must still be a spec the target accepts.
        translated = validate_spec(translated.to_dict(), "%s.yml" % spec.name, min_uid=0)
    except SpecError as error:
        raise CatalogueError("translating account %s to infrastructure %s gives an invalid spec: %s"
                             % (spec.name, target_version, error.reason)) from None
    changes = _os_changes(source, target) + php_changes + db_changes
    return translated, changes, blockers + db_blockers
