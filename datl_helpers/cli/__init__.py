"""The command line, ``python -m datl_helpers COMMAND``: one module per command, sharing :mod:`.main`'s parser."""
