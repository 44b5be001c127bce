import sys

from urgence.app.cli import main

sys.exit(main())
