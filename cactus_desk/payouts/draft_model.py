"""``PayoutDraft``: a payout as entered, checked for its types (pydantic) at the boundary.

Kept apart from ``payouts.draft`` so checking a form's values does not load pydantic;
``payouts.draft.PayoutDraft`` names this class.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class PayoutDraft(BaseModel):
    """What a person has entered for one payout, before anything is checked or sent."""

    model_config = ConfigDict(extra="forbid")

    profile_id: str
    site_login: str = ""
    currency: str = ""
    method: str = ""
    amount_text: str = ""
    fields: dict[str, str | bool] = Field(default_factory=dict)
    request_id: str = ""
