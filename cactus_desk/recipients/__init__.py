"""Saved recipients: a payout's recipient kept under a label to pay again (no Qt, no SQL)."""
