"""A missing or broken kubeconfig is one `UserError` that names the file and the fix, never the client library's
words ("Expected key current-context")."""

from __future__ import annotations

from pathlib import Path

import pytest

from aihpa.errors import UserError
from aihpa.k8s import api_client

NO_CONTEXT = "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n"
UNKNOWN_CONTEXT = "apiVersion: v1\nkind: Config\ncurrent-context: gone\nclusters: []\ncontexts: []\nusers: []\n"
GOOD = """apiVersion: v1
kind: Config
current-context: sim
clusters: [{name: sim, cluster: {server: "http://127.0.0.1:1"}}]
contexts: [{name: sim, context: {cluster: sim, user: sim}}]
users: [{name: sim, user: {}}]
"""


@pytest.fixture(autouse=True)
def _outside_a_cluster(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


async def _error(**kwargs: str) -> str:
    with pytest.raises(UserError) as caught:
        client = await api_client(**kwargs)
        await client.close()
    message = str(caught.value)
    assert "Expected key" not in message and "\n" not in message
    return message


async def test_no_kubeconfig_anywhere_says_where_it_looked_and_what_to_do() -> None:
    assert await _error() == ("no kubeconfig at ~/.kube/config and not in a cluster: pass --kubeconfig or set "
                              "KUBECONFIG")


async def test_a_missing_file_names_the_flag_or_variable_it_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "nope.yaml"
    assert await _error(kubeconfig=str(missing)) == (
        f"no kubeconfig at {missing} (--kubeconfig): check the path given to --kubeconfig")
    monkeypatch.setenv("KUBECONFIG", str(missing))
    assert await _error() == (
        f"no kubeconfig at {missing} ($KUBECONFIG): set KUBECONFIG to an existing file, or pass --kubeconfig")


@pytest.mark.parametrize(
    ("text", "context", "says"),
    [
        (NO_CONTEXT, None, "it sets no current-context: choose one with `kubectl config use-context NAME`"),
        (UNKNOWN_CONTEXT, None, "its current-context is not among its contexts"),
        (GOOD, "other", "its context 'other' is not among its contexts"),
        ("a: [\n", None, "it is not YAML"),
        ("", None, "it is not a kubeconfig"),
    ],
    ids=["no-current-context", "unknown-current-context", "unknown-context", "not-yaml", "empty"],
)
async def test_a_broken_kubeconfig_names_the_file_and_what_is_wrong(
    tmp_path: Path, text: str, context: str | None, says: str
) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(text)
    message = await _error(kubeconfig=str(path), **({} if context is None else {"context": context}))
    assert message.startswith(f"{path} (--kubeconfig) is not a usable kubeconfig: ")
    assert says in message


async def test_a_usable_kubeconfig_gives_a_client(tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(GOOD)
    client = await api_client(kubeconfig=str(path))
    try:
        assert client.configuration.host == "http://127.0.0.1:1"
    finally:
        await client.close()
