"""``NetworkCredential``: user name, password and domain for server challenges; the password never prints."""

from __future__ import annotations


class NetworkCredential:
    """Credentials for digest or NTLM challenges (System.Net.NetworkCredential's shape).

    ``repr``/``str`` never show the password, so credentials are safe in logs and tracebacks.
    """

    __slots__ = ("_password", "domain", "user_name")

    def __init__(self, user_name: str, password: str, domain: str = "") -> None:
        self.user_name = user_name
        self._password = password
        self.domain = domain

    @property
    def password(self) -> str:
        """The password (read it only to answer a challenge)."""
        return self._password

    def __repr__(self) -> str:
        domain = f", domain={self.domain!r}" if self.domain else ""
        return f"NetworkCredential(user_name={self.user_name!r}{domain}, password=<redacted>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NetworkCredential):
            return NotImplemented
        return (self.user_name, self._password, self.domain) == (other.user_name, other._password, other.domain)

    def __hash__(self) -> int:
        return hash((self.user_name, self.domain))
