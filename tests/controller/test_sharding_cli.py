"""`aihpa controller`'s flags for shards and the API client's rate limit: parsed into the settings and the client."""

from __future__ import annotations

import argparse

import pytest

from aihpa.cli import build_parser
from aihpa.controller_cli import _settings
from aihpa.errors import UserError
from aihpa.k8s.client import DEFAULT_BURST, DEFAULT_QPS


def parse(*flags: str) -> argparse.Namespace:
    return build_parser("controller").parse_args(["controller", *flags])


def test_the_kube_api_flags_default_to_the_clients_own_limits() -> None:
    args = parse()
    assert (args.kube_api_qps, args.kube_api_burst) == (DEFAULT_QPS, DEFAULT_BURST)


def test_shard_flags_make_the_settings_of_one_shard() -> None:
    settings = _settings(parse("--shards", "4", "--shard", "3"))
    assert (settings.shards, settings.shard) == (4, 3)
    assert (_settings(parse()).shards, _settings(parse()).shard) == (1, 0)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--shards", "0"), "--shards must be at least 1"),
        (("--shards", "3", "--shard", "3"), r"--shard must be in 0\.\.2"),
        (("--shard", "1"), r"--shard must be in 0\.\.0"),
        (("--kube-api-qps", "-1"), "--kube-api-qps must be 0"),
        (("--kube-api-burst", "0"), "--kube-api-burst at least 1"),
    ],
)
def test_bad_shard_and_rate_flags_stop_the_start_with_the_fix(flags: tuple[str, ...], message: str) -> None:
    with pytest.raises(UserError, match=message):
        _settings(parse(*flags))


def test_the_help_shows_the_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse("--help")
    text = capsys.readouterr().out
    for needle in ("--shards N", "(default: 1", "--shard I", "(default: 0)", f"(default: {DEFAULT_QPS:g})",
                   f"(default: {DEFAULT_BURST})"):
        assert needle in " ".join(text.split()), needle
