"""Command line: ``python -m interpret <command>``.

Each module of this package adds its subcommands with ``register(subparsers)``
(``predict``, ``layers``, ``methods``, ``explain`` in :mod:`.inspect`; ``app`` in
:mod:`.app`; ...), so a new command is a new module.  Bad input prints one line
(``error: ...``) and exits with status 2; never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from typing import List, Optional

from .common import EXIT_BAD_INPUT

__all__ = ["main", "build_parser", "EXIT_BAD_INPUT"]


def _command_modules():
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name not in ("common", "__main__"):
            yield importlib.import_module(f"{__name__}.{info.name}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m interpret",
                                description="See why a PyTorch image model says what it says.")
    sub = p.add_subparsers(dest="command", required=True)
    for mod in _command_modules():
        mod.register(sub)
    return p


def _parse(argv: Optional[List[str]]):
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        if not getattr(args, "passes_unknown", False):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.passthrough = extra
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = _parse(argv)
    try:
        from interpret.errors import InputError
    except Exception as exc:  # pragma: no cover - broken install
        print(f"error: cannot import interpret: {exc}", file=sys.stderr)
        return 1
    try:
        return int(args.func(args) or 0)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # unexpected: still one line, but say it is a bug
        print(f"error: unexpected {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} "
              "(please report this)", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
