"""Helpers the tests share: plain functions and classes, never fixtures (those live in the
``conftest.py`` files) and never tests. Test modules import them from here, not from each
other nor from a ``conftest.py``."""
