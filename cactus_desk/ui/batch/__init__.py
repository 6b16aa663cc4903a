"""The window's batch payouts: import a file, fix it in a grid, confirm, send, report."""
