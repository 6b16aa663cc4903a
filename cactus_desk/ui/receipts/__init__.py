"""A payout's receipt as a PDF (Qt's own PDF writer) and on paper (Print)."""
