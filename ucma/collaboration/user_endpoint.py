"""``UserEndpoint``: a registered user on a ``CollaborationPlatform`` and UCMA's endpoint state machine.

Establish registers through the inner :class:`SipEndpoint`; a failed refresh or a dropped
connection moves the endpoint to REESTABLISHING, and registration is retried with back-off
(``max_register_retries`` times) before the endpoint is terminated, as UCMA does.
"""

from __future__ import annotations

import logging
import random
import threading

from ucma.collaboration.credentials import NetworkCredential
from ucma.collaboration.endpoint_settings import UserEndpointSettings
from ucma.collaboration.endpoint_states import (
    LocalEndpointState,
    LocalEndpointStateChangedEventArgs,
    LocalEndpointStateTransitionReason,
    RepublishingRequiredEventArgs,
)
from ucma.collaboration.platform import CollaborationPlatform
from ucma.collaboration.sip_endpoint import SipEndpoint
from ucma.runtime.async_result import AsyncCallback, AsyncOperation, AsyncResult
from ucma.runtime.events import Event
from ucma.runtime.registration_manager import RefreshHandle
from ucma.runtime.worker_pool import SerialDispatcher
from ucma.signaling.exceptions import (
    ArgumentNullException,
    AuthenticationException,
    FailureResponseException,
    InvalidOperationException,
    OperationFailureException,
    OperationFailureReason,
    RealTimeException,
)
from ucma.signaling.message_data import SipResponseData
from ucma.signaling.registration import Registered

_log = logging.getLogger("ucma.collaboration")

_ESTABLISH: AsyncOperation[SipResponseData] = AsyncOperation("establish")
_TERMINATE: AsyncOperation[None] = AsyncOperation("terminate")

#: Retry jitter shared by all endpoints (one generator, not ~3 KB per endpoint).
_RETRY_JITTER = random.Random()  # noqa: S311  (jitter, not security)
#: Longest pause between two re-registration attempts.
MAX_RETRY_DELAY = 60.0

_S = LocalEndpointState
_R = LocalEndpointStateTransitionReason


class UserEndpoint:
    """A user registered with a SIP server (UCMA ``UserEndpoint``)."""

    state_changed: Event[LocalEndpointStateChangedEventArgs] = Event()
    republishing_required: Event[RepublishingRequiredEventArgs] = Event()

    def __init__(self, platform: CollaborationPlatform, settings: UserEndpointSettings) -> None:
        if platform is None:
            raise ArgumentNullException("platform")
        if settings is None:
            raise ArgumentNullException("settings")
        self._platform = platform
        self._settings = settings
        self._credential: NetworkCredential | None = settings.credential
        self._dispatcher = SerialDispatcher(platform.worker_pool, f"endpoint {settings.owner_uri}")
        self._lock = threading.Lock()
        self._state = _S.IDLE
        self._establish_result: AsyncResult[SipResponseData] | None = None
        self._terminate_results: list[AsyncResult[None]] = []
        self._retry: RefreshHandle | None = None
        self._retries = 0
        self._terminate_reason = _R.NONE
        platform._attach(self)
        self._inner = SipEndpoint(self, platform)
        self._inner.on_connection_lost = self._io_registration_lost
        self._inner.on_refresh_failed = self._io_registration_lost
        self._inner.on_refreshed = self._io_refreshed

    # --- UCMA properties -------------------------------------------------------------------------

    @property
    def dispatcher(self) -> SerialDispatcher:
        """Runs this endpoint's events and callbacks, in order."""
        return self._dispatcher

    @property
    def platform(self) -> CollaborationPlatform:
        """The owning platform."""
        return self._platform

    @property
    def settings(self) -> UserEndpointSettings:
        """The settings the endpoint was created with."""
        return self._settings

    @property
    def state(self) -> LocalEndpointState:
        """Current state."""
        return self._state

    @property
    def owner_uri(self) -> str:
        """The user's SIP URI."""
        return self._settings.owner_uri

    @property
    def endpoint_uri(self) -> str:
        """This endpoint's own URI: the GRUU once the registrar gave one, else the owner URI."""
        return self._inner.gruu or self._settings.owner_uri

    @property
    def credential(self) -> NetworkCredential | None:
        """Credentials for the registrar's challenges (may be changed before establish)."""
        return self._credential

    @credential.setter
    def credential(self, value: NetworkCredential | None) -> None:
        self._credential = value

    @property
    def inner_endpoint(self) -> SipEndpoint:
        """The signalling endpoint (UCMA casts it to ``SipEndpoint``)."""
        return self._inner

    @property
    def max_register_retries(self) -> int:
        """Re-registration attempts after a failure before the endpoint is terminated."""
        return self._settings.max_register_retries

    # --- establish ---------------------------------------------------------------------------------

    def begin_establish(
        self, user_callback: AsyncCallback[SipResponseData] | None = None, state: object = None
    ) -> AsyncResult[SipResponseData]:
        """Register with the server; the result is the final REGISTER response."""
        return _ESTABLISH.begin(self, self._start_establish, user_callback, state)

    def end_establish(self, result: AsyncResult[SipResponseData]) -> SipResponseData:
        """Wait for establish. Raises RegisterException, AuthenticationException,
        ConnectionFailureException, TlsFailureException or OperationTimeoutException."""
        return _ESTABLISH.end(self, result)

    def establish(self, timeout: float | None = None) -> SipResponseData:
        """Blocking establish."""
        return _ESTABLISH.run(self, self._start_establish, timeout)

    def _start_establish(self, result: AsyncResult[SipResponseData]) -> None:
        if not self._platform.is_started:
            raise InvalidOperationException("the platform must be started (startup) before establishing endpoints")
        with self._lock:
            if self._state is not _S.IDLE:
                raise InvalidOperationException(
                    f"begin_establish needs an endpoint in state IDLE; this one is {self._state.name}"
                )
            self._establish_result = result
        self._set_state(_S.ESTABLISHING, _R.NONE)
        self._platform.sip_stack.call_soon(self._io_establish)

    def _io_establish(self) -> None:
        self._inner._io_register(self._io_established)

    def _io_established(self, step: Registered | None, error: BaseException | None) -> None:
        result = self._establish_result
        self._establish_result = None
        if self._state is _S.TERMINATING:
            if result is not None:
                result.try_set_exception(
                    OperationFailureException(
                        "the endpoint was terminated while establishing",
                        error,
                        failure_reason=OperationFailureReason.ENDPOINT_TERMINATED,
                    )
                )
            self._io_terminate()
            return
        if step is None:
            self._inner._drop_connection()
            self._set_state(_S.IDLE, _R.NONE)
            if result is not None:
                result.try_set_exception(_as_real_time(error, "establish"))
            return
        self._set_state(_S.ESTABLISHED, _R.NONE, step)
        self._report_register_action(step)
        if result is not None:
            result.try_set_result(SipResponseData(step.response))

    # --- keeping the registration ------------------------------------------------------------------

    def _io_refreshed(self, step: Registered) -> None:
        self._report_register_action(step)

    def _report_register_action(self, step: Registered) -> None:
        if step.register_action in ("added", "fixed") and self._state is _S.ESTABLISHED:
            self.republishing_required.fire(self, RepublishingRequiredEventArgs(step.register_action == "fixed"))

    def _io_registration_lost(self, error: BaseException) -> None:
        """Connection dropped or a refresh failed: recover by re-registering (UCMA's REESTABLISHING)."""
        if self._state is not _S.ESTABLISHED:
            return
        _log.warning("endpoint %s lost its registration (%s); re-registering", self.owner_uri, error)
        if _is_permanent(error):
            self._io_begin_terminate(_termination_reason(error))
            return
        self._set_state(_S.REESTABLISHING, _R.REGISTRATION_REFRESH_FAILED)
        self._retries = 0
        self._io_retry()

    def _io_retry(self) -> None:
        self._retry = None
        if self._state is not _S.REESTABLISHING:
            return
        self._retries += 1
        self._inner._io_register(self._io_retry_done)

    def _io_retry_done(self, step: Registered | None, error: BaseException | None) -> None:
        if self._state is not _S.REESTABLISHING:
            return
        if step is not None:
            self._retries = 0
            self._set_state(_S.ESTABLISHED, _R.REGISTRATION_REFRESH_SUCCEEDED, step)
            self._report_register_action(step)
            return
        if self._retries >= self._settings.max_register_retries or _is_permanent(error):
            _log.warning("endpoint %s could not re-register (%s); terminating", self.owner_uri, error)
            self._io_begin_terminate(_termination_reason(error))
            return
        delay = min(MAX_RETRY_DELAY, self._settings.register_retry_delay * 2 ** (self._retries - 1))
        delay *= _RETRY_JITTER.uniform(0.8, 1.2)
        _log.info(
            "endpoint %s re-registration attempt %d failed (%s); next in %.1f s",
            self.owner_uri,
            self._retries,
            error,
            delay,
        )
        self._retry = self._platform.registration_manager.schedule(
            delay, self._io_retry, self._platform.sip_stack.call_soon
        )

    # --- terminate -----------------------------------------------------------------------------------

    def begin_terminate(
        self, user_callback: AsyncCallback[None] | None = None, state: object = None
    ) -> AsyncResult[None]:
        """Unregister and release everything; never raises. A repeat call completes when termination has."""
        return _TERMINATE.begin(self, self._start_terminate, user_callback, state)

    def end_terminate(self, result: AsyncResult[None]) -> None:
        """Wait for terminate."""
        _TERMINATE.end(self, result)

    def terminate(self, timeout: float | None = None) -> None:
        """Blocking terminate."""
        _TERMINATE.run(self, self._start_terminate, timeout)

    def _start_terminate(self, result: AsyncResult[None]) -> None:
        with self._lock:
            if self._state is _S.TERMINATED:
                already = True
            else:
                already = False
                self._terminate_results.append(result)
        if already:
            result.set_result(None)
            return
        if not self._platform.sip_stack.is_running:
            self._io_begin_terminate(_R.NONE)
            return
        self._platform.sip_stack.call_soon(lambda: self._io_begin_terminate(_R.NONE))

    def _io_begin_terminate(self, reason: LocalEndpointStateTransitionReason) -> None:
        if self._state in (_S.TERMINATING, _S.TERMINATED):
            return
        establishing = self._state is _S.ESTABLISHING
        self._set_state(_S.TERMINATING, reason)
        self._terminate_reason = reason
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        if not establishing:  # an attempt in flight finishes first, then sees TERMINATING
            self._io_terminate()

    def _io_terminate(self) -> None:
        if not self._platform.sip_stack.is_running:
            self._io_terminated()
            return
        self._inner._io_unregister(self._io_terminated)

    def _io_terminated(self) -> None:
        self._set_state(_S.TERMINATED, self._terminate_reason)
        self._platform._detach(self)
        with self._lock:
            waiting, self._terminate_results = self._terminate_results, []
        for result in waiting:
            result.try_set_result(None)

    # --- state ---------------------------------------------------------------------------------------

    def _set_state(
        self,
        state: LocalEndpointState,
        reason: LocalEndpointStateTransitionReason,
        step: Registered | None = None,
    ) -> None:
        with self._lock:
            previous = self._state
            if previous is state:
                return
            self._state = state
        data = SipResponseData(step.response) if step is not None else None
        _log.debug("endpoint %s: %s -> %s (%s)", self.owner_uri, previous.name, state.name, reason.name)
        self.state_changed.fire(self, LocalEndpointStateChangedEventArgs(previous, state, reason, data))

    def __repr__(self) -> str:
        return f"<UserEndpoint {self.owner_uri} {self._state.name}>"


def _is_permanent(error: BaseException | None) -> bool:
    """Failures that retrying cannot fix: wrong credentials, user unknown or forbidden."""
    return isinstance(error, AuthenticationException) or _is_gone(error)


def _is_gone(error: BaseException | None) -> bool:
    """403/404 from the registrar: the user is disabled or no longer exists."""
    return (
        isinstance(error, FailureResponseException)
        and error.response_data is not None
        and error.response_data.response_code in (403, 404)
    )


def _termination_reason(error: BaseException | None) -> LocalEndpointStateTransitionReason:
    """403/404 mean the user is gone or disabled; anything else is a failed refresh."""
    if _is_gone(error):
        return _R.OWNER_DISABLED_OR_REMOVED
    return _R.REGISTRATION_REFRESH_FAILED


def _as_real_time(error: BaseException | None, operation: str) -> BaseException:
    if isinstance(error, RealTimeException):
        return error
    return OperationFailureException(f"{operation} failed: {error}", error)
