"""Helpers shared by tests (never imported from test modules): tiny data, reference implementations, configs."""
