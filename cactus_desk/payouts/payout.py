"""One payout, described once: from the confirmed form (or command line, or resend) to the
wire and to the history.

``build_payout`` turns a draft into a ``Payout`` through the same checks as the form. The
body that is signed and sent (``wire_body``) and the body the history keeps, recipient
fields masked (``recorded_body``), are both derived from that one value, so they cannot
disagree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from cactus_desk.gateway.models import PayoutRequest
from cactus_desk.payouts.draft import (
    DraftErrors,
    DraftValues,
    PayoutDraft,
    check_draft,
    redacted_fields,
)

if TYPE_CHECKING:
    from cactus_desk.profiles import Profile

ENVIRONMENTS = ("live", "sandbox")


@dataclass(frozen=True)
class PayoutTarget:
    """Who sends: the profile's identity at the moment the payout was confirmed."""

    profile_id: str
    profile_name: str
    environment: str
    merchant_id: str
    site_id: int

    @classmethod
    def of(cls, profile: Profile) -> PayoutTarget:
        """The target of payouts sent with ``profile``."""
        return cls(
            profile.id, profile.name, profile.environment, profile.merchant_id, profile.site_id
        )

    @property
    def is_live(self) -> bool:
        """True when the payout moves real money."""
        return self.environment == "live"


class PayoutInvalidError(ValueError):
    """The draft is not a valid payout; ``errors`` names each field and its problem."""

    def __init__(self, errors: DraftErrors) -> None:
        self.errors = dict(errors)
        summary = "; ".join(f"{key}: {message}" for key, message in self.errors.items())
        super().__init__(f"The payout is not complete: {summary}")


@dataclass(frozen=True, eq=True)
class Payout:
    """One payout with its full recipient fields. The masked view is derived, never kept
    beside it; ``repr`` leaves the fields out so a full card number never reaches a log."""

    target: PayoutTarget
    request_id: str
    site_login: str
    method: str
    currency: str
    amount_minor: int
    fields: Mapping[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fields", MappingProxyType(dict(self.fields)))
        if self.target.environment not in ENVIRONMENTS:
            raise ValueError(
                f"Environment must be 'live' or 'sandbox', not {self.target.environment!r}"
            )
        if not str(self.target.profile_id).strip():
            raise ValueError("The profile id must not be empty")
        # The gateway's own model checks the rest (non-empty values, strict types, no ";").
        try:
            self.wire_request()
        except ValidationError as exc:
            # Only the messages: pydantic's text would quote the input, card number and all.
            problems = "; ".join(
                f"{'.'.join(str(part) for part in error['loc']) or 'payout'}: {error['msg']}"
                for error in exc.errors(include_input=False, include_url=False)
            )
            raise ValueError(f"Not a payout the gateway can take: {problems}") from None

    @property
    def is_live(self) -> bool:
        """True when the payout moves real money."""
        return self.target.is_live

    def wire_body(self) -> dict[str, Any]:
        """The body as signed and sent, without the signature."""
        return {
            "merchant_id": self.target.merchant_id,
            "site_login": self.site_login,
            "site_id": self.target.site_id,
            "request_id": self.request_id,
            "amount": self.amount_minor,
            "currency": self.currency,
            "method": self.method,
            "additional_fields": dict(self.fields),
        }

    def masked_fields(self) -> dict[str, str]:
        """The additional fields as they may be stored or shown: card numbers masked."""
        return redacted_fields(self.method, self.fields)

    def recorded_body(self) -> dict[str, Any]:
        """The body as the history keeps it: ``wire_body`` with card numbers masked."""
        return {**self.wire_body(), "additional_fields": self.masked_fields()}

    def wire_request(self) -> PayoutRequest:
        """The gateway's boundary model of this payout (validated, ready to sign)."""

        return PayoutRequest.model_validate(self.wire_body())


def build_payout(
    draft: DraftValues,
    target: PayoutTarget,
    *,
    extensions: Iterable[str] | None = None,
    decimals: Mapping[str, int] | None = None,
) -> Payout:
    """Turn a draft into the payout to send, through the form's own checks.

    Raises ``PayoutInvalidError`` (its ``errors`` keyed by field) when the draft is invalid.
    With ``extensions`` the method must be documented or among them; without, enabling a
    method is left to the caller.
    """
    enabled = (draft.method,) if extensions is None else tuple(extensions)
    checked = check_draft(draft, extensions=enabled, decimals=decimals)
    if checked.errors:
        raise PayoutInvalidError(checked.errors)
    # No message: the amount parsed and every field passed, so both values are there.
    assert checked.amount_minor is not None and checked.fields is not None
    return Payout(
        target=target,
        request_id=draft.request_id.strip(),
        site_login=draft.site_login.strip(),
        method=draft.method,
        currency=draft.currency,
        amount_minor=checked.amount_minor,
        fields=checked.fields,
    )


def payout_for(draft: PayoutDraft, profile: Profile) -> Payout:
    """``build_payout`` with everything ``profile`` decides: target, extensions, decimals."""
    return build_payout(
        draft,
        PayoutTarget.of(profile),
        extensions=profile.extensions,
        decimals=profile.decimals,
    )
