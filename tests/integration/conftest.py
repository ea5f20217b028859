"""Integration tier: fixtures come from tests/conftest.py (services, isolated schemas)."""
