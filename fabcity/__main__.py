"""``python -m fabcity`` runs the CLI."""

import sys

from fabcity.cli import main

sys.exit(main())
