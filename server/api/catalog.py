"""The catalogue: what a run can be made of, for forms and clients."""

from __future__ import annotations

from functools import cache

from fastapi import APIRouter

from server.api.deps import SettingsDep
from server.schemas import Catalog, DatasetOut, FusionOut, Limits, MethodOut, ModalityOut, PresetOut
from server.store.metrics import MAX_POINTS_PER_REQUEST, MAX_STEP
from server.sweeps.spec import SweepCreate
from trainer.config import FUSIONS, TrainConfig
from trainer.datasets import DATASETS
from trainer.methods import METHODS
from trainer.presets import PRESETS

router = APIRouter(tags=["catalog"])


@cache
def _static() -> tuple[list[DatasetOut], list[MethodOut], list[FusionOut], list[PresetOut], dict, dict]:
    datasets = [
        DatasetOut(
            name=name, title=entry.info.title, description=entry.info.description, task=entry.info.task,
            classes=list(entry.info.classes),
            modalities={m: ModalityOut(kind=spec.kind, shape=list(spec.shape)) for m, spec in entry.info.modalities.items()},
            default_modalities=list(entry.info.default_modalities), splits=entry.info.splits,
            reads_disk=entry.reads_disk, source=entry.info.source, params=entry.params.model_json_schema(),
        )
        for name, entry in DATASETS.items()
    ]
    methods = [
        MethodOut(
            name=name, title=spec.title, description=spec.description, single_modality=spec.single_modality,
            fusions=list(spec.fusions) if spec.fusions is not None else None, params=spec.params_schema(),
        )
        for name, spec in METHODS.items()
    ]
    fusions = [FusionOut(name=name, description=text) for name, text in FUSIONS.items()]
    presets = [
        PresetOut(name=p.name, title=p.title, description=p.description, metric=p.metric, config=p.config)
        for p in PRESETS.values()
    ]
    return datasets, methods, fusions, presets, TrainConfig.model_json_schema(), SweepCreate.model_json_schema()


@router.get("/catalog", summary="Datasets, methods, fusions, the config schema and this server's limits")
def catalog(settings: SettingsDep) -> Catalog:
    datasets, methods, fusions, presets, config_schema, sweep_schema = _static()
    return Catalog(
        datasets=datasets, methods=methods, fusions=fusions, presets=presets, config_schema=config_schema,
        sweep_schema=sweep_schema,
        limits=Limits(
            max_epochs=settings.max_epochs, max_active_runs=settings.max_active_runs,
            max_request_bytes=settings.max_request_bytes, max_points_per_request=MAX_POINTS_PER_REQUEST,
            max_step=MAX_STEP,
        ),
    )
