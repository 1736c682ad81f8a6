"""UCMA's exception tree (``Microsoft.Rtc.Signaling``) and the reason enums its members carry.

Everything ucma raises for a failed operation is a :class:`RealTimeException`, an
:class:`InvalidOperationException` (wrong object state, raised synchronously by ``begin_x``)
or an :class:`ArgumentException`, as in UCMA.  Messages never include passwords or
Authorization values: callers pass redacted text only.
"""

from __future__ import annotations

import enum
import traceback
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ucma.signaling.diagnostics import DiagnosticHeader
    from ucma.signaling.message_data import SipResponseData
    from ucma.signaling.registration_states import RegistrationTransitionReason

__all__ = [
    "ArgumentException",
    "ArgumentNullException",
    "AuthenticationException",
    "AuthenticationFailureReason",
    "ConnectionFailureException",
    "FailureRequestException",
    "FailureResponseException",
    "InvalidOperationException",
    "InvalidOperationReason",
    "MessageParsingException",
    "OperationFailureException",
    "OperationFailureReason",
    "OperationTimeoutException",
    "PublishSubscribeException",
    "RealTimeException",
    "RealTimeInvalidOperationException",
    "RegisterException",
    "ServerPolicyException",
    "TlsFailureException",
    "TlsFailureReason",
]


class AuthenticationFailureReason(enum.Enum):
    """Why authentication failed (UCMA ``AuthenticationFailureReason``)."""

    NONE = 0
    INVALID_CREDENTIALS = 1
    MISSING_CREDENTIALS = 2
    NO_AUTHENTICATING_AUTHORITY = 3
    NO_COMMON_PROTOCOLS = 4
    SKEWED_CLOCK = 5
    UNCHALLENGING_SERVER = 6


class OperationFailureReason(enum.Enum):
    """Why an operation failed without a failure response (UCMA ``OperationFailureReason``)."""

    UNKNOWN = 0
    ENDPOINT_TERMINATED = 1
    SESSION_TERMINATED = 2
    ABORTED = 3
    CONNECTION_THROTTLING = 4
    INVALID_SESSION_STATE = 5
    SESSION_TERMINATED_AFTER_200_RESPONSE = 6
    SESSION_RETRYING = 7
    MEDIA_FAILURE = 8


class InvalidOperationReason(enum.Enum):
    """Hint carried by :class:`RealTimeInvalidOperationException` (UCMA ``InvalidOperationReason``)."""

    NONE = 0
    RETRYABLE_OPERATION = 1
    NOT_INITIALIZED = 2


class TlsFailureReason(enum.Enum):
    """What went wrong in a TLS handshake (UCMA ``TlsFailureReason``)."""

    UNKNOWN = 0
    REMOTE_CERTIFICATE_REJECTED = 1
    LOCAL_CERTIFICATE_REJECTED = 2
    HOST_NAME_MISMATCH = 3
    CERTIFICATE_EXPIRED = 4


class RealTimeException(Exception):
    """Root of UCMA-specific failures; carries the stack where the error was detected."""

    def __init__(self, message: str = "", inner_exception: BaseException | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.inner_exception = inner_exception
        if inner_exception is not None:
            self.__cause__ = inner_exception
        # Captured cheaply (no source lines) so hostile input cannot make failures expensive.
        self._detection_stack = traceback.StackSummary.extract(traceback.walk_stack(None), limit=16, lookup_lines=False)

    @property
    def detection_stack_trace(self) -> str:
        """The stack where the error was detected, innermost frame last."""
        return "".join(reversed(self._detection_stack.format()))

    def __str__(self) -> str:
        return self.message


class FailureResponseException(RealTimeException):
    """A request was answered with a 3xx-6xx final response (``response_data`` holds it)."""

    def __init__(
        self,
        message: str = "",
        response_data: SipResponseData | None = None,
        inner_exception: BaseException | None = None,
    ) -> None:
        super().__init__(message, inner_exception)
        self.response_data = response_data

    @property
    def diagnostic_information(self) -> DiagnosticHeader | None:
        """The parsed ``ms-diagnostics`` (else ``ms-diagnostics-public``) header of the response."""
        if self.response_data is None:
            return None
        from ucma.signaling.diagnostics import DiagnosticHeader  # noqa: PLC0415  (cycle-free lazy import)

        return DiagnosticHeader.from_message(self.response_data.message)

    @property
    def warning_information(self) -> list[str]:
        """Raw ``Warning`` header values of the response, in order."""
        if self.response_data is None:
            return []
        return self.response_data.message.headers.get_all("Warning")


class PublishSubscribeException(FailureResponseException):
    """A SUBSCRIBE/SERVICE/PUBLISH (or XCAP write) failed; ``fault_code`` is the server's fault, if any."""

    def __init__(
        self,
        message: str = "",
        response_data: SipResponseData | None = None,
        inner_exception: BaseException | None = None,
        *,
        fault_code: str = "",
    ) -> None:
        super().__init__(message, response_data, inner_exception)
        self.fault_code = fault_code


class RegisterException(FailureResponseException):
    """REGISTER failed; ``deregister_reason`` says why the registration ended."""

    def __init__(
        self,
        message: str = "",
        response_data: SipResponseData | None = None,
        inner_exception: BaseException | None = None,
        *,
        deregister_reason: RegistrationTransitionReason | None = None,
    ) -> None:
        super().__init__(message, response_data, inner_exception)
        self.deregister_reason = deregister_reason


class AuthenticationException(FailureResponseException):
    """Authentication with the server failed; ``failure_reason`` says how."""

    def __init__(
        self,
        message: str = "",
        response_data: SipResponseData | None = None,
        inner_exception: BaseException | None = None,
        *,
        failure_reason: AuthenticationFailureReason = AuthenticationFailureReason.NONE,
        realm: str = "",
        supported_authentication_protocols: tuple[str, ...] = (),
        error_code: int = 0,
    ) -> None:
        super().__init__(message, response_data, inner_exception)
        self.failure_reason = failure_reason
        self.realm = realm
        self.supported_authentication_protocols = supported_authentication_protocols
        self.error_code = error_code


class ServerPolicyException(FailureResponseException):
    """The server refused the request by policy; the Warning header is split into its parts."""

    def __init__(
        self,
        message: str = "",
        response_data: SipResponseData | None = None,
        inner_exception: BaseException | None = None,
        *,
        warning_code: int = 0,
        warning_agent: str = "",
        warning: str = "",
    ) -> None:
        super().__init__(message, response_data, inner_exception)
        self.warning_code = warning_code
        self.warning_agent = warning_agent
        self.warning = warning


class FailureRequestException(RealTimeException):
    """The peer sent a request that ends an operation (for example a BYE or a terminating NOTIFY)."""


class ConnectionFailureException(RealTimeException):
    """No connection to the server could be made or kept (DNS, refused, reset, unreachable)."""


class OperationFailureException(RealTimeException):
    """The operation failed for a reason other than a failure response."""

    def __init__(
        self,
        message: str = "",
        inner_exception: BaseException | None = None,
        failure_reason: OperationFailureReason = OperationFailureReason.UNKNOWN,
    ) -> None:
        super().__init__(message, inner_exception)
        self.failure_reason = failure_reason


class OperationTimeoutException(RealTimeException):
    """No final response arrived in time."""


class TlsFailureException(RealTimeException):
    """The TLS handshake failed (certificate not trusted, host name mismatch, client cert rejected)."""

    def __init__(
        self,
        message: str = "",
        inner_exception: BaseException | None = None,
        failure_reason: TlsFailureReason = TlsFailureReason.UNKNOWN,
    ) -> None:
        super().__init__(message, inner_exception)
        self.failure_reason = failure_reason


class MessageParsingException(RealTimeException):
    """Input is not a well-formed SIP message; says what is wrong and where.

    ``line_number`` is 1-based within the message (0 when the problem is not tied to a
    line); ``reason`` is a short machine-stable phrase; ``offset`` is the byte offset when known.
    """

    def __init__(self, reason: str, line_number: int = 0, offset: int = -1, detail: str = "") -> None:
        where = f" (line {line_number})" if line_number else ""
        text = f"{reason}{where}" + (f": {detail}" if detail else "")
        super().__init__(text)
        self.reason = reason
        self.line_number = line_number
        self.offset = offset
        self.detail = detail


class InvalidOperationException(RuntimeError):
    """The object's state does not allow the call (raised synchronously by ``begin_x``)."""


class RealTimeInvalidOperationException(InvalidOperationException):
    """Like :class:`InvalidOperationException`, with a hint whether retrying may help."""

    def __init__(self, message: str = "", failure_reason: InvalidOperationReason = InvalidOperationReason.NONE):
        super().__init__(message)
        self.failure_reason = failure_reason


class ArgumentException(ValueError):
    """An argument is invalid; ``param_name`` names it."""

    def __init__(self, message: str = "", param_name: str = "") -> None:
        super().__init__(f"{message} (parameter '{param_name}')" if param_name else message)
        self.param_name = param_name


class ArgumentNullException(ArgumentException):
    """A required argument was None."""

    def __init__(self, param_name: str) -> None:
        super().__init__("value cannot be None", param_name)
