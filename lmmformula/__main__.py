"""``python -m lmmformula``: the command line (see lmmformula.cli)."""

from .cli import main_exit

main_exit()
