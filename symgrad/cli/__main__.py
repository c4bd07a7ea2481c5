"""``python -m symgrad.cli``: the ``symgrad`` console script."""

import sys

from symgrad.cli.main import main

sys.exit(main())
