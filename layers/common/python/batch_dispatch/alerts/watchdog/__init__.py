"""The watchdog: silence becomes an alert. Every few minutes WatchdogFunction checks each job type for a
success it is overdue (lateness), jobs running longer than expected (long_running) and schedule ticks
parked in ScheduleDLQ (missed_ticks), and posts each finding once (state in AlertStateTable)."""
