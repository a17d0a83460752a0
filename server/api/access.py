"""Who may do what: the roles of API tokens, enforced for every route of the API by one dependency, `authorize`.

=======  =====  ===========================  ============================  =====================
role     reads  submits runs, grids and      changes a run (rename, tags,  changes an experiment
                sweeps, creates experiments, metrics, events, cancel,      (rename, describe,
                clones a run                 delete) or cancels a sweep    delete)
=======  =====  ===========================  ============================  =====================
viewer   yes    no                           no                            no
member   yes    yes                          only those it created         no
admin    yes    yes                          any                           yes
=======  =====  ===========================  ============================  =====================

A run or a sweep belongs to the token that created it (``owner_token_id``; a sweep's
trials belong to the sweep's owner); those created with auth off belong to no token,
so only admins change them. Experiments group
everyone's runs: members create them (by name, when submitting) and admins keep
them tidy. Revoking one's own token (``POST /api/v1/session/revoke``) is every
role's right; it lives outside this module's routes.

What a route does follows from its method and path (`action_of`): a read (GET,
HEAD, OPTIONS); a change of the run or sweep named by a ``{run_id}`` or ``{sweep_id}`` in the path (`OWNED`); a change
of anything else named in the path, which only admins make; or, without a name in
the path, a creation. `EXCEPTIONS` lists the routes that read otherwise (a clone
reads its source run and creates a new one). A new state-changing route is
therefore admin-only when it names something the table above does not know, until
it is declared here. With auth off there are no tokens and no roles: every request
is let through (`server.api.local` guards that mode).
"""

from __future__ import annotations

import enum

from fastapi import HTTPException, Request, status
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from server.api.admission import SAFE_METHODS
from server.api.deps import ID_MAX, Caller, CallerDep, DatabaseDep
from server.db import Database
from server.models import Base, Run, Sweep


class Action(enum.Enum):
    READ = "read"
    CREATE = "create"
    CHANGE_OWNED = "change a run or sweep"
    ADMINISTER = "administer"


# The path parameters that name something a member may change when it created it.
OWNED: dict[str, type[Base]] = {"run_id": Run, "sweep_id": Sweep}

# By method and the end of the route's template (a router may report it without the /api/v1 prefix).
EXCEPTIONS: dict[tuple[str, str], Action] = {
    ("POST", "/runs/{run_id}/clone"): Action.CREATE,  # the source run is only read
}


def action_of(method: str, path: str | None) -> Action:
    """What a request to the route ``path`` (its template, e.g. ``/api/v1/runs/{run_id}``) does;
    a change through a route not known (None) is one only admins may make."""
    for (known_method, ending), action in EXCEPTIONS.items():
        if method == known_method and path is not None and path.endswith(ending):
            return action
    if method in SAFE_METHODS:
        return Action.READ
    if path is None:
        return Action.ADMINISTER
    if "{" not in path:
        return Action.CREATE
    names = {part[1:-1].split(":")[0] for part in path.split("/") if part.startswith("{")}
    return Action.CHANGE_OWNED if len(names) == 1 and names <= OWNED.keys() else Action.ADMINISTER


def _forbidden(message: str) -> HTTPException:
    return HTTPException(status.HTTP_403_FORBIDDEN, message)


def _owner_of(database: Database, model: type[Base], raw_id: str) -> tuple[bool, int | None]:
    """Whether the run or sweep ``raw_id`` exists, and its owner. A malformed id is left to the route, which
    answers 422."""
    if not raw_id.isdigit() or not 1 <= int(raw_id) <= ID_MAX:
        return False, None
    with database.transaction(write=False) as session:  # short, and ended before the request's own begins
        found = session.execute(select(model.owner_token_id).where(model.id == int(raw_id))).one_or_none()
    return (False, None) if found is None else (True, found[0])


def check(caller: Caller, action: Action, owner: int | None = None) -> None:
    """Raise 403, saying why, when ``caller`` may not take ``action`` (on a run or sweep of ``owner``)."""
    if caller.role is None or caller.role == "admin" or action is Action.READ:
        return
    who = f"the API token {caller.token_name!r} is a {caller.role}"
    if caller.role == "viewer":
        raise _forbidden(f"{who}: it may read, not change anything; ask an admin for a member token")
    if action is Action.ADMINISTER:
        raise _forbidden(f"{who}: only admin tokens may change experiments and other shared things")
    if action is Action.CHANGE_OWNED and owner != caller.token_id:
        raise _forbidden(f"{who}: a member changes only the runs and sweeps it created, and another token created this one")


async def authorize(request: Request, caller: CallerDep, database: DatabaseDep) -> None:
    """403 unless the caller's role allows what the request does (see the module's table); a coroutine,
    which reads the database in the thread pool only for a member's change of a run or sweep."""
    if caller.role is None or caller.role == "admin":
        return
    action = action_of(request.method, getattr(request.scope.get("route"), "path", None))
    owner = None
    if action is Action.CHANGE_OWNED and caller.role == "member":
        [(name, raw_id)] = [(name, value) for name, value in request.path_params.items() if name in OWNED]
        exists, owner = await run_in_threadpool(_owner_of, database, OWNED[name], str(raw_id))
        if not exists:
            return  # the route answers 404 (or 422), to every role alike
    check(caller, action, owner)
