"""The sandbox gateway's books: one site, its balances, invoices and the checks a payout passes.

Plain logic with no HTTP: ``payout`` and ``balance`` take the parsed request body and return
the signed answer the gateway would give.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cactus_desk import money
from cactus_desk.catalog import load_catalog
from cactus_desk.gateway.signature import SIGNATURE_KEY, sign, verify

BAD_FORMAT_MESSAGE = "Invalid ContentType or json format"
INVALID_SIGNATURE_MESSAGE = "Invalid signature"
PAYOUT_INITIALIZED = "Payout initialized"
STATUS_PROCESSING = 3
FIRST_INVOICE_ID = 100001
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


def default_balances() -> dict[str, int]:
    """1,000,000.00 (major units) of every known currency, in minor units."""
    return {
        code: DEFAULT_BALANCE_MAJOR * 10**cur.exponent for code, cur in money.currencies().items()
    }


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
    """One merchant site's state; every method is safe to call from handler threads."""

    def __init__(
        self,
        merchant_id: str,
        site_id: int,
        salt: str,
        balances: Mapping[str, int] | None = None,
    ) -> None:
        self.merchant_id = merchant_id
        self.site_id = site_id
        self._salt = salt
        known = money.currencies()
        start = default_balances() if balances is None else dict(balances)
        for code, minor in start.items():
            if code not in known:
                raise ValueError(f"Unknown currency in sandbox balances: {code!r}")
            if isinstance(minor, bool) or not isinstance(minor, int) or minor < 0:
                raise ValueError(f"Sandbox balance for {code} must be a whole number >= 0")
        self._lock = threading.Lock()
        self._amount = dict(start)
        self._available = dict(start)
        self._invoices: list[dict[str, Any]] = []
        self._request_ids: set[str] = set()
        self._next_invoice = FIRST_INVOICE_ID

    # -- answers ---------------------------------------------------------------------------

    def signed(self, answer: dict[str, Any]) -> dict[str, Any]:
        """``answer`` with a ``signature`` over all its other fields, made with the site salt."""
        body = {key: value for key, value in answer.items() if key != SIGNATURE_KEY}
        body[SIGNATURE_KEY] = sign(body, self._salt)
        return body

    def failure(self, message: str, *, known_site: bool = True) -> dict[str, Any]:
        """A ``success: false`` answer; unsigned (``signature: false``) when the site is unknown."""
        answer: dict[str, Any] = {"success": False, "message": message}
        if known_site:
            return self.signed(answer)
        answer[SIGNATURE_KEY] = False
        return answer

    def bad_format(self) -> dict[str, Any]:
        """The answer to a wrong content type or a body that is not a JSON object."""
        return self.failure(BAD_FORMAT_MESSAGE)

    # -- payout ----------------------------------------------------------------------------

    def payout(self, body: Mapping[str, Any], *, fault: str | None = None) -> dict[str, Any]:
        """Check and book one payout; return the signed answer (success or refusal)."""
        try:
            self._check_site(body)
        except Refusal as refusal:
            return self.failure(str(refusal), known_site=False)
        try:
            self._require(body, PAYOUT_FIELDS)
            request_id, amount, currency, fields = self._check_payout(body)
            with self._lock:
                if request_id in self._request_ids:
                    raise Refusal(
                        f"Duplicate request_id: {request_id!r} was already used for this site"
                    )
                available = self._available.get(currency, 0)
                if amount > available:
                    raise Refusal(
                        f"Insufficient balance: {money.format_major(available, currency)} "
                        f"{currency} available, {money.format_major(amount, currency)} "
                        f"{currency} requested"
                    )
                self._available[currency] = available - amount
                self._request_ids.add(request_id)
                invoice_id = str(self._next_invoice)
                self._next_invoice += 1
                self._invoices.append(
                    {
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
                )
        except Refusal as refusal:
            return self.failure(str(refusal))
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
            raise Refusal("Unknown merchant_id or site_id")

    @staticmethod
    def _require(body: Mapping[str, Any], required: tuple[str, ...]) -> None:
        missing = [name for name in required if body.get(name) is None]
        if missing:
            raise Refusal(f"Missing required field: {', '.join(missing)}")

    def _check_payout(self, body: Mapping[str, Any]) -> tuple[str, int, str, dict[str, str]]:
        if not verify(body, self._salt):
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
        if currency not in money.currencies():
            known = ", ".join(money.currencies())
            raise Refusal(f"Field currency: unsupported currency {currency!r} (one of {known})")
        catalog = load_catalog()
        try:
            spec = catalog.method(method)
        except (KeyError, LookupError, ValueError):
            spec = None
        if spec is None:
            raise Refusal(f"Field method: unsupported method {method!r}")
        if currency not in spec.currencies:
            raise Refusal(f"Field method: {method} is not available for {currency}")
        fields = body["additional_fields"]
        if not isinstance(fields, dict):
            raise Refusal("Field additional_fields must be an object")
        for key, value in fields.items():
            if not isinstance(value, str):
                raise Refusal(f"Field additional_fields.{key} must be a string")
        problems = catalog.validate_fields(method, currency, fields)
        if problems:
            wire, message = next(iter(problems.items()))
            raise Refusal(f"Field additional_fields.{wire}: {message}")
        stored = {
            key: _mask_card(value) if "card_number" in key else value
            for key, value in fields.items()
        }
        return body["request_id"], amount, currency, stored

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
        if not verify(body, self._salt):
            return self.failure(INVALID_SIGNATURE_MESSAGE)
        wanted = body.get("currency")
        if wanted not in (None, "") and (
            not isinstance(wanted, str) or wanted not in money.currencies()
        ):
            return self.failure(f"Field currency: unsupported currency {wanted!r}")
        entries = []
        with self._lock:
            for index, code in enumerate(self._amount, start=1):
                if wanted not in (None, "") and code != wanted:
                    continue
                entries.append(
                    {
                        "id": index,
                        "name": f"sandbox_{code.lower()}",
                        "currency": code,
                        "amount": self._major_float(self._amount[code], code),
                        "available": self._major_float(self._available[code], code),
                    }
                )
        return self.signed({"site_id": self.site_id, "balances": entries})

    @staticmethod
    def _major_float(minor: int, code: str) -> float:
        # The wire format of this endpoint is a float (the docs' "10000.0"); the books are ints.
        return float(money.to_major(minor, code))

    # -- inspection ------------------------------------------------------------------------

    @property
    def invoices(self) -> list[dict[str, Any]]:
        """Copies of the invoices created so far, oldest first."""
        with self._lock:
            return copy.deepcopy(self._invoices)

    def available(self, currency: str) -> int:
        """The available balance in ``currency``, in minor units."""
        with self._lock:
            return self._available.get(currency, 0)
