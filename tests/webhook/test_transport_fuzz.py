"""Generated and corrupted bodies through the real TLS server: 200 with a well-formed review, or 400 with a reason."""

from __future__ import annotations

import json
import random
from pathlib import Path

from aihpa.webhook.certs import CertificateAuthority, ServingCert
from tests.webhook.conftest import RESPONSE_SCHEMA, load_fixture
from tests.webhook.test_admission_fuzz import generated_review
from tests.webhook.test_tls_server import serve

SEED = 6
CASES = 400


def _corrupt(rng: random.Random, raw: bytes) -> bytes:
    data = bytearray(raw)
    roll = rng.random()
    if roll < 0.4:
        return bytes(data[: rng.randrange(len(data))])  # truncated
    for _ in range(rng.randint(1, 8)):
        data[rng.randrange(len(data))] = rng.randrange(256)  # flipped bytes, possibly invalid UTF-8
    return bytes(data)


async def test_no_body_ever_gets_a_500_and_every_200_is_a_valid_review(
    tmp_path: Path, pki: tuple[CertificateAuthority, ServingCert]
) -> None:
    rng = random.Random(SEED)
    raw = json.dumps(load_fixture("create-labeled")).encode()
    s, runner = await serve(tmp_path, pki)
    statuses: dict[int, int] = {}
    try:
        for _ in range(CASES):
            body = _corrupt(rng, raw) if rng.random() < 0.3 else json.dumps(generated_review(rng)).encode()
            async with s.session.post(s.url + "/mutate", data=body) as resp:
                statuses[resp.status] = statuses.get(resp.status, 0) + 1
                payload = await resp.json()
            if resp.status == 200:
                assert not list(RESPONSE_SCHEMA.iter_errors(payload))
            else:
                assert resp.status == 400 and payload["error"]
    finally:
        await s.session.close()
        await runner.cleanup()
    assert set(statuses) == {200, 400}, statuses
