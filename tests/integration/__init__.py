"""Integration tests against real servers (Kamailio, SIPp) on loopback."""
