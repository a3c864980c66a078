"""Build and cache the offline domains (and, with --download and internet, the online ones).

    python data_scripts/build_domains.py                       # syn, mnist, mnistm, digits
    python data_scripts/build_domains.py --download usps svhn  # online domains, via torchvision

The same as ``python -m datl_helpers prepare``; Binder's postBuild and CI call that command.
"""

from __future__ import annotations

import argparse
import sys

from datl_helpers.cli.main import main as datl_main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("domains", nargs="*", help="domain names (default: the offline ones)")
    parser.add_argument("--download", action="store_true", help="download online domains")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    cli = ([] if args.data_dir is None else ["--data-dir", args.data_dir]) + ["prepare"]
    if args.domains:
        cli += ["--domains", *args.domains]
    if args.download:
        cli.append("--download")
    return datl_main(cli)


if __name__ == "__main__":
    sys.exit(main())
