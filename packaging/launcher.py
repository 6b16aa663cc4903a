"""Entry script for the PyInstaller bundle: the same ``cactus-desk`` command pip installs."""

import sys

from cactus_desk.cli import main

if __name__ == "__main__":
    sys.exit(main())
