"""python -m server [serve] [flags]: the same as `reptile-demo serve`."""

import sys

from .cli import main

sys.exit(main())
