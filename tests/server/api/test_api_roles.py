"""Token roles against every state-changing endpoint: admins change everything, members their own runs and
sweeps, viewers nothing; a refusal is 403 saying why, and a refused request changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from server.api.access import Action, action_of
from server.models import ROLES
from server.settings import Settings
from server.store import experiments, runs, sweeps, tokens
from server.sweeps import spec
from trainer.config import TrainConfig

API = "/api/v1"
TINY = {"dataset": "mfeat", "modalities": ["pix", "fou"], "epochs": 2}
SWEEP = {"config": TINY, "methods": ["joint"], "space": {"lr": {"low": 1e-4, "high": 1e-2, "log": True}}, "seeds_for_best": 0}


@dataclass(frozen=True)
class Case:
    """One state-changing request: ``method path`` (``{run}``, ``{experiment}``, ``{sweep}`` filled in) with ``body``."""

    method: str
    path: str
    body: Callable[[], Any] | None
    success: int

    @property
    def route(self) -> str:
        return API + self.path.replace("{run}", "{run_id}").replace("{experiment}", "{experiment_id}").replace("{sweep}", "{sweep_id}")


_names = iter(range(10**6))
CASES = {
    "submit a run": Case("POST", "/runs", lambda: {"config": TINY}, 201),
    "log a run": Case("POST", "/runs", lambda: {"execute": False, "name": "mine"}, 201),
    "submit a grid": Case(
        "POST", "/grids",
        lambda: {"experiment": f"grid {next(_names)}", "grid": {"config": TINY, "methods": ["joint"], "seeds": [0]}}, 201,
    ),
    "rename a run": Case("PATCH", "/runs/{run}", lambda: {"name": "renamed", "tags": ["t"]}, 200),
    "cancel a run": Case("POST", "/runs/{run}/cancel", None, 200),
    "clone a run": Case("POST", "/runs/{run}/clone", lambda: {"overrides": {"seed": 3}}, 201),
    "delete a run": Case("DELETE", "/runs/{run}", None, 204),
    "post metrics": Case("POST", "/runs/{run}/metrics", lambda: {"points": [{"key": "loss", "step": 1, "value": 0.5}]}, 200),
    "post events": Case("POST", "/runs/{run}/events", lambda: {"events": [{"kind": "note", "message": "hi"}]}, 200),
    "start a sweep": Case("POST", "/sweeps", lambda: SWEEP, 201),
    "cancel a sweep": Case("POST", "/sweeps/{sweep}/cancel", None, 200),
    "create an experiment": Case("POST", "/experiments", lambda: {"name": f"new {next(_names)}"}, 201),
    "describe an experiment": Case("PATCH", "/experiments/{experiment}", lambda: {"description": "changed"}, 200),
    "delete an experiment": Case("DELETE", "/experiments/{experiment}", None, 204),
}
# Who may (True) make each request, by role, on a run of its own and on another token's.
RUN_CASES = {"rename a run", "cancel a run", "delete a run", "post metrics", "post events", "cancel a sweep"}
ALLOWED = {
    "admin": {name: True for name in CASES},
    "member": {name: name not in {"describe an experiment", "delete an experiment"} for name in CASES},
    "viewer": dict.fromkeys(CASES, False),
}


@pytest.fixture
def api(make_client, make_settings):
    return make_client(make_settings(auth="on"), drive_sweeps=False)  # a sweep's trials would change the listing


@pytest.fixture
def secrets(database) -> dict[str, str]:
    """A token of each role, and a second member ("other")."""
    with database.transaction() as session:
        made = {role: tokens.create(session=session, name=role, role=role)[1] for role in ROLES}
        made["other"] = tokens.create(session=session, name="other", role="member")[1]
    return made


def token_id(database, name: str) -> int:
    with database.transaction(write=False) as session:
        return tokens.find(session=session, ref=name).id


def seed_targets(database, owner: str) -> tuple[int, int, int]:
    """A queued run and a searching sweep of ``owner`` and an empty experiment, written straight into the store."""
    owner_id = token_id(database, owner)
    plan = spec.plan(spec.SweepCreate.model_validate(SWEEP), Settings(auth="on"))
    with database.transaction() as session:
        run = runs.create(session=session, config=TrainConfig.model_validate(TINY), execute=True, owner_token_id=owner_id)
        experiment = experiments.create(session=session, name="shared")
        sweep = sweeps.create(session=session, name="mine", spec=plan.model_dump(mode="json"), experiment=None, owner_token_id=owner_id)
        return run.id, experiment.id, sweep.id


def send(api, case: Case, secret: str, targets: tuple[int, int, int]):
    run_id, experiment_id, sweep_id = targets
    path = API + case.path.format(run=run_id, experiment=experiment_id, sweep=sweep_id)
    body = case.body() if case.body else None
    return api.request(case.method, path, json=body, headers={"Authorization": f"Bearer {secret}"})


def snapshot(api, secret: str, targets: tuple[int, int, int]) -> tuple[Any, ...]:
    run_id, experiment_id, _ = targets
    headers = {"Authorization": f"Bearer {secret}"}
    run = api.get(f"{API}/runs/{run_id}", headers=headers).json()
    events = api.get(f"{API}/runs/{run_id}/events", headers=headers).json()
    listing = api.get(f"{API}/runs", headers=headers).json()
    experiment = api.get(f"{API}/experiments", headers=headers).json()
    sweeps_listed = api.get(f"{API}/sweeps", headers=headers).json()
    return run, events, [r["id"] for r in listing["items"]], experiment["items"], experiment_id, sweeps_listed["items"]


# Every role with every request; those that name a run, on a run of the caller's own and on another token's.
MATRIX = [
    (role, name, whose)
    for role in ROLES for name in sorted(CASES)
    for whose in (("its own", "another token's") if name in RUN_CASES | {"clone a run"} else ("another token's",))
]


# The policy does not depend on the backend: the matrix runs on PostgreSQL, the production one.
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize(("role", "name", "whose"), MATRIX)
def test_each_role_may_make_exactly_the_requests_of_its_table(api, database, secrets, role, name, whose):
    case = CASES[name]
    targets = seed_targets(database, role if whose == "its own" else "other")
    allowed = ALLOWED[role][name] and (role == "admin" or whose == "its own" or name not in RUN_CASES)
    before = snapshot(api, secrets["admin"], targets)

    response = send(api, case, secrets[role], targets)

    if allowed:
        assert response.status_code == case.success, response.text
    else:
        assert response.status_code == 403, response.text
        assert f"'{role}'" in response.json()["detail"] and f"is a {role}" in response.json()["detail"]
        assert snapshot(api, secrets["admin"], targets) == before  # nothing changed


def test_the_table_covers_every_state_changing_route_of_the_api(api):
    covered = {(case.method, case.route) for case in CASES.values()}
    # Open to every caller by design: logging in and out, and revoking one's own token.
    open_to_all = {("POST", f"{API}/login"), ("POST", f"{API}/logout"), ("POST", f"{API}/session/revoke")}
    changing = {
        (method.upper(), path)
        for path, operations in api.app.openapi()["paths"].items() if path.startswith(API)
        for method in operations if method.upper() not in ("GET", "HEAD", "OPTIONS")
    }
    assert changing - open_to_all == covered


@pytest.mark.parametrize(("method", "path", "action"), [
    ("GET", "/api/v1/runs/{run_id}", Action.READ),
    ("POST", "/api/v1/runs", Action.CREATE),
    ("POST", "/api/v1/runs/{run_id}/clone", Action.CREATE),
    ("DELETE", "/api/v1/runs/{run_id}", Action.CHANGE_OWNED),
    ("POST", "/api/v1/runs/{run_id}/metrics", Action.CHANGE_OWNED),
    ("PATCH", "/api/v1/experiments/{experiment_id}", Action.ADMINISTER),
    ("POST", "/api/v1/sweeps/{sweep_id}/cancel", Action.CHANGE_OWNED),
    ("POST", "/api/v1/workers/{worker_id}/stop", Action.ADMINISTER),  # names what the table does not know: admins only
])
def test_what_a_route_does_follows_from_its_method_and_path(method, path, action):
    assert action_of(method, path) is action


def test_a_member_refused_another_tokens_run_is_told_why_and_what_it_may_do(api, database, secrets):
    run_id, _, _ = seed_targets(database, "other")
    response = api.delete(f"{API}/runs/{run_id}", headers={"Authorization": f"Bearer {secrets['member']}"})
    assert response.status_code == 403
    assert response.json()["detail"] == (
        "the API token 'member' is a member: a member changes only the runs and sweeps it created, and another token created this one"
    )


def test_a_run_submitted_through_the_api_belongs_to_its_token(api, database, secrets):
    member = {"Authorization": f"Bearer {secrets['member']}"}
    run = api.post(f"{API}/runs", json={"config": TINY}, headers=member).json()
    assert api.patch(f"{API}/runs/{run['id']}", json={"name": "mine"}, headers=member).status_code == 200
    other = {"Authorization": f"Bearer {secrets['other']}"}
    assert api.patch(f"{API}/runs/{run['id']}", json={"name": "theirs"}, headers=other).status_code == 403


def test_a_member_gets_404_not_403_for_a_run_that_does_not_exist(api, secrets):
    response = api.delete(f"{API}/runs/999999", headers={"Authorization": f"Bearer {secrets['member']}"})
    assert response.status_code == 404


def test_runs_created_without_auth_belong_to_no_token_and_only_admins_change_them(api, database, secrets):
    with database.transaction() as session:
        run_id = runs.create(session=session, config=None, execute=False, name="anonymous").id
    for role, code in (("member", 403), ("viewer", 403), ("admin", 200)):
        response = api.patch(f"{API}/runs/{run_id}", json={"name": role}, headers={"Authorization": f"Bearer {secrets[role]}"})
        assert response.status_code == code, (role, response.text)


def test_every_role_reads_everything(api, database, secrets):
    run_id, experiment_id, _ = seed_targets(database, "other")
    for role in ROLES:
        headers = {"Authorization": f"Bearer {secrets[role]}"}
        for path in (f"/runs/{run_id}", "/runs", f"/runs/{run_id}/metrics", f"/experiments/{experiment_id}", "/catalog"):
            assert api.get(API + path, headers=headers).status_code == 200, (role, path)


def test_with_auth_off_there_are_no_roles(client, database):
    run_id, experiment_id = seed_targets_without_owner(database)
    assert client.delete(f"{API}/runs/{run_id}").status_code == 204
    assert client.delete(f"{API}/experiments/{experiment_id}").status_code == 204


def seed_targets_without_owner(database) -> tuple[int, int]:
    with database.transaction() as session:
        run = runs.create(session=session, config=TrainConfig.model_validate(TINY), execute=True)
        return run.id, experiments.create(session=session, name="shared").id
