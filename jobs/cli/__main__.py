"""``python -m jobs.cli``: the ``rapport`` command."""

import sys

from jobs.cli import main

sys.exit(main())
