"""What sending an approved request needs of this desk: the profile's salt, and the profile as
it was when the request was submitted (a payout and a batch alike)."""

from __future__ import annotations

from pathlib import Path

from cactus_desk.history import open_profiles
from cactus_desk.history.approvals import ApprovalRequest
from cactus_desk.payouts.payout import PayoutTarget
from cactus_desk.profiles import Profile, ProfileStoreError
from cactus_desk.secrets import KeyringError, SecretStore


class NotSendableHere(Exception):
    """This desk cannot send the approved request (nothing left it); the message says why."""


def request_target(request: ApprovalRequest) -> PayoutTarget:
    """Where the approved request goes, as it was submitted."""
    return PayoutTarget(
        request.profile_id,
        request.profile_name,
        request.environment,
        request.merchant_id,
        request.site_id,
    )


def sending_profile(
    data_dir: Path, url: str, request: ApprovalRequest, thing: str
) -> Profile | str:
    """The request's profile, unchanged since ``thing`` (``"payout"``, ``"batch"``) was
    submitted; a text instead when this desk holds no salt for it (another desk sends it).

    Raises ``NotSendableHere`` (the keyring or the profile cannot be read, or it changed).
    """
    try:
        salt = SecretStore().get_salt(request.profile_id)
    except KeyringError as exc:
        raise NotSendableHere(str(exc)) from None
    if not salt:
        return (
            f"This computer has no salt for {request.profile_name!r}, so it does not send the "
            f"{thing}; a desk holding it sends it with: cactus-desk approvals send {request.id}"
        )
    try:
        profile = open_profiles(data_dir, url).get_by_id(request.profile_id)
    except (LookupError, ProfileStoreError) as exc:
        raise NotSendableHere(
            f"The profile {request.profile_name!r} cannot be read ({exc})."
        ) from None
    if PayoutTarget.of(profile) != request_target(request):
        raise NotSendableHere(
            f"The profile {profile.name!r} changed since the {thing} was submitted; reject it "
            "and submit it again."
        )
    return profile
