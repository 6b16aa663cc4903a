"""The merchant's balances in the status bar, fetched off the GUI thread."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from typing import TYPE_CHECKING

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QToolButton, QWidget

from cactus_desk.money import currencies, format_major, with_decimals
from cactus_desk.ui import style
from cactus_desk.ui.workers import Runner

if TYPE_CHECKING:
    # The gateway client (httpx) and the models (pydantic) load with the first fetch, on
    # its worker: the window's start does not wait for them.
    from cactus_desk.gateway.models import BalanceResponse
    from cactus_desk.profiles import Profile

CHANNEL = "balance"
# A balance is a glance, not a payout: give up long before a payout's 180 s read timeout.
BALANCE_READ_TIMEOUT = 30.0
# The status bar shows this many currencies; the tooltip lists them all.
# Two fit in the status bar beside a message; all of them are in the tooltip.
MAX_SHOWN = 2

SaltProvider = Callable[[], "str | None"]


class BalanceFetchError(RuntimeError):
    """The balance could not be asked for (no salt, bad settings); the message is plain."""


@dataclass(frozen=True)
class BalanceLine:
    """One currency's total over the gateway's balances, in minor units when the code is known."""

    currency: str
    available_major: Decimal
    amount_major: Decimal
    available_minor: int | None
    names: tuple[str, ...]
    exponent: int | None = None  # the profile's decimals for the code; None when it is unknown


def to_minor(major: Decimal, exponent: int) -> int:
    """Convert a major-unit Decimal to integer minor units, rounding down.

    Rounding down never overstates what is available, so the over-balance warning is never
    hidden by a fraction of a minor unit.
    """
    scaled = major.scaleb(exponent)
    return int(scaled.to_integral_value(rounding=ROUND_FLOOR))


def summarise(
    response: BalanceResponse, decimals: Mapping[str, int] | None = None
) -> list[BalanceLine]:
    """Add up the balances per currency, in the order the gateway listed them.

    ``decimals`` is the profile's override of a currency's decimals (``Profile.decimals``).
    """
    known = {code: with_decimals(cur, decimals) for code, cur in currencies().items()}
    totals: dict[str, list[Decimal]] = {}
    names: dict[str, list[str]] = {}
    for entry in response.balances:
        code = (entry.currency or "").strip().upper() or "?"
        available, amount = totals.setdefault(code, [Decimal(0), Decimal(0)])
        totals[code] = [available + entry.available, amount + entry.amount]
        if entry.name:
            names.setdefault(code, []).append(entry.name)
    lines = []
    for code, (available, amount) in totals.items():
        exponent = known[code].exponent if code in known else None
        minor = None if exponent is None else to_minor(available, exponent)
        lines.append(
            BalanceLine(code, available, amount, minor, tuple(names.get(code, ())), exponent)
        )
    return lines


def _show_major(line: BalanceLine, major: Decimal) -> str:
    if line.exponent is not None:
        cur = with_decimals(line.currency, {line.currency: line.exponent})
        return format_major(to_minor(major, line.exponent), cur)
    return f"{major:f}"


# Qt's own images of its reload icon (QtWidgets' resources), in the sizes it has.
_QT_RELOAD_IMAGES = ":/qt-project.org/styles/commonstyle/images/refresh-{}.png"


def reload_icon() -> QIcon:
    """The style's reload icon (``QStyle.SP_BrowserReload``): the desktop theme's
    "view-refresh", else Qt's own images, as Qt's common style gives it.

    Built without naming ``QStyle``: its Python type (hundreds of enum values) costs more at
    start than the rest of the balance; it is named only if Qt's images are missing.
    """
    images = QIcon()
    for size in (24, 32):
        images.addFile(_QT_RELOAD_IMAGES.format(size), QSize(size, size))
    if images.availableSizes():
        return QIcon.fromTheme("view-refresh", images)
    from PySide6.QtWidgets import QApplication, QStyle

    return QApplication.style().standardIcon(QStyle.StandardPixmap.SP_BrowserReload)


def fetch_balances(profile: Profile, salt_provider: SaltProvider) -> list[BalanceLine]:
    """Ask the gateway for ``profile``'s balances. Worker thread: reads the keyring, does I/O."""
    from cactus_desk.gateway.client import CactusClient

    salt = salt_provider()
    if not salt:
        raise BalanceFetchError(f"no salt is stored for the profile {profile.name!r}")
    try:
        client = CactusClient(
            profile.base_url,
            read_timeout=min(profile.read_timeout, BALANCE_READ_TIMEOUT),
            ca_bundle=profile.ca_bundle,
        )
    except ValueError as exc:
        raise BalanceFetchError(str(exc)) from None
    with client:
        response = client.balance(profile.merchant_id, profile.site_id, salt)
    return summarise(response, profile.decimals)


class BalanceWidget(QWidget):
    """ "Balance: USD 10 000.00 · EUR 14 600.00 (available)" with a refresh button.

    ``balancesChanged`` carries ``dict[currency_code, available_minor]``; it is empty when the
    balance is unknown (no profile, or the last fetch failed).
    """

    balancesChanged = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._profile: Profile | None = None
        self._salt_provider: SaltProvider | None = None
        self._balances: dict[str, int] = {}
        self._lines: list[BalanceLine] = []
        self._lead: str | None = None
        self._held = False  # fetches wait for release() (the window's start)
        self._fetch_due = False
        self._runner = Runner(self)

        self._label = QLabel(self)
        self._label.setObjectName("balanceLabel")
        self._label.setTextFormat(Qt.TextFormat.PlainText)
        self._label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        self._button = QToolButton(self)
        self._button.setObjectName("balanceRefreshButton")
        self._button.setIcon(reload_icon())
        self._button.setToolTip("Refresh the balance")
        self._button.setAccessibleName("Refresh balance")
        self._button.setAutoRaise(True)
        self._button.clicked.connect(self.refresh)

        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 0)
        layout.setSpacing(4)
        layout.addWidget(self._label)
        layout.addWidget(self._button)
        self._show_plain("Balance: no profile selected")
        self._button.setEnabled(False)

    # -- public ---------------------------------------------------------------------------

    def set_profile(self, profile: Profile | None, salt_provider: SaltProvider | None) -> None:
        """Show ``profile``'s balance (fetched now); None clears it. GUI thread."""
        self._runner.invalidate(CHANNEL)
        self._fetch_due = False
        self._profile = profile
        self._salt_provider = salt_provider
        self._button.setEnabled(profile is not None and salt_provider is not None)
        self._lines = []
        self._set_balances({})
        if profile is None or salt_provider is None:
            self._show_plain("Balance: no profile selected")
            return
        self.refresh()

    def hold(self) -> None:
        """Hold fetches back until ``release`` (the window's start is not over yet): the
        widget says it is loading meanwhile, so nothing moves when the fetch starts."""
        self._held = True

    def release(self) -> None:
        """Start the fetch held back by ``hold``, if one is due."""
        self._held = False
        if self._fetch_due:
            self._fetch_due = False
            self.refresh()

    def set_currency(self, currency: str | None) -> None:
        """Show ``currency`` (the one being paid in) first. GUI thread."""
        self._lead = currency
        if self._lines:
            self._show_lines()

    def refresh(self) -> None:
        """Fetch the balance again for the current profile. GUI thread."""
        profile, provider = self._profile, self._salt_provider
        if profile is None or provider is None:
            return
        if not self._lines:
            self._show_plain(f"Balance: loading for {profile.name}…")
        # Else the figures stay while they are fetched again (after every payout): a text that
        # flipped to "loading" and back re-laid out the whole window twice each time.
        self._button.setEnabled(False)
        if self._held:
            self._fetch_due = True
            return
        self._runner.run(
            lambda: fetch_balances(profile, provider),
            self._on_loaded,
            self._on_failed,
            channel=CHANNEL,
        )

    def balances(self) -> dict[str, int]:
        """The last available balances, ``{currency: minor units}`` (empty when unknown)."""
        return dict(self._balances)

    def text(self) -> str:
        """What the widget shows."""
        return self._label.text()

    def is_busy(self) -> bool:
        """True while a fetch is running."""
        return self._runner.busy(CHANNEL)

    # -- results (GUI thread) -------------------------------------------------------------

    def _on_loaded(self, lines: list[BalanceLine]) -> None:
        self._button.setEnabled(True)
        self._lines = lines
        if not lines:
            self._show_plain("Balance: the gateway reported no balances")
            self._set_balances({})
            return
        self._show_lines()
        self._set_balances(
            {
                line.currency: line.available_minor
                for line in lines
                if line.available_minor is not None
            }
        )

    def _show_lines(self) -> None:
        lines = sorted(self._lines, key=lambda line: line.currency != self._lead)  # stable
        shown = " · ".join(
            f"{line.currency} {_show_major(line, line.available_major)}"
            for line in lines[:MAX_SHOWN]
        )
        more = f" +{len(lines) - MAX_SHOWN} more" if len(lines) > MAX_SHOWN else ""
        self._show_plain(f"Balance: {shown}{more} (available)")
        tips = []
        for line in lines:
            held_in = f" in {', '.join(line.names)}" if line.names else ""
            tips.append(
                f"{line.currency}: {_show_major(line, line.available_major)} available of "
                f"{_show_major(line, line.amount_major)}{held_in}"
            )
        self._label.setToolTip("\n".join(tips))

    def _on_failed(self, error: BaseException) -> None:
        from cactus_desk.gateway.client import GatewayError

        self._lines = []
        self._button.setEnabled(True)
        if isinstance(error, GatewayError):
            reason = error.message
        elif isinstance(error, BalanceFetchError | RuntimeError | ValueError | OSError):
            reason = str(error)
        else:
            reason = f"unexpected error ({type(error).__name__})"
        reason = reason.strip().rstrip(".") or "no reason given"
        self._label.setText(f"Balance unavailable: {reason}")
        self._label.setToolTip(reason)
        self._label.setStyleSheet(f"QLabel {{ color: {style.ERROR_FG}; }}")
        self._set_balances({})

    def _show_plain(self, text: str) -> None:
        self._label.setText(text)
        self._label.setToolTip("")
        if self._label.styleSheet():  # the error colour; setting even an empty sheet is slow
            self._label.setStyleSheet("")

    def _set_balances(self, balances: dict[str, int]) -> None:
        self._balances = balances
        self.balancesChanged.emit(dict(balances))
