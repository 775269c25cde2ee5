"""``python -m playground.cli``: the headless command without the desktop app."""

import sys

from playground.cli.main import main

sys.exit(main())
