"""`python -m agents.corpus`: write the training corpus (see agents.corpus.generate)."""

import sys

from agents.corpus.generate import main

sys.exit(main())
