# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which transit servers of the pool can serve a customer server: "the same configuration".

A transit server serves a customer server when it has at least as many cores, as much memory
and as much disk, the same architecture, the same zone (rerouting the customer's IP addresses
needs the same network) and runs exactly the target infrastructure version. ``match`` returns
the servers that do, best fit first (the smallest adequate server: fewest cores, then least
memory, then least disk, then name), and for every other one the reasons as sentences.

Whether a matching server is free is the caller's business (it knows the leases): ``match``
raises only when no server of the pool could ever serve the customer server, or when there is
no pool; ``free_matches`` filters the matches with the set of busy names. ``docs/transit.md``
describes matching for users.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import math

# The fields of the inventory's server_profile, with what each must hold (for the errors).
PROFILE_FIELDS = {
    "cores": "a whole number of cores",
    "memory_gib": "a number of GiB of memory",
    "disk_gb": "a number of GB of disk",
    "arch": "an architecture name such as x86_64",
    "zone": "a zone name",
}
NUMBER_FIELDS = ("cores", "memory_gib", "disk_gb")
TEXT_FIELDS = ("arch", "zone")


class MatchError(ValueError):
    """The pool, the profiles or the names given to matching cannot be used."""


class ProfileError(MatchError):
    """A hardware profile is missing, has an unknown field or a bad value."""


class NoPoolError(MatchError):
    """There is no transit server at all to choose from."""


class NoMatchError(MatchError):
    """No server of the pool can ever serve the customer server; ``reasons`` by server name."""

    def __init__(self, message, reasons):
        super(NoMatchError, self).__init__(message)
        self.reasons = reasons


def _is_number(value):
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and not (isinstance(value, float) and (math.isnan(value) or math.isinf(value))))


def validate_profile(profile, server):
    """The profile as a new dict, every field checked; ``server`` names it in the errors."""
    if not isinstance(profile, dict):
        raise ProfileError("%s has no hardware profile (server_profile): give it as {cores, memory_gib, disk_gb, "
                           "arch, zone}, got %r" % (server, profile))
    unknown = sorted(str(key) for key in profile if key not in PROFILE_FIELDS)
    if unknown:
        raise ProfileError("the hardware profile of %s has unknown field%s %s (known: %s)" % (
            server, "" if len(unknown) == 1 else "s", ", ".join(unknown), ", ".join(PROFILE_FIELDS)))
    missing = [field for field in PROFILE_FIELDS if field not in profile]
    if missing:
        raise ProfileError("the hardware profile of %s lacks %s" % (server, ", ".join(missing)))
    checked = {}
    for field in NUMBER_FIELDS:
        value = profile[field]
        whole = field == "cores"
        if not _is_number(value) or value <= 0 or (whole and not isinstance(value, int)):
            raise ProfileError("the hardware profile of %s has %s %r: it must be %s, more than 0" % (
                server, field, value, PROFILE_FIELDS[field]))
        checked[field] = value
    for field in TEXT_FIELDS:
        value = profile[field]
        if not isinstance(value, str) or not value.strip():
            raise ProfileError("the hardware profile of %s has %s %r: it must be %s, not empty" % (
                server, field, value, PROFILE_FIELDS[field]))
        checked[field] = value
    return checked


def _name(value, what):
    if not isinstance(value, str) or not value.strip():
        raise MatchError("%s must be a server name, got %r" % (what, value))
    return value


def _version(value, server):
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
        raise MatchError("%s has no infrastructure version (infrastructure_version), got %r" % (server, value))
    return str(value)


def _quantity(value):
    return "%d" % value if value == int(value) else "%g" % value


def reasons_against(candidate, profile, version, customer_name, customer_profile, target_version):
    """Sentences saying why ``candidate`` cannot serve the customer server; empty if it can."""
    found = []
    cores, needed = profile["cores"], customer_profile["cores"]
    if cores < needed:
        found.append("%s has %d core%s, %s needs %d" % (
            candidate, cores, "" if cores == 1 else "s", customer_name, needed))
    for field, unit in (("memory_gib", "GiB of memory"), ("disk_gb", "GB of disk")):
        if profile[field] < customer_profile[field]:
            found.append("%s has %s %s, %s needs %s" % (
                candidate, _quantity(profile[field]), unit, customer_name, _quantity(customer_profile[field])))
    if profile["arch"] != customer_profile["arch"]:
        found.append("%s is %s, %s is %s" % (candidate, profile["arch"], customer_name, customer_profile["arch"]))
    if profile["zone"] != customer_profile["zone"]:
        found.append("%s is in zone %s, %s in zone %s (its IP addresses can only be rerouted within a zone)" % (
            candidate, profile["zone"], customer_name, customer_profile["zone"]))
    if version != target_version:
        found.append("%s runs infrastructure %s, not the target %s" % (candidate, version, target_version))
    return found


def _fit_key(entry):
    profile = entry["profile"]
    return (profile["cores"], profile["memory_gib"], profile["disk_gb"], entry["name"])


def parse_candidates(candidates):
    """The candidates checked: each ``{name, profile, infrastructure_version}``, names unique."""
    if not isinstance(candidates, list):
        raise MatchError("the transit pool must be a list of {name, profile, infrastructure_version}, got %s"
                         % type(candidates).__name__)
    parsed, seen = [], set()
    for index, entry in enumerate(candidates):
        if not isinstance(entry, dict):
            raise MatchError("transit pool entry %d is not {name, profile, infrastructure_version}: %r"
                             % (index, entry))
        name = _name(entry.get("name"), "transit pool entry %d's name" % index)
        if name in seen:
            raise MatchError("transit server %s is listed twice in the pool" % name)
        seen.add(name)
        parsed.append({
            "name": name,
            "profile": validate_profile(entry.get("profile"), name),
            "infrastructure_version": _version(entry.get("infrastructure_version"), name),
        })
    return parsed


def match(customer_name, customer_profile, target_version, candidates):
    """The transit servers that can serve the customer server, and why the others cannot.

    Returns ``{customer_server, target_version, matching, rejected}``: ``matching`` the names,
    best fit first; ``rejected`` by name (in the pool's order) the sentences against each.
    Raises ``NoPoolError`` for an empty pool, ``NoMatchError`` when nothing matches, and
    ``ProfileError`` or ``MatchError`` for bad input, before anything is compared.
    """
    customer_name = _name(customer_name, "the customer server")
    customer_profile = validate_profile(customer_profile, customer_name)
    target_version = _version(target_version, "the target of %s" % customer_name)
    pool = parse_candidates(candidates)
    if not pool:
        raise NoPoolError("no transit server can serve %s: the pool is empty (put transit servers in the "
                          "inventory group transit_pool, each with server_profile and infrastructure_version)"
                          % customer_name)
    matching, rejected = [], {}
    for entry in pool:
        reasons = reasons_against(entry["name"], entry["profile"], entry["infrastructure_version"],
                                  customer_name, customer_profile, target_version)
        if reasons:
            rejected[entry["name"]] = reasons
        else:
            matching.append(entry)
    if not matching:
        raise NoMatchError("nothing in the pool can serve %s (%s, infrastructure %s): %s" % (
            customer_name, describe_profile(customer_profile), target_version,
            "; ".join(", ".join(reasons) for reasons in rejected.values())), rejected)
    return {
        "customer_server": customer_name,
        "target_version": target_version,
        "matching": [entry["name"] for entry in sorted(matching, key=_fit_key)],
        "rejected": rejected,
    }


def describe_profile(profile):
    return "%d core%s, %s GiB, %s GB, %s, zone %s" % (
        profile["cores"], "" if profile["cores"] == 1 else "s", _quantity(profile["memory_gib"]),
        _quantity(profile["disk_gb"]), profile["arch"], profile["zone"])


def free_matches(result, busy):
    """The matching names of ``match``'s result that are not in ``busy``, best fit first.

    An empty list means matching servers exist but every one is leased: the request waits.
    """
    if isinstance(busy, (str, bytes)) or not hasattr(busy, "__iter__"):
        raise MatchError("the busy transit servers must be a set or list of names, got %r" % (busy,))
    busy = set(busy)
    return [name for name in result["matching"] if name not in busy]


def first_free(result, busy):
    """The best free match, or None when every matching server is leased."""
    free = free_matches(result, busy)
    return free[0] if free else None
