"""Batch payouts from CSV and spreadsheet files (Qt-free): reading, column mapping,
validation, deterministic batch and row request ids, sending with bounded concurrency,
crash-safe resume and reports."""
