"""A payout as the form holds it, before it becomes a ``Payout``: validation, ids, masking."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from cactus_desk.catalog import Catalog, UnknownMethodError, load_catalog
from cactus_desk.checks import normalize
from cactus_desk.gateway.signature import SEPARATOR, SEPARATOR_MESSAGE
from cactus_desk.money import AmountError, find_currency, parse_amount, with_decimals

DraftErrors = dict[str, str]
"""Messages keyed by ``site_login``, ``amount``, ``request_id``, ``currency``, ``method``
or an additional field's wire name."""

MAX_SITE_LOGIN = 128
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}", re.ASCII)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_CARD_FIELD = "card_number"
_NOT_ASCII_DIGIT = re.compile(r"[^0-9]")


if TYPE_CHECKING:
    from cactus_desk.payouts.draft_model import PayoutDraft as PayoutDraft


def __getattr__(name: str) -> Any:
    # ``PayoutDraft`` is a pydantic model: loaded when first named, so the payout form can
    # check what is typed (``validate_draft``) before pydantic is needed, at the first Send.
    if name == "PayoutDraft":
        from cactus_desk.payouts.draft_model import PayoutDraft

        return PayoutDraft
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class DraftValues(Protocol):
    """What ``validate_draft`` reads of a draft: a ``PayoutDraft``, or the form's own."""

    @property
    def site_login(self) -> str: ...
    @property
    def currency(self) -> str: ...
    @property
    def method(self) -> str: ...
    @property
    def amount_text(self) -> str: ...
    @property
    def fields(self) -> Mapping[str, str | bool]: ...
    @property
    def request_id(self) -> str: ...


def new_request_id(now: datetime | None = None) -> str:
    """A fresh, unique request id: ``cd-`` + date + 10 random hex digits."""
    day = (now or datetime.now()).strftime("%Y%m%d")
    return f"cd-{day}-{secrets.token_hex(5)}"


def _site_login_problem(value: str) -> str | None:
    text = value.strip()
    if not text:
        return "Enter the user's login on your site."
    if len(text) > MAX_SITE_LOGIN:
        return f"Too long: at most {MAX_SITE_LOGIN} characters."
    if _CONTROL.search(text):
        return "Remove the control or invisible characters (line breaks, tabs and the like)."
    if SEPARATOR in text:
        return SEPARATOR_MESSAGE
    return None


def _request_id_problem(value: str) -> str | None:
    text = value.strip()
    if not text:
        return "Enter a request id, or generate a new one."
    if len(text) > 64:
        return "Too long: at most 64 characters."
    if not _REQUEST_ID.fullmatch(text):
        return "Use only letters, digits and . _ : - (no spaces), e.g. cd-20261128-7f3a9c2b1e."
    return None


def validate_draft(
    draft: DraftValues,
    *,
    extensions: Iterable[str] = (),
    decimals: Mapping[str, int] | None = None,
) -> DraftErrors:
    """Check a draft the way the gateway would need it; return messages (empty when valid).

    ``decimals`` is the profile's override of a currency's decimals (``Profile.decimals``).
    """
    return check_draft(draft, extensions=extensions, decimals=decimals).errors


class CheckedDraft(NamedTuple):
    """What ``validate_draft`` found, with the values it worked out on the way (a named
    tuple: a batch makes one per row)."""

    errors: DraftErrors
    amount_minor: int | None = None  # the amount, when it parsed
    fields: dict[str, str] | None = None  # the wire fields, when the fields were checked


def check_draft(
    draft: DraftValues,
    *,
    extensions: Iterable[str] = (),
    decimals: Mapping[str, int] | None = None,
) -> CheckedDraft:
    """``validate_draft``'s checks, keeping the parsed amount and the wire fields, so that
    building the payout does not parse and normalise everything a second time."""
    catalog = load_catalog()
    amount_minor: int | None = None
    errors: DraftErrors = {}
    for key, problem in (
        ("site_login", _site_login_problem(draft.site_login)),
        ("request_id", _request_id_problem(draft.request_id)),
    ):
        if problem:
            errors[key] = problem

    cur = find_currency(draft.currency)
    if cur is not None:
        cur = with_decimals(cur, decimals)
    if cur is None:
        errors["currency"] = "Choose a currency."
    else:
        try:
            amount_minor = parse_amount(draft.amount_text, cur)
        except AmountError as exc:
            errors["amount"] = exc.message

    try:
        method = catalog.method(draft.method)
    except UnknownMethodError:
        errors["method"] = "Choose a payout method."
        return CheckedDraft(errors, amount_minor)
    if cur is None:
        return CheckedDraft(errors, amount_minor)
    if cur.code not in method.currencies:
        offered = ", ".join(method.currencies)
        errors["method"] = f"{method.label} is not offered for {cur.code} (only {offered})."
        return CheckedDraft(errors, amount_minor)
    if not method.documented and method.wire not in set(extensions):
        errors["method"] = f"{method.label} is not enabled for this profile."
        return CheckedDraft(errors, amount_minor)
    field_errors, fields = catalog.checked_fields(method, cur.code, draft.fields)
    errors.update(field_errors)
    return CheckedDraft(errors, amount_minor, fields)


def mask_card(number: str) -> str:
    """Mask a card number for storage and display: first 6 and last 4 digits kept, separators
    dropped. Anything too short to keep 6 + 4 and still hide some digits is masked completely.
    """
    compact = normalize("card_number", number)
    # Only the digits count, whatever separates them (spaces, dashes, dots…).
    digits = _NOT_ASCII_DIGIT.sub("", compact)
    if len(digits) < 12:
        return "*" * len(compact)
    return digits[:6] + "*" * (len(digits) - 10) + digits[-4:]


@lru_cache(maxsize=256)
def _card_wires(catalog: Catalog, method: str) -> frozenset[str]:
    """The wire names of ``method``'s card number fields (``card_number`` whatever the method)."""
    try:
        spec = catalog.method(method)
    except UnknownMethodError:
        return frozenset({_CARD_FIELD})
    return frozenset({_CARD_FIELD, *(f.wire for f in spec.fields if f.check == "card_number")})


def redacted_fields(method: str, fields: Mapping[str, str]) -> dict[str, str]:
    """The additional fields as they may be stored or shown: the card number masked."""
    card_wires = _card_wires(load_catalog(), method)
    return {
        key: mask_card(value) if key in card_wires and isinstance(value, str) else value
        for key, value in fields.items()
    }
