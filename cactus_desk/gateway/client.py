"""The HTTP client for the gateway: one payout in, one typed outcome out.

``payout`` never raises for anything the network or the gateway does; every failure maps to
``Rejected`` (the gateway said no) or ``Unknown`` (no answer that can be trusted). The salt
is used to sign and verify only; it is scrubbed from every text an outcome carries.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import httpx
from pydantic import ValidationError

from cactus_desk import __version__
from cactus_desk.gateway.answers import (
    MAX_ANSWER_BYTES,
    Answer,
    EncodingError,
    TooLargeError,
    TooSlowError,
    Watchdog,
    read_capped,
    shape_problem,
)
from cactus_desk.gateway.models import (
    BalanceRequest,
    BalanceResponse,
    PayoutRequest,
    PayoutResponse,
)
from cactus_desk.gateway.outcomes import (
    Accepted,
    NotSent,
    PayoutOutcome,
    RefusedUnverified,
    Rejected,
    Unknown,
    UnknownKind,
)
from cactus_desk.gateway.signature import SIGNATURE_KEY, SeparatorError, verify
from cactus_desk.gateway.tls import tls_context
from cactus_desk.gateway.urls import check_base_url

log = logging.getLogger("cactus_desk.gateway")

PAYOUT_PATH = "/api/payout/"
BALANCE_PATH = "/api/balance/"
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 180.0
RESPONSE_TEXT_LIMIT = 2000
SCRUB_MIN_SALT = 4

_MAY_EXIST = (
    "The payout may have been created. Do not send it again; check it with Cactus "
    "(merchant cabinet, callbacks or support) first."
)
NOT_CONNECTED = "could not connect to the gateway at {url} ({what})"
NOT_SENT_CONNECT = (
    "Not sent: Cactus Desk " + NOT_CONNECTED + ", so the payout never left this computer and "
    "nothing was paid. Check the network and the profile's address, then send it again."
)


class GatewayError(Exception):
    """A request other than a payout failed; ``message`` is plain and safe to show."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _scrub(text: str, salt: str) -> str:
    # A salt of a few characters would turn every message into noise and reveals nothing.
    return text.replace(salt, "[salt]") if len(salt) >= SCRUB_MIN_SALT else text


def _scrub_value(value: Any, salt: str) -> Any:
    if isinstance(value, str):
        return _scrub(value, salt)
    if isinstance(value, dict):
        return {key: _scrub_value(item, salt) for key, item in value.items()}
    if isinstance(value, list):
        return [_scrub_value(item, salt) for item in value]
    return value


def _scrub_outcome(outcome: PayoutOutcome, salt: str) -> PayoutOutcome:
    """The outcome with the salt replaced in every text it carries, should anything echo it."""
    changes = {
        name: _scrub_value(getattr(outcome, name), salt)
        for name in ("reason", "detail", "message", "response", "response_text")
        if hasattr(outcome, name)
    }
    return dataclasses.replace(outcome, **changes)


def _short(text: str) -> str:
    return text if len(text) <= RESPONSE_TEXT_LIMIT else text[:RESPONSE_TEXT_LIMIT] + "…"


def _as_int(value: Any) -> int | None:
    """An integer echoed as int, digit string or integral number; None for anything else."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    if not number.is_finite() or number != number.to_integral_value():
        return None
    return int(number)


def _echo_problems(request: PayoutRequest, data: dict[str, Any]) -> list[str]:
    problems: list[str] = []

    def differs(field: str, expected: object, got: object) -> None:
        problems.append(f"{field}: sent {expected!r}, answer has {got!r}")

    for field in ("request_id", "currency"):
        if field not in data:
            problems.append(f"{field}: sent {getattr(request, field)!r}, answer has none")
        elif data[field] != getattr(request, field):
            differs(field, getattr(request, field), data[field])
    if "amount" not in data:
        problems.append(f"amount: sent {request.amount}, answer has none")
    elif _as_int(data["amount"]) != request.amount:
        differs("amount", request.amount, data["amount"])
    if "site_login" in data and data["site_login"] != request.site_login:
        differs("site_login", request.site_login, data["site_login"])
    if "site_id" in data and _as_int(data["site_id"]) != request.site_id:
        differs("site_id", request.site_id, data["site_id"])
    return problems


_NO_CONNECTION = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class CactusClient:
    """Talks to one gateway base URL over one ``httpx.Client``; TLS is always verified.

    Every payout gets a fresh connection and a total ``deadline`` (connect to last byte,
    default connect + read timeout), and its answer is read up to ``max_answer_bytes``.
    """

    def __init__(
        self,
        base_url: str,
        *,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        deadline: float | None = None,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
        ca_bundle: str | Path | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = check_base_url(base_url)
        if connect_timeout <= 0 or read_timeout <= 0:
            raise ValueError("Timeouts must be positive numbers of seconds")
        if deadline is not None and deadline <= 0:
            raise ValueError("The deadline must be a positive number of seconds")
        if max_answer_bytes <= 0:
            raise ValueError("The answer size cap must be a positive number of bytes")
        self.deadline = deadline if deadline is not None else connect_timeout + read_timeout
        self.max_answer_bytes = max_answer_bytes
        verify_tls = tls_context(ca_bundle)
        self.timeout = httpx.Timeout(
            connect=connect_timeout, read=read_timeout, write=read_timeout, pool=connect_timeout
        )
        self._http = httpx.Client(
            timeout=self.timeout,
            verify=verify_tls,  # shared: building one costs ~17 ms of CPU
            transport=transport,
            follow_redirects=False,
            # A fresh connection per request: the deadline's watchdog must see it being made.
            limits=httpx.Limits(max_keepalive_connections=0),
            headers={
                "User-Agent": f"cactus-desk/{__version__}",
                "Accept": "application/json",
                "Accept-Encoding": "gzip, identity",
            },
        )

    def __enter__(self) -> CactusClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    @property
    def payout_url(self) -> str:
        """The full payout endpoint."""
        return self.base_url + PAYOUT_PATH

    @property
    def balance_url(self) -> str:
        """The full balance endpoint."""
        return self.base_url + BALANCE_PATH

    # -- payout ---------------------------------------------------------------------------

    def payout(self, request: PayoutRequest, salt: str) -> PayoutOutcome:
        """Send one payout and classify the answer; never raises for network or gateway faults.

        Raises ``ValueError`` only for an empty salt (nothing is sent then). A request whose
        values could re-split the signature is never signed: ``NotSent``.
        """
        if not salt:
            raise ValueError("The site salt is empty; the payout was not sent")
        try:
            outcome = self._payout(request, salt)
        except RecursionError:  # nothing the gateway sends should get here; fail closed
            outcome = Unknown(
                reason="The gateway's answer is nested too deeply to read. " + _MAY_EXIST,
                kind=UnknownKind.MALFORMED,
            )
        try:
            outcome = _scrub_outcome(outcome, salt)
        except RecursionError:  # only a gateway's response dict can be this deep
            assert isinstance(outcome, Accepted | Rejected | RefusedUnverified)
            outcome = _scrub_outcome(dataclasses.replace(outcome, response={}), salt)
        log.info(
            "payout %s -> %s%s",
            request.request_id,
            type(outcome).__name__,
            f" ({outcome.kind})" if isinstance(outcome, Unknown) else "",
        )
        return outcome

    def _payout(self, request: PayoutRequest, salt: str) -> PayoutOutcome:
        try:
            payload = request.signed_payload(salt)
        except SeparatorError as exc:
            return NotSent(reason=f"Not sent: {exc}")
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        watchdog = Watchdog(self.deadline)
        try:
            answer = self._exchange(self.payout_url, body, watchdog)
        except TooLargeError as exc:
            return Unknown(
                reason=(
                    f"The gateway's answer was larger than {self.max_answer_bytes:,} bytes, "
                    "far more than a payout answer, so it was not read. " + _MAY_EXIST
                ),
                kind=UnknownKind.TOO_LARGE,
                detail=f"HTTP {exc.status}, answer cut off at the size cap",
                http_status=exc.status,
            )
        except EncodingError as exc:
            return Unknown(
                reason=f"The gateway's answer is encoded as {exc.encoding} and cannot be read. "
                + _MAY_EXIST,
                kind=UnknownKind.MALFORMED,
                detail=f"HTTP {exc.status}, Content-Encoding {exc.encoding}",
                http_status=exc.status,
            )
        except (TooSlowError, httpx.HTTPError, OSError) as exc:
            watchdog.stop()
            if watchdog.expired() and not isinstance(exc, _NO_CONNECTION):
                return Unknown(
                    reason=(
                        f"The gateway's answer did not arrive whole within {self.deadline:g} s. "
                        + _MAY_EXIST
                    ),
                    kind=UnknownKind.TOO_SLOW,
                    detail=f"{type(exc).__name__}: {exc}".rstrip(": "),
                )
            if isinstance(exc, httpx.HTTPError):
                return self._transport_failure(exc)
            return Unknown(
                reason="The connection to the gateway failed. " + _MAY_EXIST,
                kind=UnknownKind.NETWORK,
                detail=f"{type(exc).__name__}: {exc}",
            )
        finally:
            watchdog.stop()
        return self._classify(request, answer, salt)

    def _exchange(self, url: str, body: bytes, watchdog: Watchdog) -> Answer:
        """POST ``body`` and read the whole answer within the deadline and the size cap.

        Raises ``TooLargeError``, ``EncodingError``, ``TooSlowError`` or whatever httpx raises.
        """
        http_request = self._http.build_request(
            "POST", url, content=body, headers={"Content-Type": "application/json"}
        )
        http_request.extensions["trace"] = watchdog.trace
        watchdog.start()
        try:
            response = self._http.send(http_request, stream=True)
            try:
                return Answer(
                    status_code=response.status_code,
                    reason_phrase=response.reason_phrase,
                    headers=response.headers,
                    body=read_capped(response, self.max_answer_bytes, watchdog),
                    is_redirect=response.is_redirect,
                )
            finally:
                watchdog.stop()
                response.close()
        finally:
            watchdog.stop()

    def _not_connected(self, what: str, detail: str) -> NotSent:
        return NotSent(
            NOT_SENT_CONNECT.format(url=self.base_url, what=what),
            detail,
            cause=NOT_CONNECTED.format(url=self.base_url, what=what),
        )

    def _transport_failure(self, exc: httpx.HTTPError) -> PayoutOutcome:
        detail = f"{type(exc).__name__}: {exc}".rstrip(": ")
        # No connection means no byte of the request left this computer.
        if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
            what = f"no connection within {self.timeout.connect:g} s"
            return self._not_connected(what, detail)
        if isinstance(exc, httpx.ConnectError):
            text = str(exc).upper()
            if "CERTIFICATE" in text or "SSL" in text or "TLS" in text:
                what = "the gateway's TLS certificate could not be verified"
            elif "NAME" in text or "ADDRESS" in text or "RESOLUTION" in text:
                what = "its host name could not be resolved"
            else:
                what = "the connection was refused or the host could not be reached"
            return self._not_connected(what, detail)
        if isinstance(exc, httpx.WriteTimeout):
            return Unknown(
                reason=(
                    f"Sending the payout stalled for {self.timeout.write:g} s; part of it may "
                    "have reached the gateway. " + _MAY_EXIST
                ),
                kind=UnknownKind.TIMEOUT,
                detail=detail,
            )
        if isinstance(exc, httpx.TimeoutException):
            return Unknown(
                reason=(
                    f"The payout was sent but the gateway did not answer within "
                    f"{self.timeout.read:g} s. " + _MAY_EXIST
                ),
                kind=UnknownKind.TIMEOUT,
                detail=detail,
            )
        return Unknown(
            reason=(
                "The connection broke before the gateway's answer arrived "
                "(reset or protocol error). " + _MAY_EXIST
            ),
            kind=UnknownKind.NETWORK,
            detail=detail,
        )

    def _classify(self, request: PayoutRequest, response: Answer, salt: str) -> PayoutOutcome:
        status = response.status_code
        text = response.text
        try:
            data = response.json()
        except (ValueError, UnicodeDecodeError, RecursionError):
            data = None
        problem = shape_problem(data)
        if problem is not None:
            return Unknown(
                reason=f"The gateway's answer holds {problem}, so it cannot be trusted. "
                + _MAY_EXIST,
                kind=UnknownKind.MALFORMED,
                detail=f"HTTP {status}, Content-Type {response.headers.get('content-type', '-')}",
                http_status=status,
                response_text=_short(text),
            )

        if not 200 <= status < 300:
            # A 4xx with a failure body is the gateway's wording, but unverified (see
            # _refusal); after a 5xx or a redirect nobody can say whether the payout was made.
            if 400 <= status < 500 and isinstance(data, dict) and _is_failure(data):
                return self._refusal(request, data, salt, status)
            return Unknown(
                reason=(
                    f"The gateway answered HTTP {status} {response.reason_phrase} instead of a "
                    "payout answer. " + _MAY_EXIST
                ),
                kind=UnknownKind.HTTP_ERROR,
                detail=self._http_detail(response, data),
                http_status=status,
                response_text=_short(text),
            )

        if not isinstance(data, dict):
            looks_html = "html" in response.headers.get("content-type", "").lower() or (
                text.lstrip()[:1] == "<"
            )
            if looks_html:
                what = "a web page (HTML)"
            elif not text.strip():
                what = "an empty body"
            elif data is None:
                what = "a body that is not valid JSON"
            else:
                what = "JSON that is not an object"
            return Unknown(
                reason=f"The gateway answered with {what} instead of a JSON object. " + _MAY_EXIST,
                kind=UnknownKind.MALFORMED,
                detail=f"HTTP {status}, Content-Type {response.headers.get('content-type', '-')}",
                http_status=status,
                response_text=_short(text),
            )

        if _is_failure(data):
            return self._refusal(request, data, salt, status)
        try:
            parsed = PayoutResponse.model_validate(data)
        except ValidationError as exc:
            return Unknown(
                reason="The gateway's answer has fields of the wrong type. " + _MAY_EXIST,
                kind=UnknownKind.MALFORMED,
                detail=_validation_summary(exc),
                http_status=status,
                response_text=_short(text),
            )
        if not parsed.is_success:
            said = (
                "contradicts itself (success: true but status: false)"
                if parsed.success is True
                else "says neither success nor failure"
            )
            return Unknown(
                reason=f"The gateway's answer {said}. " + _MAY_EXIST,
                kind=UnknownKind.MALFORMED,
                detail=f"success={data.get('success')!r}, status={data.get('status')!r}",
                http_status=status,
                response_text=_short(text),
            )

        signature = data.get(SIGNATURE_KEY)
        if not isinstance(signature, str) or not signature.strip():
            return Unknown(
                reason="The gateway reported success without a signature, so the answer "
                "cannot be trusted. " + _MAY_EXIST,
                kind=UnknownKind.BAD_SIGNATURE,
                detail=f"signature field: {signature!r}",
                http_status=status,
                response_text=_short(text),
            )
        if not verify(data, salt):
            return Unknown(
                reason="The gateway reported success but its signature does not match this "
                "site's salt, so the answer cannot be trusted. " + _MAY_EXIST,
                kind=UnknownKind.BAD_SIGNATURE,
                detail=f"received signature {signature!r} does not verify",
                http_status=status,
                response_text=_short(text),
            )

        problems = _echo_problems(request, data)
        if problems:
            return Unknown(
                reason="The gateway reported success for a payout that differs from what was "
                "sent. " + _MAY_EXIST,
                kind=UnknownKind.ECHO_MISMATCH,
                detail="; ".join(problems),
                http_status=status,
                response_text=_short(text),
            )

        if (
            not parsed.invoice_id
            or isinstance(parsed.status, bool)
            or not isinstance(parsed.status, int)
        ):
            missing = "invoice_id" if not parsed.invoice_id else "status"
            return Unknown(
                reason=f"The gateway reported success without a {missing}. " + _MAY_EXIST,
                kind=UnknownKind.MALFORMED,
                detail=f"{missing} is {data.get(missing)!r}",
                http_status=status,
                response_text=_short(text),
            )
        return Accepted(
            invoice_id=parsed.invoice_id,
            status=parsed.status,
            message=parsed.message or "",
            response=dict(data),
        )

    @staticmethod
    def _http_detail(response: Answer, data: Any) -> str:
        detail = f"HTTP {response.status_code}, Content-Type "
        detail += response.headers.get("content-type", "-")
        if response.is_redirect:
            detail += f", redirected to {response.headers.get('location', '-')}"
        if isinstance(data, dict) and isinstance(data.get("message"), str):
            detail += f", message: {data['message']}"
        return detail

    @staticmethod
    def _refusal(
        request: PayoutRequest, data: dict[str, Any], salt: str, status: int
    ) -> Rejected | RefusedUnverified:
        """A verified ``Rejected``, or ``RefusedUnverified`` saying what could not be verified.

        Only a refusal that proves it is the gateway's word about this very request shows that
        no money moved: HTTP 2xx, signed with the site's salt, echoing the request_id (and
        any other echoed field matching), with no invoice_id and no numeric status.
        """
        message = data.get("message")
        text = str(message).strip() if message not in (None, "") else ""
        text = text or "The gateway refused the payout without giving a reason."
        signed = verify(data, salt)
        why: list[str] = []
        if not 200 <= status < 300:
            why.append(f"it came with HTTP {status}")
        if not signed:
            has_signature = isinstance(data.get(SIGNATURE_KEY), str) and data[SIGNATURE_KEY]
            why.append(
                "its signature does not match this site's salt"
                if has_signature
                else "it is not signed"
            )
        if data.get("request_id") != request.request_id:
            why.append(
                "it does not name this payout's request ID"
                if "request_id" not in data
                else f"it names request ID {data.get('request_id')!r}"
            )
        if data.get("invoice_id") not in (None, ""):
            why.append(f"it carries invoice {data.get('invoice_id')!r}")
        if data.get("status") not in (None, False):
            why.append(f"it carries a status {data.get('status')!r}")
        mismatched = [
            problem
            for problem in _echo_problems(request, data)
            if not problem.endswith("answer has none") and not problem.startswith("request_id")
        ]
        why += mismatched
        if why:
            return RefusedUnverified(
                message=text, why="; ".join(why), response=dict(data), http_status=status
            )
        return Rejected(
            message=text, response=dict(data), signature_verified=True, http_status=status
        )

    # -- balance --------------------------------------------------------------------------

    def balance(
        self, merchant_id: str, site_id: int, salt: str, currency: str | None = None
    ) -> BalanceResponse:
        """Fetch the merchant's balances; raises ``GatewayError`` with a plain message."""
        if not salt:
            raise GatewayError("The site salt is empty; the balance was not requested.")
        try:
            request = BalanceRequest(merchant_id=merchant_id, site_id=site_id, currency=currency)
        except ValidationError as exc:
            raise GatewayError(f"Invalid balance request: {_validation_summary(exc)}") from None
        try:
            body = json.dumps(request.signed_payload(salt)).encode("utf-8")
        except SeparatorError as exc:
            raise GatewayError(f"The balance was not requested: {exc}") from None
        watchdog = Watchdog(self.deadline)
        try:
            response = self._exchange(self.balance_url, body, watchdog)
        except (TooLargeError, EncodingError):
            raise GatewayError(
                "The gateway's balance answer was too large or encoded in a way that cannot be "
                "read."
            ) from None
        except (TooSlowError, httpx.TimeoutException):
            raise GatewayError(
                f"The gateway at {self.base_url} did not answer the balance request in time."
            ) from None
        except (httpx.HTTPError, OSError) as exc:
            if watchdog.expired():
                raise GatewayError(
                    f"The gateway at {self.base_url} did not answer the balance request in time."
                ) from None
            raise GatewayError(
                _scrub(f"Could not reach the gateway at {self.base_url}: {exc}", salt)
            ) from None
        try:
            data = response.json()
        except (ValueError, UnicodeDecodeError, RecursionError):
            data = None
        if shape_problem(data) is not None:
            data = None  # too deep or holding huge integers: not an answer to trust
        if not isinstance(data, dict):
            raise GatewayError(
                f"The gateway answered the balance request with HTTP {response.status_code} "
                "and no JSON object."
            )
        if _is_failure(data):
            message = _scrub(str(data.get("message") or "no reason given"), salt)
            raise GatewayError(f"The gateway refused the balance request: {message}")
        if not 200 <= response.status_code < 300:
            raise GatewayError(
                f"The gateway answered the balance request with HTTP {response.status_code}."
            )
        if SIGNATURE_KEY in data and not verify(data, salt):
            raise GatewayError(
                "The balance answer's signature does not match this site's salt; "
                "it was not trusted."
            )
        try:
            return BalanceResponse.model_validate(data)
        except ValidationError as exc:
            summary = _scrub(_validation_summary(exc), salt)
            raise GatewayError(f"The balance answer has an unexpected shape: {summary}") from None


def _is_failure(data: dict[str, Any]) -> bool:
    # A boolean ``status: false`` says no only when ``success`` does not say yes: an answer
    # claiming both may carry a created invoice, so it must end Unknown, never Rejected.
    if data.get("success") is True:
        return False
    return data.get("success") is False or data.get("status") is False


def _validation_summary(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(item) for item in error["loc"]) or "body"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)
