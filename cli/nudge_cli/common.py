"""What every `nudge` command shares: one-line usage errors, the config file, the tables of a
stack, and terminal-safe text. Commands import from here, never from each other or from ``cli``.
"""

from __future__ import annotations

import argparse
import json
import os
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from nudge.bootstrap import ClientFactory, session_clients
from nudge.domain.config import Config, ConfigError, load_config


class UsageError(Exception):
    """Exit 2 with this one line."""


class Parser(argparse.ArgumentParser):
    """One-line usage errors (exit 2) for every command and sub-command."""

    def error(self, message: str) -> NoReturn:  # argparse prints usage over two lines; keep one
        raise UsageError(message)


def read_config_file(path: Path) -> Config:
    """Read a YAML or JSON config file (--config); the core validates what it holds."""
    import yaml

    p = path
    kind = "JSON" if p.suffix == ".json" else "YAML"
    try:
        text = p.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise ConfigError("--config", f"cannot read {p}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError("--config", f"{p} is not UTF-8 text (byte {exc.start + 1})") from None
    try:
        data = json.loads(text) if kind == "JSON" else yaml.safe_load(text)
    except RecursionError:
        raise ConfigError("--config", f"{p} is not valid {kind}: nested too deeply") from None
    except (ValueError, yaml.YAMLError) as exc:  # ValueError: JSON errors, too-long integers
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise ConfigError("--config", f"{p} is not valid {kind}: {first}") from None
    if data is not None and not isinstance(data, dict):
        raise ConfigError("--config", f"{p} must hold a mapping of settings")
    return load_config(data)


def config_file(path: Path | None) -> Config:
    """--config FILE, or the defaults."""
    return read_config_file(path) if path else load_config()


def add_table_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stack", help="the deployed stack's name (its outputs name the tables)")
    parser.add_argument("--ledger-table", help="the reminder ledger table (instead of --stack)")
    parser.add_argument("--orders-table", help="the orders table (instead of --stack)")


def table_names(args: argparse.Namespace) -> tuple[str, str]:
    """(ledger table, orders table) from --stack or from both table options."""
    if args.stack and (args.ledger_table or args.orders_table):
        raise UsageError("--stack: give either --stack or --ledger-table with --orders-table")
    if args.stack:
        from nudge_cli.stack import StackError, stack_output

        try:
            ledger, orders = stack_output(
                aws_clients()("cloudformation"), args.stack, "LedgerTableName", "OrdersTableName"
            )
        except StackError as exc:
            raise UsageError(str(exc)) from None
        return ledger, orders
    if not (args.ledger_table and args.orders_table):
        raise UsageError("--ledger-table: give --stack, or both --ledger-table and --orders-table")
    return args.ledger_table, args.orders_table


def shop_config(args: argparse.Namespace) -> Config:
    """--config FILE; else, with --stack, the config the deployed functions run; else the defaults."""
    if args.config or not args.stack:
        return config_file(args.config)
    from nudge_cli.stack import StackError, stack_config

    clients = aws_clients()
    try:
        return stack_config(clients("cloudformation"), clients("lambda"), args.stack)
    except StackError as exc:
        raise UsageError(str(exc)) from None


# Control (Cc), format (Cf: bidi overrides, zero-width), surrogate, private-use and unassigned
# characters, and line/paragraph separators: order data must not move the cursor, recolour or
# reorder the operator's terminal. They are shown escaped, as Python writes them in a string.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def _escape_unsafe(text: str, escape: Callable[[str], str], keep: str = "") -> str:
    if text.isprintable():  # fast path; also False for harmless spaces like U+3000, checked below
        return text
    return "".join(
        escape(ch) if ch not in keep and unicodedata.category(ch) in _UNSAFE_CATEGORIES else ch for ch in text
    )


def terminal_safe(text: str) -> str:
    return _escape_unsafe(text, lambda ch: repr(ch)[1:-1])


def _json_escape(ch: str) -> str:
    units = ch.encode("utf-16-le", "surrogatepass")
    return "".join(f"\\u{int.from_bytes(units[i : i + 2], 'little'):04x}" for i in range(0, len(units), 2))


def terminal_safe_json(text: str) -> str:
    # json.dumps already escapes U+0000-U+001F inside strings, so a raw newline is layout (kept);
    # the other characters can only be inside strings, where \\uXXXX means the same character.
    return _escape_unsafe(text, _json_escape, keep="\n")


def aws_clients() -> ClientFactory:
    """boto3 clients as the operator's shell configures them: ``AWS_PROFILE``, ``AWS_ENDPOINT_URL``
    (boto3 reads both), and ``AWS_REGION`` over the profile's region."""
    import boto3

    return session_clients(boto3.session.Session(region_name=os.environ.get("AWS_REGION") or None))
