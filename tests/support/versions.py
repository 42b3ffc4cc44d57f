"""What the test run is made of, where it changes what the test servers do.

CI runs the suite a second time with the lowest hpack, hyperframe and h2 that
pyproject.toml allows (``HYPER_TEST_LOWEST_VERSIONS=1``, set by ``.ci/run``). hypercorn, one
of the test servers, speaks HTTP/2 through the same h2 then, and behaves as it does on that
release: tests of hypercorn's own behaviour say so here rather than fail.
"""

from __future__ import annotations

import os

#: The run uses the lowest allowed releases (hypercorn runs on the oldest h2).
LOWEST_VERSIONS = os.environ.get("HYPER_TEST_LOWEST_VERSIONS") == "1"
