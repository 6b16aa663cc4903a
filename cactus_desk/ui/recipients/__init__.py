"""Saved recipients in the payout form: the picker, saving one, repeating a payout."""
