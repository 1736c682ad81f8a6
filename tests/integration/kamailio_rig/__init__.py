"""Real servers for integration tests: a private Kamailio (registrar, presence, XCAP) and SIPp registrars."""

from __future__ import annotations

from .ports import pick_free_port, pick_free_ports
from .raw_sip import ConnectionDropped, RawResponse, SipClientSocket, register_with_digest
from .rig import Binding, KamailioRig, KamailioRigError, KamailioRpcError, MakeKamailio
from .sipp_server import MakeSippServer, SippError, SippServer

__all__ = [
    "Binding",
    "ConnectionDropped",
    "KamailioRig",
    "KamailioRigError",
    "KamailioRpcError",
    "MakeKamailio",
    "MakeSippServer",
    "RawResponse",
    "SipClientSocket",
    "SippError",
    "SippServer",
    "pick_free_port",
    "pick_free_ports",
    "register_with_digest",
]
