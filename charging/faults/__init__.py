"""Fault drills: the engine's parts crashed mid-run on servers of their own (``make faults``)."""
