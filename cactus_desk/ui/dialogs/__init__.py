"""Dialogs of the shell: about, callback import, a damaged or missing history."""
