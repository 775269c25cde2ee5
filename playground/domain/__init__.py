"""Frozen dataclasses and pure functions every layer shares: requests, events, results, Cancel, cells."""
