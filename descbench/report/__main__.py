"""``python -m descbench.report DIR [--compare A B]``."""

import sys

from descbench.report import main

sys.exit(main())
