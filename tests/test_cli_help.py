"""Every subcommand's ``--help``: each option explained, each default shown (and shown right)."""

from __future__ import annotations

import argparse
import re

import pytest

from adaptive.cli import build_parser, main


def _subparsers(parser: argparse.ArgumentParser, prefix=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name), sub
                yield from _subparsers(sub, (*prefix, name))


COMMANDS = list(_subparsers(build_parser()))


def test_every_subcommand_is_covered():
    names = {" ".join(c) for c, _ in COMMANDS}
    assert {"demo", "take", "score", "calibrate", "simulate", "serve", "bank check", "bank info",
            "bank schema", "candidates register", "candidates code", "candidates list"} <= names


@pytest.mark.parametrize("command,parser", COMMANDS, ids=[" ".join(c) for c, _ in COMMANDS])
def test_every_option_has_help_and_its_default(command, parser):
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)) or action.help == argparse.SUPPRESS:
            continue
        name = "/".join(action.option_strings) or action.dest
        assert action.help and len(action.help) > 10, f"{' '.join(command)} {name}: no help"
        default = action.default
        if default in (None, False) or isinstance(action, argparse._StoreTrueAction):
            continue
        m = re.search(r"\(default:? ([^)]*)\)", action.help)
        assert m, f"{' '.join(command)} {name}: default {default!r} not shown"
        shown = m.group(1).split()[0].rstrip(",;")
        if isinstance(default, (int, float)):
            assert float(shown) == default, (name, shown, default)
        else:
            assert shown == str(default), (name, shown, default)


@pytest.mark.parametrize("command", [c for c, _ in COMMANDS], ids=[" ".join(c) for c, _ in COMMANDS])
def test_help_prints_and_exits_zero(command, capsys):
    with pytest.raises(SystemExit) as stop:
        main([*command, "--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: adaptive " + " ".join(command))


def test_bank_info_writes_no_file_unless_asked(tmp_path, monkeypatch, capsys):
    from adaptive.resources import pool_path

    monkeypatch.chdir(tmp_path)
    assert main(["bank", "info", str(pool_path("cmcs"))]) == 0
    assert list(tmp_path.iterdir()) == [] and "information curve" not in capsys.readouterr().out
    assert main(["bank", "info", str(pool_path("cmcs")), "--no-plot"]) == 0  # the old flag still works
    assert list(tmp_path.iterdir()) == []
