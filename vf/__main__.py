"""python -m vf: the command line (vf/cli.py)."""
import sys

from .cli import main

sys.exit(main())
