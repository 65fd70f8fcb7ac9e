"""Reference docs generated from the code: settings (config.py) and the CLI (cli.py)."""
