"""The history tab: the paged model, the panel, the timeline and its dialogs."""
