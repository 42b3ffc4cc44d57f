"""``python -m hyper``: run the ``hyper`` command-line tool (see :mod:`hyper.cli`)."""

from hyper.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
