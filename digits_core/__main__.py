import sys

from digits_core.cli import main

sys.exit(main())
