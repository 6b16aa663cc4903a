"""Tests of the Qt screens, driven through pytest-qt."""
