"""A run's files (checkpoints and anything else its worker writes under ``<artifact_dir>/runs/<id>``)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter
from fastapi.responses import FileResponse

from server.api.deps import RunDep, SettingsDep
from server.policy import resolve_inside
from server.schemas import ArtifactList, ArtifactOut
from server.store.errors import NotFound

router = APIRouter(prefix="/runs/{run_id}/artifacts", tags=["artifacts"])


@router.get("", summary="The run's files")
def list_artifacts(run: RunDep, settings: SettingsDep) -> ArtifactList:
    root = settings.run_artifacts(run.id)
    files = sorted(path for path in root.rglob("*") if path.is_file() and not path.name.startswith(".")) if root.is_dir() else []
    return ArtifactList(items=[
        ArtifactOut(
            path=path.relative_to(root).as_posix(), size=path.stat().st_size,
            modified=datetime.fromtimestamp(path.stat().st_mtime, UTC),
        )
        for path in files
    ])


@router.get(
    "/{path:path}", summary="Download one of the run's files (e.g. best.pt)", response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "The file."}},
)
def download_artifact(run: RunDep, path: str, settings: SettingsDep) -> FileResponse:
    target = resolve_inside(settings.run_artifacts(run.id), path)
    if target is None or not target.is_file():
        raise NotFound(f"run {run.id} has no file {path!r}")
    return FileResponse(target, filename=target.name)

