"""Recurring schedules: cron rules from a library, declarations, and the scheduler."""
