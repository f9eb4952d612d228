from __future__ import annotations

import sys

from workshop.cli import main

sys.exit(main())
