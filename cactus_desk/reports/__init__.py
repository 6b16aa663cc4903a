"""What a clerk hands on: totals as CSV or XLSX, and a payout's receipt text (no Qt)."""
