"""Scheduling adapter: timer rows, the sweeper, the APScheduler runner."""
