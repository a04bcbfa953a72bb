"""python -m demo_static export DIR [...]   |   python -m demo_static examples [...]"""

import sys


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("export", "examples"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    if argv[0] == "export":
        from server.export_static import main as run
    else:
        from .examples import main as run
    return run(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
