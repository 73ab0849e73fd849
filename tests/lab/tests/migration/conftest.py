"""Markers of the migration tests."""


def pytest_configure(config):
    config.addinivalue_line("markers", "lab_args(*args): extra options of `lab up` for the test's fresh lab")
