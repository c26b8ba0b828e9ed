"""Strict stand-ins for FreeBSD-only commands, one module per command family."""
