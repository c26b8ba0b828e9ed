"""haelk's local lab: simulated FreeBSD hosts on one Linux machine.

Real sshd, real ZFS (zfs-fuse) and real haproxy; strict stand-ins for the
FreeBSD-only commands. See lab/README.md for what is real and what is simulated.
"""
