"""Billing analytics on top of the ingested transactions and appointments."""
