#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r"""
module: ip_reroute
short_description: Move a server's service addresses to another server, and back
version_added: 0.1.0
description:
  - Moves the service addresses of a customer server (O(from_server)) to another server
    (O(to_server)), typically the transit server during a reinstall, and later back. A move is four
    steps, each a task on the host it concerns; the collection's C(docs/ip-reroute.md) describes
    them and the switch time they measure.
  - V(check) (on the new owner) changes nothing. With O(driver=onlink) it checks, per address,
    that it lies in a prefix of one of this host's interfaces (the same segment as the old owner),
    that O(from_mac) answers for it (ARP probe for IPv4, neighbour solicitation for IPv6), and that
    no other host does. An address this host already holds, that the old owner no longer answers
    for, is reported as C(moved) (a re-run after the move).
  - V(release) (on the old owner) removes the addresses from its interface (C(ip address del)).
    Addresses it does not hold are left alone. An IPv4 address that is the primary of its prefix,
    with other addresses of the prefix on the interface, is refused unless C(promote_secondaries)
    is on (the kernel would remove the others with it).
  - V(claim) (on the new owner) adds the addresses (C(ip address add), IPv6 with C(nodad)) and
    announces every address, already there or not, O(announcements) times 0.2 s apart - a
    gratuitous ARP request and reply for IPv4, an unsolicited neighbour advertisement (override
    flag, target link-layer address, to C(ff02::1), hop limit 255) for IPv6 - so the neighbours on
    the segment send to the new owner at once.
  - V(verify) (on a third host, for example the controller with C(delegate_to=localhost)) opens a
    TCP connection to O(port) of every address every 20 ms until it answers (SYN-ACK or reset) and
    this host's neighbour entry for the address is O(to_mac), or O(timeout) passes. It returns per
    address the time from O(since) to that first good answer.
  - With O(driver=command), V(claim) runs the operator's script O(command) once per address, as
    C(COMMAND ADDRESS FROM_SERVER TO_SERVER), without a shell, on the host the task runs on;
    V(release) changes nothing; V(check) checks the script and that each address answers from
    this host (and not from a third MAC, when the MACs are given); V(verify) works as above.
  - Bad input fails before anything changes - an address that is not an IP address, or not one
    of O(owned); an interface that does not exist; a MAC that is not this host's.
author: hosting.migration developers (!UNKNOWN)
extends_documentation_fragment:
  - hosting.migration.accounts.ATTRIBUTES
attributes:
  check_mode:
    support: full
    details: V(check) and V(verify) only read; V(release) and V(claim) report what they would change.
  diff_mode:
    support: partial
    details: With O(driver=onlink), V(release) and V(claim) show the interface addresses before and after.
  idempotent:
    support: full
    details:
      - A second V(release) or V(claim) changes nothing; V(claim) announces the addresses again.
      - With O(driver=command) the script runs every time; it reports no change by printing
        C(unchanged) as its last line.
options:
  step:
    description: Which step of the move to run (see the description).
    type: str
    required: true
    choices: [check, release, claim, verify]
  driver:
    description:
      - V(onlink) moves the addresses between two servers on one layer-2 segment (the lab, a
        provider's VLAN).
      - V(command) runs the operator's script for each address (a provider's failover API).
    type: str
    default: onlink
    choices: [onlink, command]
  addresses:
    description:
      - The addresses to move, IPv4 or IPv6, without prefix length.
      - Each must be in O(owned).
    type: list
    elements: str
    required: true
  owned:
    description:
      - The service addresses of O(from_server), from the inventory variable C(service_addresses);
        addresses outside this list are refused, so a typo cannot take another customer's address.
    type: list
    elements: str
    required: true
  from_server:
    description: Name of the server the addresses belong to (the old owner in this move), used in messages and passed to O(command).
    type: str
    required: true
  to_server:
    description: Name of the server the addresses move to (the new owner), used in messages and passed to O(command).
    type: str
    required: true
  from_mac:
    description:
      - The old owner's MAC address on the segment (inventory variable C(lab_mac) in the lab).
      - Required for V(check) with O(driver=onlink). With V(release), the interface holding the
        addresses must have it (so release runs on the right server).
    type: str
  to_mac:
    description:
      - The new owner's MAC address on the segment.
      - Required for V(verify) with O(driver=onlink). With V(check) and V(claim), the interface
        the addresses go to must have it.
      - With O(driver=command) and a vantage point behind a router, leave it out; V(verify) then
        accepts any answer.
    type: str
  interface:
    description:
      - The interface the addresses are on (release) or go to (check, claim).
      - Default the interface whose prefix contains each address.
    type: str
  command:
    description:
      - Absolute path of the operator's script for O(driver=command), run as C(COMMAND ADDRESS
        FROM_SERVER TO_SERVER); exit status 0 means done; a last output line C(unchanged) means
        the address was already routed there.
    type: path
  command_timeout:
    description: Seconds the script may run for each address before the step fails.
    type: int
    default: 120
  announcements:
    description: How many rounds of gratuitous ARP and neighbour advertisements V(claim) sends.
    type: int
    default: 3
  since:
    description:
      - Epoch seconds (float) the switch time is measured from in V(verify), typically the
        C(released_at) of the V(release) step.
      - Default the start of the V(verify) step.
    type: float
  timeout:
    description: Seconds V(verify) waits for every address to answer from the new owner.
    type: float
    default: 30
  port:
    description: TCP port V(verify) (and V(check) with O(driver=command)) connects to.
    type: int
    default: 80
requirements:
  - C(ip) from iproute2 on the servers (and on the vantage point of V(verify), for its neighbour table).
  - Root or CAP_NET_RAW on the servers for V(check) and V(claim) with O(driver=onlink) (raw sockets).
notes:
  - The on-link driver only works between servers on one layer-2 segment. Hosts that miss the
    announcements keep sending to the old owner until their neighbour entry expires (a few seconds
    on Linux); V(verify) measures what one vantage point sees.
  - The switch time is measured with the clocks of the old owner (O(since) from V(release)) and
    of the vantage point; they must be synchronised (in the lab they are one clock).
seealso:
  - module: hosting.migration.ledger
"""

EXAMPLES = r"""
- name: Check that the transit server can take the addresses
  hosting.migration.ip_reroute:
    step: check
    addresses: "{{ hostvars['dedicated1'].service_addresses }}"
    owned: "{{ hostvars['dedicated1'].service_addresses }}"
    from_server: dedicated1
    to_server: transit1
    from_mac: "{{ hostvars['dedicated1'].lab_mac }}"
    to_mac: "{{ hostvars['transit1'].lab_mac }}"
  delegate_to: transit1

- name: Release them on the customer's server
  hosting.migration.ip_reroute:
    step: release
    addresses: "{{ hostvars['dedicated1'].service_addresses }}"
    owned: "{{ hostvars['dedicated1'].service_addresses }}"
    from_server: dedicated1
    to_server: transit1
    from_mac: "{{ hostvars['dedicated1'].lab_mac }}"
  delegate_to: dedicated1
  register: released

- name: Claim and announce them on the transit server
  hosting.migration.ip_reroute:
    step: claim
    addresses: "{{ hostvars['dedicated1'].service_addresses }}"
    owned: "{{ hostvars['dedicated1'].service_addresses }}"
    from_server: dedicated1
    to_server: transit1
    to_mac: "{{ hostvars['transit1'].lab_mac }}"
  delegate_to: transit1

- name: Verify from the controller and measure the switch
  hosting.migration.ip_reroute:
    step: verify
    addresses: "{{ hostvars['dedicated1'].service_addresses }}"
    owned: "{{ hostvars['dedicated1'].service_addresses }}"
    from_server: dedicated1
    to_server: transit1
    from_mac: "{{ hostvars['dedicated1'].lab_mac }}"
    to_mac: "{{ hostvars['transit1'].lab_mac }}"
    since: "{{ released.released_at }}"
  delegate_to: localhost

- name: Move an address through the provider's failover API
  hosting.migration.ip_reroute:
    step: claim
    driver: command
    command: /usr/local/bin/failover-route
    addresses: [203.0.113.21]
    owned: [203.0.113.21]
    from_server: dedicated1
    to_server: transit1
  delegate_to: localhost
"""

RETURN = r"""
step:
  description: The step that ran.
  returned: always
  type: str
  sample: claim
driver:
  description: The driver used.
  returned: always
  type: str
  sample: onlink
addresses:
  description: One entry per address, in the order of O(addresses).
  returned: always
  type: list
  elements: dict
  contains:
    address:
      description: The address.
      type: str
      sample: 10.77.0.21
    family:
      description: V(ipv4) or V(ipv6).
      type: str
      sample: ipv4
    changed:
      description: Whether the step changed something for this address (in check mode, would).
      type: bool
    status:
      description:
        - V(ready) (the old owner answers for it, nobody else) or V(moved) (the new owner already
          holds it, the old owner no longer answers).
      returned: step V(check)
      type: str
      sample: ready
    answered_by:
      description: The MAC addresses that answered for the address (this host's own left out).
      returned: step V(check)
      type: list
      elements: str
      sample: ["02:77:00:00:00:20"]
    interface:
      description: The interface the address is on, or goes to; null when release found it absent.
      returned: steps V(check), V(release), V(claim) with O(driver=onlink)
      type: str
      sample: eth0
    announcements:
      description: Rounds of announcements sent (0 in check mode).
      returned: step V(claim) with O(driver=onlink)
      type: int
      sample: 3
    rc:
      description: Exit status of the script (null in check mode).
      returned: step V(claim) with O(driver=command)
      type: int
    stdout:
      description: The script's output (its last 4000 characters).
      returned: step V(claim) with O(driver=command)
      type: str
    stderr:
      description: The script's error output (its last 4000 characters).
      returned: step V(claim) with O(driver=command)
      type: str
    answered_by_mac:
      description: The MAC the first good answer came through (null without O(to_mac) through a router).
      returned: step V(verify)
      type: str
      sample: "02:77:00:00:00:30"
    answered_at:
      description: Epoch seconds of the first good answer.
      returned: step V(verify)
      type: float
    switch_s:
      description: Seconds from O(since) to the first good answer.
      returned: step V(verify)
      type: float
      sample: 0.412
    last_old_answer_at:
      description:
        - Epoch seconds of the last answer from O(from_mac), when V(verify) started before the
          move (an asynchronous task) and saw the old owner answer; otherwise null.
      returned: step V(verify)
      type: float
    outage_s:
      description: Seconds between the last answer from the old owner and the first from the new one, when both were seen.
      returned: step V(verify)
      type: float
released_at:
  description: Epoch seconds just before the addresses were removed; the O(since) for V(verify).
  returned: step V(release)
  type: float
  sample: 1795568712.31
already_moved:
  description: Whether every address is already on the new owner.
  returned: step V(check)
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hosting.migration.plugins.module_utils.ip_reroute import (
    IP_REROUTE_ARGUMENT_SPEC, run_ip_reroute)


def main():
    module = AnsibleModule(argument_spec=IP_REROUTE_ARGUMENT_SPEC, supports_check_mode=True,
                           required_if=[("driver", "command", ("command",))])
    result = run_ip_reroute(module)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
