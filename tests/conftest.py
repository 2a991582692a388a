"""Suite-wide setup: one intra-op thread for torch (set before torch is first imported).

The models under test are tiny, so a second thread buys nothing, and on a 2-core machine that is also
running a sandboxed child, a browser or a server, OpenMP's spinning workers slowed single tests 20-40x.
"""

import os

for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")
