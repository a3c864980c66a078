"""``python -m datl_helpers COMMAND``: the command line (:mod:`datl_helpers.cli`)."""

from datl_helpers.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
