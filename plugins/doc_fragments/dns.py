# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type


class ModuleDocFragment(object):

    DOCUMENTATION = r"""
options:
  zones:
    description:
      - The provider's DNS zones, as in the inventory variable C(provider_dns_zones).
      - Each zone is read with a TSIG-signed zone transfer (AXFR) and changed with TSIG-signed
        RFC 2136 updates over TCP, so its primary server must allow both for the key
        (C(allow-transfer { key NAME; };) and C(update-policy { grant NAME zonesub ANY; };) in BIND,
        see the collection's C(docs/dns.md)).
    type: list
    elements: dict
    required: true
    suboptions:
      zone:
        description: The zone's name, for example C(hosted.test).
        type: str
        required: true
      server:
        description: The zone's primary name server (an address, or a host name the controller resolves).
        type: str
        required: true
      port:
        description: The name server's port.
        type: int
        default: 53
      key_name:
        description: Name of the TSIG key allowed to transfer and update the zone.
        type: str
        required: true
      key_algorithm:
        description: Algorithm of the TSIG key.
        type: str
        default: hmac-sha256
        choices: [hmac-sha256, hmac-sha384, hmac-sha512, hmac-sha224, hmac-sha1, hmac-md5]
  key_secret:
    description:
      - The TSIG key's secret (base64), the same for every zone (inventory variable
        C(provider_dns_key_secret)).
      - When not given, the environment variable E(HOSTING_DNS_KEY_SECRET) is used; one of them is required.
    type: str
  timeout:
    description:
      - Seconds to wait for each answer of a name server; a zone transfer may take up to six times that.
    type: int
    default: 10
requirements:
  - "dnspython >= 2.0 on the host that runs the module (the controller, with C(delegate_to: localhost))"
notes:
  - "The module talks to the name servers over the network; run it on the controller with
    C(delegate_to: localhost) (and C(run_once: true) when the play has several hosts)."
"""
