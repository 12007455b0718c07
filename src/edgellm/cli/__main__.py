"""``python -m edgellm.cli``: the ``edgellm`` command where the console script is not on PATH."""

from . import main

raise SystemExit(main())
