"""The invoice status lifecycle: verified callbacks, the events table, manual reconciliation.

Import the modules directly (``cactus_desk.callbacks.apply`` and so on): this package stays
empty so that the history store can use ``lifecycle`` without an import cycle.
"""
