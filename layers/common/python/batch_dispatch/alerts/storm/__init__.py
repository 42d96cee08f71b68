"""Failure storms: many failures in a short time become one digest per window; none goes unreported."""
