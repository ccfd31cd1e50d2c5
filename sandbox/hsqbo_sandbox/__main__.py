"""`python -m hsqbo_sandbox`: the `hsqbo-sandbox` console script."""

import sys

from hsqbo_sandbox import main

sys.exit(main())
