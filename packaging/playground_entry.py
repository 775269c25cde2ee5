"""Frozen entry point: ``playground --self-test`` runs the smoke test, anything else is the ``playground`` command."""

import sys

if __name__ == "__main__":
    if "--self-test" in sys.argv[1:]:
        from ui.shell.self_test import main as self_test

        sys.exit(self_test([a for a in sys.argv[1:] if a != "--self-test"]))
    from ui.shell.app import main

    sys.exit(main())
