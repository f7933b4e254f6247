"""``python -m mailgate``: the same as the ``mailgate`` command."""

import sys

from mailgate.cli import main

sys.exit(main())
