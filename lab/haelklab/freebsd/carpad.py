"""One CARP advertisement, sent now: what carp(4) does the moment net.inet.carp.demotion changes.

FreeBSD's carp_demote_adj() queues carp_sendall_task, so every MASTER vhid advertises its new
(demoted) skew at once, and a BACKUP peer with preemption that hears a slower master takes
over on that advertisement (carp_input -> carp_master_down), without waiting for the master
to time out. ucarp cannot change its skew while it runs, so carp.demote() stops the master's
speaker, sends the advertisement the kernel would have sent with this module, keeps the VIP
until it hears a preferred master (a demoted FreeBSD master stays MASTER until then), and
starts a new speaker with the demoted skew.

The packet is the CARP v2 advertisement ucarp (and FreeBSD) accept: IP protocol 112 to
224.0.0.18 with TTL 255 from the member's own address, a 36-byte header (version 2, type 1,
vhid, advskew, authlen 7, advbase, checksum, a 64-bit counter) and the HMAC-SHA1 of the
password over version, type, vhid, the VIP and the counter.
"""
import hashlib
import ipaddress
import os
import select
import socket
import struct
import time

IPPROTO_CARP = 112
GROUP = "224.0.0.18"
TTL = 255            # CARP_DFLTTL: receivers drop any other TTL
VERSION, ADVERTISEMENT = 2, 1
AUTHLEN = 7          # the header's length in 32-bit words after the first 8 bytes
KEY_LEN = 20         # CARP_KEY_LEN
PAD_LEN = 64         # the SHA-1 block the key is padded to (RFC 2104's B)


def _checksum(data):
    """The Internet checksum (RFC 1071) of DATA."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _digest(password, vhid, vip, counter):
    """carp(4)'s HMAC-SHA1: key = the password in 20 bytes, message = version, type, vhid,
    VIP and the counter (network order)."""
    key = password.encode()[:KEY_LEN - 1].ljust(PAD_LEN, b"\0")
    ipad = bytes(b ^ 0x36 for b in key)
    opad = bytes(b ^ 0x5C for b in key)
    message = bytes([VERSION, ADVERTISEMENT, vhid]) + ipaddress.IPv4Address(vip).packed
    inner = hashlib.sha1(ipad + message + counter).digest()
    return hashlib.sha1(opad + inner).digest()


def advertisement(vhid, advbase, advskew, password, vip, counter=None):
    """The CARP header and HMAC (36 bytes) of one advertisement; COUNTER (8 bytes) random
    unless given, as a speaker that just started picks one."""
    counter = os.urandom(8) if counter is None else counter
    md = _digest(password, vhid, vip, counter)
    head = struct.pack("!BBBBBBH", (VERSION << 4) | ADVERTISEMENT, vhid, advskew, AUTHLEN,
                       0, advbase, 0)
    packet = head + counter + md
    return packet[:6] + struct.pack("!H", _checksum(packet)) + packet[8:]


def send(srcip, vhid, advbase, advskew, password, vip):
    """Send one advertisement from SRCIP (the member's own address, in this network
    namespace) to the CARP group."""
    packet = advertisement(vhid, advbase, advskew, password, vip)
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, IPPROTO_CARP) as s:
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, TTL)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(srcip))
        s.bind((srcip, 0))
        s.sendto(packet, (GROUP, 0))


def _preferred(packet, srcip, vhid, advbase, advskew, password, vip):
    """True if PACKET (an IP datagram) is a valid advertisement for VHID from another member
    that advertises more often than (ADVBASE, ADVSKEW): the master carp(4) yields to."""
    ihl = (packet[0] & 0x0F) * 4 if packet else 0
    head = packet[ihl:ihl + 36]
    if len(head) < 36 or socket.inet_ntoa(packet[12:16]) == srcip or packet[8] != TTL:
        return False
    if head[0] != (VERSION << 4) | ADVERTISEMENT or head[1] != vhid:
        return False
    if _digest(password, vhid, vip, head[8:16]) != head[16:36]:
        return False  # another password or VIP: not a member of this vhid
    return (head[5], head[2]) < (advbase, advskew)


def wait_for_preferred(srcip, vhid, advbase, advskew, password, vip, timeout):
    """Seconds until a preferred master of VHID advertised (heard in this namespace from
    SRCIP's interface), or None after TIMEOUT seconds."""
    start = time.monotonic()
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, IPPROTO_CARP) as s:
        membership = socket.inet_aton(GROUP) + socket.inet_aton(srcip)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
        while (left := timeout - (time.monotonic() - start)) > 0:  # waits for the peer
            ready, _, _ = select.select([s], [], [], left)
            if ready and _preferred(s.recv(2048), srcip, vhid, advbase, advskew, password,
                                    vip):
                return time.monotonic() - start
    return None
