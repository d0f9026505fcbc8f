"""Shared fixtures: a fixed test key and configs."""

from __future__ import annotations

import pytest

from deid.api import make_config
from deid.config import DeidConfig

TEST_KEY = bytes.fromhex("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff")
OTHER_KEY = bytes.fromhex("ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100")


@pytest.fixture
def config() -> DeidConfig:
    return make_config(key=TEST_KEY, pixels="never")
