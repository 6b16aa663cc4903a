"""The sandbox gateway's books: one site, its balances, invoices and the checks a payout passes.

Plain logic with no HTTP: ``payout`` and ``balance`` take the parsed request body and return
the signed answer the gateway would give. Every rule comes from ``rules`` (the gateway's payout
page); nothing here uses the console's own catalog, checks or currency table.
"""

from __future__ import annotations

import copy
import threading
import time
import weakref
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cactus_desk.sandbox.rules import (
    CARD_NUMBER_FIELDS,
    EXPONENTS,
    METHODS,
    STATUS_DECLINE,
    STATUS_PROCESSING,
    STATUS_SUCCESS,
)
from cactus_desk.sandbox.signing import SIGNATURE_FIELD, signature_matches, signature_of

BAD_FORMAT_MESSAGE = "Invalid ContentType or json format"
INVALID_SIGNATURE_MESSAGE = "Invalid signature"
PAYOUT_INITIALIZED = "Payout initialized"
UNKNOWN_SITE_MESSAGE = "Unknown merchant_id or site_id"
DEFAULT_BALANCE_MAJOR = 1_000_000

PAYOUT_FIELDS = (
    "merchant_id",
    "site_login",
    "site_id",
    "request_id",
    "amount",
    "signature",
    "currency",
    "method",
    "additional_fields",
)
BALANCE_FIELDS = ("merchant_id", "site_id", "signature")


class Refusal(Exception):
    """A request the gateway answers with ``success: false`` and this message."""


# -- invoice ids: never handed out twice, not even by another sandbox process --------------

_ids_lock = threading.Lock()
_last_invoice_id = 0
# Every live ledger's invoices by id, so a finalizer can settle an invoice it was handed.
_books: weakref.WeakValueDictionary[str, Ledger] = weakref.WeakValueDictionary()


def _new_invoice_id() -> str:
    """The next invoice id: the wall clock in microseconds, or one more than the last id.

    An id never runs ahead of the clock (a payout takes far longer than a microsecond), so a
    sandbox started later (a restart, another process) starts above every id an earlier one
    gave out. Shared by every ledger in the process, so two sandboxes never share an id.
    """
    global _last_invoice_id
    with _ids_lock:
        _last_invoice_id = max(_last_invoice_id + 1, time.time_ns() // 1000)
        return str(_last_invoice_id)


def settle(invoice_id: str, status: int) -> bool:
    """Book the final ``status`` of a sandbox invoice in whichever live sandbox made it.

    False when no live sandbox in this process has the invoice (or it was settled already).
    """
    ledger = _books.get(str(invoice_id))
    return ledger.settle(str(invoice_id), status) if ledger is not None else False


# -- helpers ----------------------------------------------------------------------------------


def default_balances(exponents: Mapping[str, int] = EXPONENTS) -> dict[str, int]:
    """1,000,000 (major units) of every currency the sandbox knows, in minor units."""
    return {code: DEFAULT_BALANCE_MAJOR * 10**exponent for code, exponent in exponents.items()}


def major_text(minor: int, exponent: int) -> str:
    """``minor`` written in major units with ``exponent`` decimals, e.g. ``1000.01``."""
    if exponent == 0:
        return str(minor)
    sign = "-" if minor < 0 else ""
    whole, part = divmod(abs(minor), 10**exponent)
    return f"{sign}{whole}.{part:0{exponent}d}"


def _mask_card(number: str) -> str:
    digits = "".join(ch for ch in number if ch.isdigit())
    if len(digits) < 10:
        return "*" * len(digits)
    return digits[:6] + "*" * (len(digits) - 10) + digits[-4:]


def _site_id(value: Any) -> int | None:
    # The docs' own examples send site_id both as 101 and as "101".
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value.strip())
    return None


class Ledger:
    """One merchant site's state; every method is safe to call from handler threads.

    ``amount`` per currency is the money on the account; ``available`` is what is left after
    payouts in progress are reserved. A payout reserves its amount; success takes it off the
    account, a decline gives it back.
    """

    def __init__(
        self,
        merchant_id: str,
        site_id: int,
        salt: str,
        balances: Mapping[str, int] | None = None,
        exponents: Mapping[str, int] | None = None,
    ) -> None:
        self.merchant_id = merchant_id
        self.site_id = site_id
        self._salt = salt
        self._exponents = dict(EXPONENTS if exponents is None else exponents)
        for code, exponent in self._exponents.items():
            if isinstance(exponent, bool) or not isinstance(exponent, int) or exponent < 0:
                raise ValueError(f"The number of decimals of {code} must be a whole number >= 0")
        start = default_balances(self._exponents) if balances is None else dict(balances)
        for code, minor in start.items():
            if code not in self._exponents:
                raise ValueError(f"Unknown currency in sandbox balances: {code!r}")
            if isinstance(minor, bool) or not isinstance(minor, int) or minor < 0:
                raise ValueError(f"Sandbox balance for {code} must be a whole number >= 0")
        self._lock = threading.Lock()
        self._amount = dict(start)
        self._available = dict(start)
        self._invoices: list[dict[str, Any]] = []
        self._by_id: dict[str, dict[str, Any]] = {}
        self._request_ids: set[str] = set()

    # -- answers ---------------------------------------------------------------------------

    def signed(self, answer: dict[str, Any]) -> dict[str, Any]:
        """``answer`` with a ``signature`` over all its other fields, made with the site salt."""
        body = {key: value for key, value in answer.items() if key != SIGNATURE_FIELD}
        body[SIGNATURE_FIELD] = signature_of(body, self._salt)
        return body

    def failure(
        self, message: str, *, known_site: bool = True, request_id: Any = None
    ) -> dict[str, Any]:
        """A ``success: false`` answer, echoing ``request_id`` when the request had one.

        Unsigned (``signature: false``) when the site is unknown: no salt can be matched.
        """
        answer: dict[str, Any] = {"success": False, "message": message}
        if isinstance(request_id, str) and request_id:
            answer["request_id"] = request_id
        if known_site:
            return self.signed(answer)
        answer[SIGNATURE_FIELD] = False
        return answer

    def bad_format(self) -> dict[str, Any]:
        """The answer to a wrong content type or a body that is not a JSON object.

        Unsigned: without a readable body the gateway cannot tell whose salt to use.
        """
        return self.failure(BAD_FORMAT_MESSAGE, known_site=False)

    # -- payout ----------------------------------------------------------------------------

    def payout(self, body: Mapping[str, Any], *, fault: str | None = None) -> dict[str, Any]:
        """Check and book one payout; return the signed answer (success or refusal)."""
        request_id = body.get("request_id")
        try:
            self._check_site(body)
        except Refusal as refusal:
            return self.failure(str(refusal), known_site=False, request_id=request_id)
        try:
            self._require(body, PAYOUT_FIELDS)
            amount, currency, fields = self._check_payout(body)
            assert isinstance(request_id, str)  # _check_payout refuses any other request_id
            with self._lock:
                if request_id in self._request_ids:
                    raise Refusal(f"Payout with request_id {request_id!r} already exists")
                available = self._available.get(currency, 0)
                if amount > available:
                    exponent = self._exponents[currency]
                    raise Refusal(
                        f"Insufficient balance: {major_text(available, exponent)} {currency} "
                        f"available, {major_text(amount, exponent)} {currency} requested"
                    )
                self._available[currency] = available - amount
                self._request_ids.add(request_id)
                invoice_id = _new_invoice_id()
                invoice = {
                    "invoice_id": invoice_id,
                    "request_id": request_id,
                    "merchant_id": self.merchant_id,
                    "site_id": self.site_id,
                    "site_login": body["site_login"],
                    "amount": amount,
                    "currency": currency,
                    "method": body["method"],
                    "additional_fields": fields,
                    "status": STATUS_PROCESSING,
                    "fault": fault,
                    "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                }
                self._invoices.append(invoice)
                self._by_id[invoice_id] = invoice
                _books[invoice_id] = self
        except Refusal as refusal:
            return self.failure(str(refusal), request_id=request_id)
        return self.signed(
            {
                "message": PAYOUT_INITIALIZED,
                "request_id": request_id,
                "success": True,
                "status": STATUS_PROCESSING,
                "amount": amount,
                "site_login": body["site_login"],
                "site_id": self.site_id,
                "invoice_id": invoice_id,
                "currency": currency,
            }
        )

    def _check_site(self, body: Mapping[str, Any]) -> None:
        """Refuse (unsigned: no salt can be matched) a body that is not for this site."""
        missing = [name for name in ("merchant_id", "site_id") if body.get(name) is None]
        if missing:
            raise Refusal(f"Missing required field: {', '.join(missing)}")
        if body["merchant_id"] != self.merchant_id or _site_id(body["site_id"]) != self.site_id:
            raise Refusal(UNKNOWN_SITE_MESSAGE)

    @staticmethod
    def _require(body: Mapping[str, Any], required: tuple[str, ...]) -> None:
        missing = [name for name in required if body.get(name) is None]
        if missing:
            raise Refusal(f"Missing required field: {', '.join(missing)}")

    def _check_payout(self, body: Mapping[str, Any]) -> tuple[int, str, dict[str, str]]:
        if not signature_matches(body, self._salt):
            raise Refusal(INVALID_SIGNATURE_MESSAGE)
        for name in ("site_login", "request_id", "currency", "method"):
            value = body[name]
            if not isinstance(value, str) or not value.strip():
                raise Refusal(f"Field {name} must be a non-empty string")
        amount = body["amount"]
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise Refusal("Field amount must be an integer number of minor units")
        if amount <= 0:
            raise Refusal("Field amount must be greater than zero")
        currency, method = body["currency"], body["method"]
        if currency not in self._exponents:
            known = ", ".join(self._exponents)
            raise Refusal(f"Field currency: unsupported currency {currency!r} (one of {known})")
        rule = METHODS.get(method)
        if rule is None:
            raise Refusal(f"Field method: unsupported method {method!r}")
        fields = body["additional_fields"]
        if not isinstance(fields, dict):
            raise Refusal("Field additional_fields must be an object")
        for key in sorted(fields):
            if key not in rule.allowed:
                raise Refusal(f"Field additional_fields.{key} is not a field of method {method}")
            if not isinstance(fields[key], str):
                raise Refusal(f"Field additional_fields.{key} must be a string")
        for key in sorted(rule.required):
            if not fields.get(key, "").strip():
                raise Refusal(f"Field additional_fields.{key} is required for method {method}")
        stored = {
            key: _mask_card(value) if key in CARD_NUMBER_FIELDS else value
            for key, value in fields.items()
        }
        return amount, currency, stored

    # -- settling --------------------------------------------------------------------------

    def settle(self, invoice_id: str, status: int) -> bool:
        """Book an invoice's final status: success spends the reserved amount, a decline
        returns it to the available balance. False when the invoice is unknown or settled."""
        if status not in (STATUS_SUCCESS, STATUS_DECLINE):
            raise ValueError(f"A sandbox invoice ends in status 4 or 5, not {status!r}")
        with self._lock:
            invoice = self._by_id.get(invoice_id)
            if invoice is None or invoice["status"] != STATUS_PROCESSING:
                return False
            invoice["status"] = status
            currency, amount = invoice["currency"], invoice["amount"]
            if status == STATUS_SUCCESS:
                self._amount[currency] -= amount
            else:
                self._available[currency] += amount
            return True

    # -- balance ---------------------------------------------------------------------------

    def balance(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """The signed balance answer, amounts as floats in major units like the docs' example."""
        try:
            self._check_site(body)
        except Refusal as refusal:
            return self.failure(str(refusal), known_site=False)
        try:
            self._require(body, BALANCE_FIELDS)
        except Refusal as refusal:
            return self.failure(str(refusal))
        if not signature_matches(body, self._salt):
            return self.failure(INVALID_SIGNATURE_MESSAGE)
        wanted = body.get("currency")
        if wanted not in (None, "") and (
            not isinstance(wanted, str) or wanted not in self._exponents
        ):
            return self.failure(f"Field currency: unsupported currency {wanted!r}")
        entries = []
        with self._lock:
            for index, code in enumerate(self._amount, start=1):
                if wanted not in (None, "") and code != wanted:
                    continue
                exponent = self._exponents[code]
                entries.append(
                    {
                        "id": index,
                        "name": f"sandbox_{code.lower()}",
                        "currency": code,
                        # The docs' example writes balances as floats ("10000.0").
                        "amount": float(major_text(self._amount[code], exponent)),
                        "available": float(major_text(self._available[code], exponent)),
                    }
                )
        return self.signed({"site_id": self.site_id, "balances": entries})

    # -- inspection ------------------------------------------------------------------------

    @property
    def invoices(self) -> list[dict[str, Any]]:
        """Copies of the invoices created so far, oldest first."""
        with self._lock:
            return copy.deepcopy(self._invoices)

    def invoice(self, invoice_id: str) -> dict[str, Any] | None:
        """A copy of one invoice, or None (copying every invoice per payout would make a long
        batch quadratic)."""
        with self._lock:
            invoice = self._by_id.get(invoice_id)
            return None if invoice is None else copy.deepcopy(invoice)

    def available(self, currency: str) -> int:
        """The available balance in ``currency``, in minor units."""
        with self._lock:
            return self._available.get(currency, 0)

    def total(self, currency: str) -> int:
        """The money on the account in ``currency`` (reserved payouts included), minor units."""
        with self._lock:
            return self._amount.get(currency, 0)
