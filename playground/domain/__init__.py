"""Frozen dataclasses that cross threads and layers: requests, events, results, Cancel."""
