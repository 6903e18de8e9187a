"""The ``ti-workflow`` command line: one module per command group."""
