"""Field checks for additional fields: each returns a message for the person, or None when valid.

Every check takes any string (unicode, control characters, megabytes) and answers with a
message; none raises. ``normalize`` gives the form a value takes on the wire.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime

#: Input longer than this is refused by every check before any other work.
MAX_FIELD_LENGTH = 255

# Bidirectional overrides and isolates can make a name read differently than it is stored.
_BIDI_CONTROLS = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_DIGITS = re.compile(r"[0-9]+", re.ASCII)
_EMAIL = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+",
    re.ASCII,
)
_WISE_TAG = re.compile(r"@[A-Za-z0-9][A-Za-z0-9._-]{1,63}", re.ASCII)
_UUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}", re.ASCII)
_EXPIRY = re.compile(r"([0-9]{2})/([0-9]{2})", re.ASCII)
_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}", re.ASCII)
_IBAN = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}", re.ASCII)

_CPF = re.compile(r"[0-9]{3}\.[0-9]{3}\.[0-9]{3}-[0-9]{2}", re.ASCII)
_CNPJ = re.compile(r"[0-9]{2}\.[0-9]{3}\.[0-9]{3}/[0-9]{4}-[0-9]{2}", re.ASCII)
# What people put between the digits of a card or phone number; none of it goes on the wire.
_CARD_SEPARATORS = frozenset(" -\u00a0")
_PHONE_SEPARATORS = frozenset(" -().\u00a0")
_DROP_CARD_SEPARATORS = str.maketrans(dict.fromkeys(_CARD_SEPARATORS))
_DROP_PHONE_SEPARATORS = str.maketrans(dict.fromkeys(_PHONE_SEPARATORS))
_LUHN_DOUBLED = str.maketrans("0123456789", "0246813579")  # a digit doubled, digits added

PHONE_MESSAGE = (
    "10 to 15 digits with the country code, e.g. 79999999999 "
    "(spaces, dashes and a leading + are fine)."
)


# Every character of the categories Cc, Cs, Zl and Zp (fixed sets in Unicode) and the bidi
# controls, as one character class: one C-speed search instead of a lookup per character.
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029" + "".join(sorted(_BIDI_CONTROLS)) + "]"
)


def _unsafe_character(value: str) -> str | None:
    if _UNSAFE.search(value):
        return "Remove the control or invisible characters (line breaks, tabs and the like)."
    return None


def _guard(value: str, max_length: int = MAX_FIELD_LENGTH) -> str | None:
    """The checks every field shares: a string, not too long, no control characters."""
    if not isinstance(value, str):
        return "Enter text."
    if len(value) > max_length:
        return f"Too long: at most {max_length} characters."
    return _unsafe_character(value)


def check_text(value: str) -> str | None:
    """Free text such as a bank name or an address: not blank, no control characters."""
    problem = _guard(value)
    if problem:
        return problem
    if not value.strip():
        return "Must not be blank."
    return None


def check_holder_name(value: str) -> str | None:
    """A person's full name as the bank knows it."""
    problem = _guard(value, 128)
    if problem:
        return problem
    if not value.strip():
        return "Enter the holder's full name."
    if not any(ch.isalpha() for ch in value):
        return "Enter the holder's full name in letters, e.g. John Wick."
    return None


def luhn_ok(digits: str) -> bool:
    """True when the ASCII digit string passes the Luhn check that card numbers carry."""
    # From the right, every second digit is doubled (its digits added: 6 -> 12 -> 3): the
    # table does that for the whole slice, and summing the bytes adds 48 per digit.
    doubled = digits[-2::-2].translate(_LUHN_DOUBLED).encode("ascii", "replace")
    plain = digits[-1::-2].encode("ascii", "replace")
    return (sum(plain) + sum(doubled) - 48 * len(digits)) % 10 == 0


def check_card_number(value: str) -> str | None:
    """12 to 19 digits that pass the Luhn check; spaces between groups are fine."""
    problem = _guard(value, 64)
    if problem:
        return problem
    digits = normalize("card_number", value)
    if not digits:
        return "Enter the card number."
    if not _DIGITS.fullmatch(digits):
        return "Digits only (spaces or dashes between groups are fine), e.g. 4242 4242 4242 4242."
    if not 12 <= len(digits) <= 19:
        return f"A card number has 12 to 19 digits; this one has {len(digits)}."
    if not luhn_ok(digits):
        return "This card number has a typo: its check digit does not match."
    return None


def check_expiry(value: str, *, today: date | None = None) -> str | None:
    """``MM/YY`` with a real month, not in the past."""
    problem = _guard(value, 32)
    if problem:
        return problem
    match = _EXPIRY.fullmatch(value.strip())
    if not match:
        return "Write the expiry as MM/YY, e.g. 07/27."
    month, year = int(match.group(1)), 2000 + int(match.group(2))
    if not 1 <= month <= 12:
        return "The month must be 01 to 12."
    now = today or date.today()
    if (year, month) < (now.year, now.month):
        return f"This card expired in {match.group(0)}."
    return None


def check_phone(value: str) -> str | None:
    """10 to 15 digits with the country code; a leading ``+``, spaces and dashes are dropped."""
    problem = _guard(value, 64)
    if problem:
        return problem
    text = normalize("phone", value)
    if not _DIGITS.fullmatch(text) or not 10 <= len(text) <= 15:
        return PHONE_MESSAGE
    return None


def _compact_phone(value: str) -> str:
    text = value.strip()
    text = text[1:] if text.startswith("+") else text
    return text.translate(_DROP_PHONE_SEPARATORS)


def _mod11_digit(digits: str, weights: range | list[int]) -> str:
    total = sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 11
    return "0" if total < 2 else str(11 - total)


def cpf_ok(digits: str) -> bool:
    """True for an 11-digit CPF whose two check digits match (all-same digits are invalid)."""
    if len(digits) != 11 or not _DIGITS.fullmatch(digits) or len(set(digits)) == 1:
        return False
    first = _mod11_digit(digits[:9], range(10, 1, -1))
    return digits[9:] == first + _mod11_digit(digits[:9] + first, range(11, 1, -1))


def cnpj_ok(digits: str) -> bool:
    """True for a 14-digit CNPJ whose two check digits match (all-same digits are invalid)."""
    if len(digits) != 14 or not _DIGITS.fullmatch(digits) or len(set(digits)) == 1:
        return False
    weights = [5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2]
    first = _mod11_digit(digits[:12], weights)
    return digits[12:] == first + _mod11_digit(digits[:12] + first, [6, *weights])


def check_email(value: str) -> str | None:
    """An email address of the usual shape (``name@example.com``)."""
    problem = _guard(value, 254)
    if problem:
        return problem
    if not _EMAIL.fullmatch(value.strip()):
        return "Enter an email address, e.g. test@mail.com."
    return None


def check_skrill_account(value: str) -> str | None:
    """A Skrill account: the email or the phone number (digits only) it is registered to."""
    problem = _guard(value, 254)
    if problem:
        return problem
    text = value.strip()
    if "@" in text:
        return check_email(text)
    if check_phone(text) is None:
        return None
    return "Enter the Skrill email or phone number (digits only), e.g. test@mail.com."


def check_wise_tag(value: str) -> str | None:
    """A Wise tag: ``@`` then letters, digits, ``.``, ``_`` or ``-``."""
    problem = _guard(value, 64)
    if problem:
        return problem
    text = value.strip()
    if not _WISE_TAG.fullmatch(text):
        if _WISE_TAG.fullmatch("@" + text):
            return f"A Wise tag starts with @, e.g. @{text}."
        return "Enter the Wise tag: @ then letters or digits, e.g. @examplovich23."
    return None


def check_pix_key(value: str) -> str | None:
    """A PIX key: CPF (11 digits) or CNPJ (14) with valid check digits, written bare or
    punctuated (123.456.789-09, 12.345.678/0001-95); a phone with its country code; an email;
    or a random key (UUID)."""
    problem = _guard(value, 254)
    if problem:
        return problem
    text = value.strip()
    if _UUID.fullmatch(text) or ("@" in text and check_email(text) is None):
        return None
    digits = normalize("pix_key", text)
    if _CPF.fullmatch(text) or (_DIGITS.fullmatch(text) and len(text) == 11):
        return None if cpf_ok(digits) else "This CPF has a typo: its check digits do not match."
    if _CNPJ.fullmatch(text) or (_DIGITS.fullmatch(text) and len(text) == 14):
        return None if cnpj_ok(digits) else "This CNPJ has a typo: its check digits do not match."
    if text[:1] in "+0123456789" and check_phone(text) is None:
        return None
    return (
        "Enter a PIX key: CPF (e.g. 123.456.789-09), CNPJ (e.g. 12.345.678/0001-95), phone "
        "with country code, email or random key, e.g. 123e4567-e89b-12d3-a456-426655440000."
    )


def check_datetime(value: str, *, now: datetime | None = None) -> str | None:
    """A real date and time written ``YYYY-MM-DD HH:MM``, not in the past (local time)."""
    problem = _guard(value, 32)
    if problem:
        return problem
    text = value.strip()
    if not _DATETIME.fullmatch(text):
        return "Write the time as YYYY-MM-DD HH:MM, e.g. 2030-05-01 10:22."
    try:
        moment = datetime.strptime(text, "%Y-%m-%d %H:%M")
    except ValueError:
        return f"{text} is not a real date and time."
    # Like an expired card: a pickup time that has passed cannot be met.
    current = (now or datetime.now()).replace(second=0, microsecond=0)
    if moment < current:
        return f"This time has passed (it is now {current:%Y-%m-%d %H:%M})."
    return None


def check_code(value: str) -> str | None:
    """A verification code: 4 to 12 digits."""
    problem = _guard(value, 64)
    if problem:
        return problem
    text = value.strip()
    if not _DIGITS.fullmatch(text) or not 4 <= len(text) <= 12:
        return "Digits only, 4 to 12 of them, e.g. 123456."
    return None


def _iban_ok(iban: str) -> bool:
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def check_account_number(value: str) -> str | None:
    """A bank account: 6 to 34 digits, or an IBAN (letters allowed) with a valid check."""
    problem = _guard(value, 64)
    if problem:
        return problem
    text = normalize("account_number", value)
    if _DIGITS.fullmatch(text):
        if 6 <= len(text) <= 34:
            return None
        return "An account number has 6 to 34 digits, e.g. 40702810800070000366."
    if _IBAN.fullmatch(text):
        return None if _iban_ok(text) else "This IBAN has a typo: its check digits do not match."
    return "Enter the account number (6 to 34 digits) or an IBAN, e.g. 40702810800070000366."


def check_papara_account(value: str) -> str | None:
    """A Papara account number: 10 digits."""
    problem = _guard(value, 64)
    if problem:
        return problem
    text = value.strip()
    if not _DIGITS.fullmatch(text) or len(text) != 10:
        return "A Papara account number is 10 digits, e.g. 9925125660."
    return None


def check_flag(value: str) -> str | None:
    """A yes/no flag written ``true`` or ``false``."""
    problem = _guard(value, 16)
    if problem:
        return problem
    if value.strip().lower() not in ("true", "false"):
        return "Choose yes or no."
    return None


CHECKS: dict[str, Callable[[str], str | None]] = {
    "text": check_text,
    "holder_name": check_holder_name,
    "card_number": check_card_number,
    "expiry": check_expiry,
    "phone": check_phone,
    "email": check_email,
    "skrill_account": check_skrill_account,
    "wise_tag": check_wise_tag,
    "pix_key": check_pix_key,
    "datetime": check_datetime,
    "code": check_code,
    "account_number": check_account_number,
    "papara_account": check_papara_account,
    "flag": check_flag,
}


def normalize(check: str, value: str) -> str:
    """Return the wire form of a value: card numbers lose their spaces and dashes, phones
    their ``+``, spaces, dashes and brackets (so does a phone used as a Skrill account or a
    PIX key, and a punctuated CPF or CNPJ), account numbers their spaces with IBAN letters
    upper-cased, flags are lower-cased; everything else loses surrounding whitespace."""
    if check == "card_number":
        return value.strip().translate(_DROP_CARD_SEPARATORS)
    if check == "account_number":
        return "".join(value.split()).upper()
    if check == "phone" or (check == "skrill_account" and "@" not in value):
        return _compact_phone(value)
    if check == "pix_key":
        text = value.strip()
        if _CPF.fullmatch(text) or _CNPJ.fullmatch(text):
            return "".join(ch for ch in text if ch.isdigit())
        if "@" in text or _UUID.fullmatch(text):
            return text
        return _compact_phone(text) if text[:1] == "+" or text[:1].isdigit() else text
    if check == "flag":
        return value.strip().lower()
    return value.strip()
