"""``python -m bifrost``: the same command-line tool as the ``bifrost`` script."""
from .cli import main

main()
