"""`python -m qd_operator`."""

import sys

from qd_operator.cli import main

sys.exit(main())
