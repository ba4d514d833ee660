"""Governance: who may read what, compiled into the query itself, and the audit log."""
