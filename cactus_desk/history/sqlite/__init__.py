"""The SQLite adapter of the payout history: the only code that speaks SQL to the file.

Import it only through ``cactus_desk.history`` (which picks the adapter) or from tests.
"""
