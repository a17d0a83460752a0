"""docker-compose.yml and the Dockerfile as data, with Docker's rules for what a container runs."""

from __future__ import annotations

import json
import re

import yaml

from tests.conftest import ROOT

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
RUNTIME = DOCKERFILE.split("AS runtime", 1)[1]  # the stage the image is made of
IMAGE = SERVICES["server"]["image"]  # built by the server service, reused by the workers


def image_instruction(name: str) -> list[str] | None:
    """The exec form (a JSON list) of the runtime stage's last ``ENTRYPOINT`` or ``CMD``."""
    found = re.findall(rf"^{name}\s+(\[.*\])\s*$", RUNTIME, re.MULTILINE)
    return json.loads(found[-1]) if found else None


def container_command(service: str) -> list[str]:
    """What a container of ``service`` executes: the entrypoint followed by the command.

    Compose's ``command`` replaces the image's ``CMD``; its ``entrypoint`` replaces the
    image's ``ENTRYPOINT`` and drops the image's ``CMD``.
    """
    spec = SERVICES[service]
    entrypoint = spec["entrypoint"] if "entrypoint" in spec else image_instruction("ENTRYPOINT")
    default = None if "entrypoint" in spec else image_instruction("CMD")
    return [*(entrypoint or []), *(spec.get("command") or default or [])]
