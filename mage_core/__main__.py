"""`python -m mage_core` runs the `mage` command line."""
import sys

from mage_core.cli import main

sys.exit(main())
