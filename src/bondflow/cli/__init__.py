"""Command-line interface: one module per subcommand (``cmd_<name>.py`` with ``register``)."""
