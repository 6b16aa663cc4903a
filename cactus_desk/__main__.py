"""``python -m cactus_desk`` runs the command-line entry point."""

import sys

from cactus_desk.cli import main

sys.exit(main())
