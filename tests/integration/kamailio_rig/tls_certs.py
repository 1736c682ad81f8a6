"""A throw-away certificate authority and server certificate, made with the openssl command.

Clients in the tests trust the CA file (an ssl context with `cafile=`), so certificate checks stay
switched on. Keys are P-256 (quick to make) and valid for a few days only.
"""

from __future__ import annotations

import ipaddress
import secrets
import shutil
import subprocess
from pathlib import Path

import attrs

_OPENSSL_TIMEOUT = 30.0
_VALID_DAYS = 7


@attrs.frozen
class ServerCertificate:
    """Files of one generated CA and the server certificate it signed."""

    ca_file: Path
    certificate: Path
    private_key: Path


def _subject_alt_names(names: list[str]) -> str:
    entries: list[str] = []
    for name in dict.fromkeys(names):
        try:
            ipaddress.ip_address(name)
        except ValueError:
            entries.append(f"DNS:{name}")
        else:
            entries.append(f"IP:{name}")
    return ", ".join(entries)


def _openssl(*args: str) -> None:
    binary = shutil.which("openssl")
    if binary is None:
        raise RuntimeError("the openssl command is missing; run tests/install_test_deps.sh")
    done = subprocess.run([binary, *args], capture_output=True, text=True, timeout=_OPENSSL_TIMEOUT, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed ({done.returncode}): {done.stderr.strip()[-800:]}")


def make_server_certificate(directory: Path, names: list[str]) -> ServerCertificate:
    """Create a CA and a server certificate for `names` (IP addresses or DNS names) in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "openssl.cnf"
    config.write_text(
        "[req]\n"
        "distinguished_name = dn\n"
        "prompt = no\n"
        "[dn]\n"
        "CN = placeholder\n"
        "[ca]\n"
        "basicConstraints = critical, CA:TRUE\n"
        "keyUsage = critical, keyCertSign, cRLSign\n"
        "subjectKeyIdentifier = hash\n"
        "[server]\n"
        "basicConstraints = critical, CA:FALSE\n"
        "keyUsage = critical, digitalSignature\n"
        "extendedKeyUsage = serverAuth\n"
        f"subjectAltName = {_subject_alt_names(names)}\n"
        "subjectKeyIdentifier = hash\n"
        "authorityKeyIdentifier = keyid, issuer\n"
    )
    ca_key, ca_file = directory / "ca.key", directory / "ca.crt"
    key, request, certificate = directory / "server.key", directory / "server.csr", directory / "server.crt"
    new_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    # A random serial-like tag in the CA's name keeps CAs of parallel runs apart in any trust store.
    _openssl("req", "-x509", "-config", str(config), "-extensions", "ca", *new_key, "-keyout", str(ca_key),
             "-out", str(ca_file), "-days", str(_VALID_DAYS), "-subj", f"/CN=ucma test CA {secrets.token_hex(4)}")
    _openssl("req", "-new", "-config", str(config), *new_key, "-keyout", str(key), "-out", str(request),
             "-subj", f"/CN={names[0]}")
    _openssl("x509", "-req", "-in", str(request), "-CA", str(ca_file), "-CAkey", str(ca_key),
             "-set_serial", str(secrets.randbits(63)), "-days", str(_VALID_DAYS),
             "-extfile", str(config), "-extensions", "server", "-out", str(certificate))
    request.unlink()
    return ServerCertificate(ca_file=ca_file, certificate=certificate, private_key=key)
