"""`python -m qd_extractor`."""

import sys

from qd_extractor.cli import main

sys.exit(main())
