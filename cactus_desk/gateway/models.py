"""The gateway's messages as pydantic models: payout, balance and callback.

Amounts on the wire are integer minor units, except in the balance answer, which uses
floats; those become ``Decimal`` through ``str()`` at the boundary and a float is never kept.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictStr,
    model_validator,
)

from cactus_desk.gateway.signature import SEPARATOR, SIGNATURE_KEY, check_separators, sign, verify

NonEmptyStr = Annotated[StrictStr, Field(min_length=1)]


def _invoice_id(value: Any) -> Any:
    # The docs show invoice_id as "1314" on one page and 1314 on another.
    if isinstance(value, bool):
        raise ValueError("invoice_id must be a string or an integer")
    if isinstance(value, int):
        return str(value)
    return value


def _decimal(value: Any) -> Any:
    # Through str(): Decimal(10000.1) would carry the float's binary error into the money.
    if isinstance(value, bool):
        raise ValueError("an amount must be a number")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("an amount must be a finite number")
        return Decimal(str(value))
    if isinstance(value, int):
        return Decimal(value)
    return value


InvoiceId = Annotated[str, BeforeValidator(_invoice_id)]
Amount = Annotated[Decimal, BeforeValidator(_decimal), Field(allow_inf_nan=False)]


class PayoutRequest(BaseModel):
    """One payout to send: ``amount`` in minor units, ``additional_fields`` as strings."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    merchant_id: NonEmptyStr
    site_login: NonEmptyStr
    site_id: Annotated[int, Field(strict=True, gt=0)]
    request_id: NonEmptyStr
    amount: Annotated[int, Field(strict=True, gt=0)]
    currency: NonEmptyStr
    method: NonEmptyStr
    additional_fields: dict[str, StrictStr] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _no_separators(self) -> PayoutRequest:
        # Every value here is text or an int: one test over all the text finds a ";" as the
        # walk would (and a batch builds thousands of these); the walk names the field.
        fields = self.additional_fields
        text = "".join(
            (
                self.merchant_id,
                self.site_login,
                self.request_id,
                self.currency,
                self.method,
                *fields.keys(),
                *fields.values(),
            )
        )
        if SEPARATOR in text:
            check_separators(self.unsigned_payload())
        return self

    def unsigned_payload(self) -> dict[str, Any]:
        """The body as sent, without ``signature``."""
        return {
            "merchant_id": self.merchant_id,
            "site_login": self.site_login,
            "site_id": self.site_id,
            "request_id": self.request_id,
            "amount": self.amount,
            "currency": self.currency,
            "method": self.method,
            "additional_fields": dict(self.additional_fields),
        }

    def signed_payload(self, salt: str) -> dict[str, Any]:
        """The body to send: the very dict that was signed, plus its ``signature``.

        Raises ``SeparatorError`` rather than sign a value containing ``;``.
        """
        payload = self.unsigned_payload()
        check_separators(payload)
        payload[SIGNATURE_KEY] = sign(payload, salt)
        return payload


class PayoutResponse(BaseModel):
    """The payout answer, in either shape: success, or ``success``/``status`` false."""

    model_config = ConfigDict(extra="allow")

    success: bool | None = None
    # An int (3 = initialized) on success, but a boolean False in the generic error shape.
    status: bool | int | None = None
    message: str | None = None
    request_id: str | None = None
    invoice_id: InvoiceId | None = None
    amount: int | None = None
    currency: str | None = None
    site_login: str | None = None
    site_id: int | str | None = None
    signature: str | bool | None = None

    @property
    def is_failure(self) -> bool:
        """True when the gateway said no: ``success: false``, or a boolean ``status: false``
        without ``success: true`` (an answer claiming both is neither: trust it for nothing)."""
        return self.success is False or (self.status is False and self.success is not True)

    @property
    def is_success(self) -> bool:
        """True when the gateway said ``success: true`` and no boolean ``status: false``."""
        return self.success is True and self.status is not False


class BalanceRequest(BaseModel):
    """Ask for the merchant's balances, optionally for one currency."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    merchant_id: NonEmptyStr
    site_id: Annotated[int, Field(strict=True, gt=0)]
    currency: NonEmptyStr | None = None

    def unsigned_payload(self) -> dict[str, Any]:
        """The body as sent, without ``signature``; no ``currency`` key when not filtering."""
        payload: dict[str, Any] = {"merchant_id": self.merchant_id, "site_id": self.site_id}
        if self.currency is not None:
            payload["currency"] = self.currency
        return payload

    def signed_payload(self, salt: str) -> dict[str, Any]:
        """The body to send: the very dict that was signed, plus its ``signature``.

        Raises ``SeparatorError`` rather than sign a value containing ``;``.
        """
        payload = self.unsigned_payload()
        check_separators(payload)
        payload[SIGNATURE_KEY] = sign(payload, salt)
        return payload


class BalanceEntry(BaseModel):
    """One balance; ``amount`` and ``available`` are in major units as the gateway sends them."""

    model_config = ConfigDict(frozen=True, extra="allow")

    id: int | None = None
    name: str | None = None
    currency: str | None = None
    amount: Amount
    available: Amount


class BalanceResponse(BaseModel):
    """The balance answer; the docs' table calls the list ``balance``, the example ``balances``."""

    model_config = ConfigDict(extra="allow")

    site_id: int | str | None = None
    balances: list[BalanceEntry] = Field(
        default_factory=list, validation_alias=AliasChoices("balances", "balance")
    )
    success: bool | None = None
    message: str | None = None
    signature: str | bool | None = None

    def for_currency(self, currency: str) -> list[BalanceEntry]:
        """The entries held in ``currency``."""
        return [entry for entry in self.balances if entry.currency == currency]


class Callback(BaseModel):
    """A status callback. Unknown fields are kept: the gateway may add fields without notice.

    The signature covers every field received, as received, so ``verify`` uses the raw body
    rather than the validated (possibly converted) values.
    """

    model_config = ConfigDict(extra="allow")

    site_id: int | str | None = None
    site_login: str | None = None
    status: int | str | None = None
    invoice_id: InvoiceId | None = None
    request_id: str | None = None
    amount: int | None = None
    received_amount: int | None = None
    is_payout: bool | None = None
    currency: str | None = None
    received_currency: str | None = None
    method: str | None = None
    description: str | None = None
    additional_fields: dict[str, Any] | None = None
    signature: str | bool | None = None

    _raw: dict[str, Any] = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _keep_raw(cls, data: Any, handler: Any) -> Callback:
        model = handler(data)
        if isinstance(data, dict):
            model._raw = dict(data)
        return model

    @property
    def raw(self) -> dict[str, Any]:
        """A copy of the body exactly as received."""
        return dict(self._raw)

    def verify(self, salt: str) -> bool:
        """True when the callback's signature matches every received field and ``salt``."""
        return verify(self._raw, salt)
