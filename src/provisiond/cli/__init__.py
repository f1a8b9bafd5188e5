"""The ``provisiond`` command: one module per command group."""
