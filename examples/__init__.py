"""Helpers for clients of provisiond, shipped to be used or copied (see README.md in this folder).

A package, so that ``from examples.provisiond_sdk import …`` in a script next to this folder
finds these files before anything else named ``examples``.
"""
