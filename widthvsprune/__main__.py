"""``python -m widthvsprune``: the same as the ``widthvsprune`` command."""

import sys

from widthvsprune.cli import main

sys.exit(main())
