"""``python -m ald_tune.cli``: the ``ald-tune`` command."""

import sys

from ald_tune.cli.main import main

sys.exit(main())
