"""The payout form: method panels, confirmation, sending, the result and balance."""
