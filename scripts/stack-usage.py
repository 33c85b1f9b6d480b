#!/usr/bin/env python3
"""Static worst-case stack usage of the linked driver image: the command
line of the `stackusage` package beside this file (see its __init__.py and
scripts/stack-usage.sh). The driver's tables are in driver/stack-tables.py."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from stackusage.cli import main  # noqa: E402

sys.exit(main())
