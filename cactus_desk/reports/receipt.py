"""One payout's receipt: what it holds, as plain values (the window lays it out and prints).

Profile, the recipient masked (a card as first 6 / last 4, nothing else of it), the amount in
major and minor units, request and invoice ids, the state, the timeline and who acted on it.
A full card number never reaches a receipt: the history never held one, and every value is
scrubbed once more on the way in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from cactus_desk.catalog import UnknownMethodError, load_catalog
from cactus_desk.history.types import PayoutDetails, iso_utc
from cactus_desk.masking import scrub_card_numbers
from cactus_desk.money import UnknownCurrencyError, format_major, with_decimals
from cactus_desk.payouts.states import state_text
from cactus_desk.payouts.statuses import status_label


@dataclass(frozen=True)
class Receipt:
    """A receipt's sections, each a list of (label, value) lines."""

    title: str
    environment: str
    payout: list[tuple[str, str]]
    recipient: list[tuple[str, str]]
    timeline: list[tuple[str, str]]
    people: list[tuple[str, str]]
    printed_at: str


def _clean(value: object) -> str:
    text = "Yes" if value is True else "No" if value is False else str(value)
    return scrub_card_numbers(text, luhn=False)


def _local(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def _field_labels(method: str) -> dict[str, str]:
    try:
        return {f.wire: f.label for f in load_catalog().method(method).fields}
    except UnknownMethodError:
        return {}


def build_receipt(
    details: PayoutDetails,
    decimals: Mapping[str, int] | None = None,
    now_ms: int | None = None,
) -> Receipt:
    """The receipt of one payout from its details (record, timeline, resends)."""
    record = details.record
    try:
        cur = with_decimals(record.currency, decimals)
        amount = f"{format_major(record.amount_minor, cur)} {record.currency}"
    except UnknownCurrencyError:
        amount = record.currency
    payout = [
        (
            "Profile",
            f"{record.profile_name} (merchant {record.merchant_id}, site {record.site_id})",
        ),
        ("Amount", f"{amount} ({record.amount_minor} minor units)"),
        ("Request id", record.request_id),
        ("Invoice id", record.invoice_id or "—"),
        ("State", state_text(record.state, record.gateway_status)),
        ("Gateway status", status_label(record.gateway_status) or "—"),
        ("Created", f"{_local(record.created_at)} ({iso_utc(record.created_at)})"),
        ("Updated", f"{_local(record.updated_at)} ({iso_utc(record.updated_at)})"),
    ]
    labels = _field_labels(record.method)
    fields = record.request.get("additional_fields") if record.request else None
    recipient = [("Method", record.method), ("Site login", _clean(record.site_login))]
    if isinstance(fields, dict):
        for wire, value in fields.items():
            recipient.append((labels.get(str(wire), str(wire)), _clean(value)))
    timeline = [(_local(record.created_at), "Recorded, then sent to the gateway")]
    for event in details.events:
        timeline.append((_local(event.received_at), _clean(event.summary)))
    for resend in details.resends:
        timeline.append((_local(resend.confirmed_at), f"Sent again (attempt {resend.attempt})"))
    made_by = details.made_by or getattr(record, "created_by", None)
    people = [("Made by", _clean(made_by) if made_by else "This desk (its own history)")]
    if details.made_by:  # a team store: its logins, approvals and settlements kept apart
        approved = details.approved_by
        people.append(
            (
                "Approved by",
                "— (this login may not read the approvals)"
                if approved is None
                else ", ".join(map(_clean, approved)) or "—",
            )
        )
        people.append(("Settled by hand by", ", ".join(map(_clean, details.settled_by)) or "—"))
    else:
        settled = [e for e in details.events if e.who]
        people.append(
            ("Approved / settled by", ", ".join(sorted({_clean(e.who) for e in settled})) or "—")
        )
    printed = now_ms if now_ms is not None else int(datetime.now().timestamp() * 1000)
    return Receipt(
        title=f"Payout receipt · {record.request_id}",
        environment="LIVE" if record.environment == "live" else "SANDBOX (test, no real money)",
        payout=payout,
        recipient=recipient,
        timeline=timeline,
        people=people,
        printed_at=_local(printed),
    )
