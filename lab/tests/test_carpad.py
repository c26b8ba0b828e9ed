"""The CARP advertisement the lab sends for a demoted master (haelklab.freebsd.carpad), pure:
its header, checksum and HMAC, and which received advertisements count as a preferred
master. That ucarp accepts it is tested in test_lab_carp.py."""
import os
import socket
import struct
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from haelklab.freebsd import carpad  # noqa: E402

pytestmark = pytest.mark.standalone  # needs no lab: lab/run-selftests --standalone

VIP, OURS, PEER = "192.0.2.210", "192.0.2.201", "192.0.2.202"
COUNTER = bytes(range(8))


def datagram(src, payload, ttl=carpad.TTL):
    """An IPv4 header (no options) from SRC to the CARP group, then PAYLOAD."""
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0, ttl,
                       carpad.IPPROTO_CARP, 0, socket.inet_aton(src),
                       socket.inet_aton(carpad.GROUP)) + payload


def test_the_header_carries_vhid_skew_base_and_a_checksum_that_verifies():
    packet = carpad.advertisement(7, 1, 240, "s3cret", VIP, counter=COUNTER)
    assert len(packet) == 36
    assert packet[0] == 0x21 and packet[1] == 7 and packet[2] == 240
    assert packet[3] == carpad.AUTHLEN and packet[5] == 1 and packet[8:16] == COUNTER
    assert carpad._checksum(packet) == 0


def test_the_hmac_depends_on_password_vhid_vip_and_counter():
    md = carpad.advertisement(7, 1, 0, "s3cret", VIP, counter=COUNTER)[16:]
    assert md == carpad.advertisement(7, 1, 200, "s3cret", VIP, counter=COUNTER)[16:]
    for other in (dict(password="other"), dict(vhid=8), dict(vip="192.0.2.211"),
                  dict(counter=bytes(8))):
        args = dict(vhid=7, advbase=1, advskew=0, password="s3cret", vip=VIP, counter=COUNTER)
        assert carpad.advertisement(**{**args, **other})[16:] != md, other


def test_only_characters_carp_keeps_are_in_the_key():
    long = "x" * 19
    assert (carpad.advertisement(1, 1, 0, long + "ignored", VIP, counter=COUNTER)
            == carpad.advertisement(1, 1, 0, long, VIP, counter=COUNTER))


@pytest.mark.parametrize("src, vhid, advbase, advskew, password, ttl, preferred", [
    (PEER, 1, 1, 100, "s3cret", 255, True),     # faster than our demoted 240
    (PEER, 1, 1, 240, "s3cret", 255, False),    # as slow as us
    (PEER, 1, 2, 0, "s3cret", 255, False),      # a longer advbase is slower whatever the skew
    (OURS, 1, 1, 0, "s3cret", 255, False),      # our own advertisement
    (PEER, 2, 1, 0, "s3cret", 255, False),      # another vhid
    (PEER, 1, 1, 0, "other", 255, False),       # another password: not a member
    (PEER, 1, 1, 0, "s3cret", 64, False),       # routed (TTL not 255): carp(4) drops it
])
def test_a_preferred_master_is_a_valid_faster_member_of_the_vhid(
        src, vhid, advbase, advskew, password, ttl, preferred):
    packet = datagram(src, carpad.advertisement(vhid, advbase, advskew, password, VIP), ttl)
    assert carpad._preferred(packet, OURS, 1, 1, 240, "s3cret", VIP) == preferred


def test_truncated_packets_are_not_a_master():
    packet = datagram(PEER, carpad.advertisement(1, 1, 0, "s3cret", VIP))
    assert not carpad._preferred(packet[:40], OURS, 1, 1, 240, "s3cret", VIP)
    assert not carpad._preferred(b"", OURS, 1, 1, 240, "s3cret", VIP)
