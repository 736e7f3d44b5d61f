"""Nudge: SMS payment reminders for unpaid shop orders."""

__version__ = "0.1.0"
