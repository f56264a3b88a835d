"""``python -m nvmm_port.cli``: the same command line as gen.py and nvmm-port."""

import sys

from . import main

sys.exit(main())
