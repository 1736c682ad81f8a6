"""One binding's REGISTER dialogue with a registrar, sans-IO (RFC 3261 section 10, RFC 5626, MS-SIPREGE).

:class:`RegistrationClient` builds each REGISTER (same Call-ID and From tag, CSeq+1) and turns
each final response into one :class:`RegistrationStep` saying what the caller must do next:
send again now (after a challenge, a 423 or a redirect), retry later, or stop. It never
touches sockets or clocks; the refresh delay it computes is a number the caller schedules.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Union

import attrs

from ucma.signaling.authentication import Authenticator
from ucma.signaling.exceptions import (
    AuthenticationException,
    AuthenticationFailureReason,
    FailureResponseException,
    MessageParsingException,
    RegisterException,
)
from ucma.signaling.message_data import SipResponseData
from ucma.signaling.registration_states import RegistrationTransitionReason
from ucma.signaling.sip.address import NameAddress
from ucma.signaling.sip.builders import make_request
from ucma.signaling.sip.grammar import parse_params
from ucma.signaling.sip.header_values import Via
from ucma.signaling.sip.identifiers import new_call_id, new_tag
from ucma.signaling.sip.message import SipRequest, SipResponse
from ucma.signaling.sip.parameters import Parameters
from ucma.signaling.sip.uri import SipUri, Uri

#: What we ask for when the caller does not say (the registrar may grant less).
DEFAULT_REQUESTED_EXPIRES = 3600
#: One generator for refresh jitter shared by every client (a Random is ~3 KB; endpoints are many).
_SHARED_RNG = random.Random()  # noqa: S311  (jitter, not security)
#: UCMA's ``MaximumRegisterRedirectionAttempts`` default.
DEFAULT_MAX_REDIRECTS = 3


@attrs.frozen
class Registered:
    """The binding is in place until ``expires`` seconds from now; refresh after ``refresh_after``."""

    expires: int
    refresh_after: float
    response: SipResponse
    gruu: str | None = None
    register_action: str | None = None  # MS-SIPREGE presence-state: "added" | "refreshed" | "fixed"
    keep_alive_interval: int | None = None  # from ms-keep-alive timeout= or Flow-Timer


@attrs.frozen
class Unregistered:
    """The binding was removed (answer to ``Expires: 0``)."""

    response: SipResponse


@attrs.frozen
class SendAgain:
    """Build and send a new REGISTER right away (credentials, interval or target changed)."""

    reason: str
    redirect_target: SipUri | None = None


@attrs.frozen
class RetryLater:
    """The registrar is busy or unavailable: try again after ``delay`` seconds."""

    delay: float
    response: SipResponse


@attrs.frozen
class Failed:
    """Registration cannot succeed; ``error`` (RegisterException or AuthenticationException) says why.

    ``remove_binding``: the registrar may hold a binding the caller should remove.
    """

    error: FailureResponseException
    remove_binding: bool = False


RegistrationStep = Union[Registered, Unregistered, SendAgain, RetryLater, Failed]  # noqa: UP007


def refresh_delay(granted: int, rng: random.Random) -> float:
    """When to refresh a binding granted for ``granted`` seconds.

    Between 80% and 90% of the interval, spread at random so that many endpoints registered
    together do not refresh together, and never closer than 5 s to expiry when the interval
    allows it.
    """
    delay = granted * rng.uniform(0.80, 0.90)
    if granted > 10:
        delay = min(delay, granted - 5.0)
    return max(delay, min(1.0, granted / 2))


def _register_error(
    message: str, response: SipResponse, reason: RegistrationTransitionReason = RegistrationTransitionReason.NONE
) -> RegisterException:
    return RegisterException(message, SipResponseData(response), deregister_reason=reason)


class RegistrationClient:
    """REGISTER requests for one contact binding and the interpretation of their responses."""

    def __init__(
        self,
        *,
        aor: SipUri,
        contact: NameAddress,
        registrar_uri: SipUri | None = None,
        authenticator: Authenticator | None = None,
        requested_expires: int = DEFAULT_REQUESTED_EXPIRES,
        max_redirects: int = DEFAULT_MAX_REDIRECTS,
        allow_no_authentication: bool = True,
        from_parameters: Parameters | None = None,
        extra_headers: Sequence[tuple[str, str]] = (),
        call_id: str | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.aor = aor
        self.contact = contact
        self.registrar_uri = registrar_uri if registrar_uri is not None else SipUri(host=aor.host, scheme=aor.scheme)
        self.authenticator = authenticator
        self.requested_expires = requested_expires
        self.max_redirects = max_redirects
        self.allow_no_authentication = allow_no_authentication
        self.extra_headers = tuple(extra_headers)
        self.call_id = call_id or new_call_id()
        self.from_tag = new_tag()
        params = from_parameters if from_parameters is not None else Parameters()
        self._from = NameAddress(aor, None, params.with_param("tag", self.from_tag))
        self._cseq = 0
        self._redirects = 0
        self._rng = rng if rng is not None else _SHARED_RNG
        self.instance_id = contact.parameters.get("+sip.instance")
        self.registered = False
        self._stale_contact: NameAddress | None = None

    def replace_contact(self, contact: NameAddress) -> None:
        """Use a new contact (after reconnecting from another local address).

        The next REGISTER also removes the old binding (``expires=0``), so a registrar that
        does not match bindings by instance id is not left with a dead contact.
        """
        if contact != self.contact:
            if self.registered:
                self._stale_contact = self.contact
            self.contact = contact

    @property
    def cseq(self) -> int:
        """The CSeq number of the last REGISTER built."""
        return self._cseq

    def create_register(self, via: Via, *, unregister: bool = False) -> SipRequest:
        """The next REGISTER (or the de-registration when ``unregister``), already authorised."""
        self._cseq += 1
        expires = 0 if unregister else self.requested_expires
        headers = list(self.extra_headers)
        stale, self._stale_contact = self._stale_contact, None
        if stale is not None and not unregister:
            # Without +sip.instance: a registrar matching by instance must not drop the new binding too.
            headers.append(("Contact", str(NameAddress(stale.uri_text, None, Parameters([("expires", "0")])))))
        headers.append(("Expires", str(expires)))
        request = make_request(
            "REGISTER",
            self.registrar_uri,
            via=via,
            from_header=self._from,
            to_header=NameAddress(self.aor),
            call_id=self.call_id,
            cseq=self._cseq,
            contact=self.contact,
            headers=headers,
        )
        if self.authenticator is not None:
            self.authenticator.authorize(request)
        return request

    def process_response(self, request: SipRequest, response: SipResponse) -> RegistrationStep:
        """Interpret the final response to ``request`` (which this client built)."""
        code = response.status_code
        unregistering = request.expires == 0
        try:
            if 200 <= code < 300:
                return self._success(request, response, unregistering)
            if code in (401, 407):
                return self._challenge(request, response)
            if 300 <= code < 400:
                return self._redirect(response)
            if code == 423:
                return self._interval_too_brief(response)
            if code in (480, 500, 503, 504) and response.retry_after is not None:
                return RetryLater(float(response.retry_after), response)
        except AuthenticationException as exc:
            if exc.response_data is None:
                exc.response_data = SipResponseData(response)
            return Failed(exc)
        except MessageParsingException as exc:
            return Failed(_register_error(f"registrar sent an unusable {code} response: {exc}", response))
        reason = {
            403: RegistrationTransitionReason.UNAUTHORIZED_ACCESS,
            404: RegistrationTransitionReason.USER_CHANGED,
            408: RegistrationTransitionReason.TIMEOUT,
        }.get(code, RegistrationTransitionReason.NONE)
        return Failed(_register_error(f"REGISTER failed: {code} {response.reason_phrase}", response, reason))

    # --- response classes --------------------------------------------------------------------

    def _success(self, request: SipRequest, response: SipResponse, unregistering: bool) -> RegistrationStep:
        if self.authenticator is not None:
            self.authenticator.process_success(request, response)
        if unregistering:
            self.registered = False
            return Unregistered(response)
        if (
            self.authenticator is not None
            and not self.allow_no_authentication
            and not self.authenticator.was_challenged
        ):
            exc = AuthenticationException(
                "the server registered the endpoint without challenging it; UCMA refuses unauthenticated "
                "registrars (set allow_no_authentication to accept them)",
                SipResponseData(response),
                failure_reason=AuthenticationFailureReason.UNCHALLENGING_SERVER,
            )
            return Failed(exc, remove_binding=True)
        binding = self._own_binding(response)
        expires = binding.expires if binding is not None else None
        if expires is None:
            expires = response.expires
        if expires is None:
            expires = self.requested_expires
        if expires == 0 or (binding is None and response.contacts):
            return Failed(
                _register_error("the registrar did not keep our contact binding", response),
                remove_binding=False,
            )
        self._redirects = 0
        self.registered = True
        gruu = None
        if binding is not None:
            gruu = binding.parameters.get("pub-gruu") or binding.parameters.get("gruu")
        return Registered(
            expires=expires,
            refresh_after=refresh_delay(expires, self._rng),
            response=response,
            gruu=gruu or None,
            register_action=_register_action(response),
            keep_alive_interval=_keep_alive_interval(response),
        )

    def _own_binding(self, response: SipResponse) -> NameAddress | None:
        for contact in response.contacts:
            if contact.is_wildcard:
                continue
            if self.instance_id is not None:
                if contact.parameters.get("+sip.instance") == self.instance_id:
                    return contact
            elif _same_contact_uri(contact.uri, self.contact.uri):
                return contact
        if self.instance_id is not None:
            # Registrars that drop +sip.instance still echo the contact URI.
            for contact in response.contacts:
                if not contact.is_wildcard and _same_contact_uri(contact.uri, self.contact.uri):
                    return contact
        return None

    def _challenge(self, request: SipRequest, response: SipResponse) -> RegistrationStep:
        if self.authenticator is None:
            raise AuthenticationException(
                "the registrar asks for authentication but the endpoint has no credential",
                SipResponseData(response),
                failure_reason=AuthenticationFailureReason.MISSING_CREDENTIALS,
            )
        self.authenticator.handle_challenge(request, response)
        return SendAgain("challenge")

    def _redirect(self, response: SipResponse) -> RegistrationStep:
        if self._redirects >= self.max_redirects:
            return Failed(_register_error("too many REGISTER redirections", response))
        targets = [c for c in response.contacts if not c.is_wildcard]
        targets.sort(key=lambda c: -(c.q if c.q is not None else 1.0))
        for target in targets:
            uri = target.uri
            if isinstance(uri, SipUri):
                self._redirects += 1
                self.registrar_uri = SipUri(host=uri.host, port=uri.port, scheme=uri.scheme, parameters=uri.parameters)
                return SendAgain("redirect", redirect_target=uri)
        return Failed(_register_error("redirect without a usable SIP Contact", response))

    def _interval_too_brief(self, response: SipResponse) -> RegistrationStep:
        minimum = response.min_expires
        if minimum is None or minimum <= self.requested_expires:
            return Failed(_register_error("423 without a larger Min-Expires", response))
        self.requested_expires = minimum
        return SendAgain("interval")


def _same_contact_uri(a: Uri, b: Uri) -> bool:
    if isinstance(a, SipUri) and isinstance(b, SipUri):
        return (
            a.scheme == b.scheme
            and (a.user or "") == (b.user or "")
            and a.host.lower() == b.host.lower()
            and (a.port or 0) == (b.port or 0)
        )
    return str(a) == str(b)


def _register_action(response: SipResponse) -> str | None:
    value = response.headers.get("presence-state")
    if value is None:
        return None
    params, _ = parse_params(";" + value, 0, "presence-state")
    return Parameters(params).get("register-action")


def _keep_alive_interval(response: SipResponse) -> int | None:
    flow_timer = response.headers.get("Flow-Timer")
    if flow_timer is not None and flow_timer.strip().isdigit():
        return int(flow_timer.strip())
    value = response.headers.get("ms-keep-alive")
    if value is None:
        return None
    params, _ = parse_params(";" + value.replace(",", ";").split(";", 1)[-1], 0, "ms-keep-alive")
    timeout = Parameters(params).get("timeout")
    return int(timeout) if timeout is not None and timeout.isdigit() else None
