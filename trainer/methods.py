"""The training methods a run can use, with their hyperparameters.

This module is the catalogue only (no torch import), so that the server can
validate a submitted spec and describe the methods without loading PyTorch.
Each entry names the `trainer.strategies` class that implements it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Self

from pydantic import Field, field_validator, model_validator

from trainer.spec import SpecModel, field_error
from trainer.tuned_rates import FILE_NAME, tuned_rates

if TYPE_CHECKING:
    from trainer.strategies.base import Strategy


class NoParams(SpecModel):
    """This method has no hyperparameters of its own."""


class ParamsMismatch(ValueError):
    """A hyperparameter that does not fit the run's dataset or modalities."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class RunParams(SpecModel):
    """Hyperparameters that can only be checked (or completed) knowing the run's dataset and modalities."""

    def for_run(self, dataset: str, modalities: list[str], optimizer: str) -> Self:
        """These parameters fitted to the run; `ParamsMismatch` names the field that does not fit."""
        return self


class MilesParams(SpecModel):
    """MILES hyperparameters (MILES.md section 4; the paper's recommended start is tau 0.2, mu 0.5)."""

    tau: float = Field(
        0.2, ge=0, le=1,
        description="Imbalance threshold: MILES acts when the utilization gap |u_A - u_B| exceeds tau.",
    )
    mu: float = Field(
        0.5, gt=0, le=1,
        description="Reduction factor: the dominant modality's learning rate becomes mu * lr for the next epoch.",
    )
    utilization_split: Literal["val", "train", "train_running"] = Field(
        "val",
        description="Split whose metrics give the conditional utilization: 'val' (paper default); 'train' (the "
        "training split evaluated after the epoch, in eval mode, as validation is; the paper's ablation finds it "
        "about as good); 'train_running' (the running metrics of the training pass: no extra evaluation, but "
        "measured in train mode while the weights moved).",
    )


class MsesParams(SpecModel):
    """MSES hyperparameters (Fujimori et al., ACPR 2019)."""

    patience: int = Field(
        5, ge=1, le=1000,
        description="Epochs without improvement of a modality's validation metric (its own head) after which "
        "that modality's encoder and head are frozen; the fusion part is watched on the fused metric alike.",
    )


class MslrParams(RunParams):
    """MSLR hyperparameters (Yao and Mihalcea, Findings of ACL 2022): one learning rate per modality."""

    lrs: dict[str, float] | None = Field(
        None,
        title="Learning rates per modality",
        description="Learning rate of each modality's encoder and head, e.g. {\"pix\": 0.001, \"fou\": 0.0003}; "
        "it must name exactly the run's modalities. Default: the rates `miles tune-lr` recorded for the dataset "
        f"in MILES_HOME/{FILE_NAME}. The fusion part trains at the run's lr.",
    )

    @field_validator("lrs")
    @classmethod
    def _rates_in_range(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        for modality, rate in (value or {}).items():
            if not 0 < rate <= 1:
                raise ValueError(f"the rate of {modality!r} must satisfy 0 < lr <= 1 (got {rate!r})")
        return value

    def for_run(self, dataset: str, modalities: list[str], optimizer: str) -> Self:
        if self.lrs is None:
            rates = tuned_rates(dataset, modalities, optimizer)
            if rates is None:
                flag = "" if optimizer == "adam" else f" --optimizer {optimizer}"
                commands = "; ".join(f"miles tune-lr --dataset {dataset} --modality {m}{flag}" for m in modalities)
                raise ParamsMismatch("lrs", (
                    f"give a learning rate per modality ({', '.join(modalities)}), or record them first with: "
                    f"{commands} (they are kept in MILES_HOME/{FILE_NAME})"
                ))
            return self.model_copy(update={"lrs": rates})
        if set(self.lrs) != set(modalities):
            raise ParamsMismatch("lrs", (
                f"must name exactly the run's modalities ({', '.join(modalities)}); got {', '.join(self.lrs) or 'none'}"
            ))
        return self


class MslrDynamicParams(MslrParams):
    """MSLR-Dynamic: the rates of `MslrParams`, rescaled after each epoch over a window of past epochs."""

    window: int = Field(
        5, ge=1, le=100,
        description="Previous epochs whose mean validation metric (of the modality's head) divides this epoch's "
        "to rescale the modality's initial rate.",
    )


class OgmParams(SpecModel):
    """OGM and OGM-GE hyperparameters (Peng et al., CVPR 2022, Eq. 10; the window's defaults are the
    OGM-GE code's ``--modulation_starts 0 --modulation_ends 50``, counted from epoch 1 here)."""

    alpha: float = Field(
        0.8, gt=0, le=10,
        description="Modulation strength: the dominant modality's gradients are scaled by 1 - tanh(alpha * rho) "
        "(0.8 is the OGM-GE code's value on CREMA-D).",
    )
    start_epoch: int = Field(1, ge=1, le=1000, description="First epoch (counted from 1) whose gradients are modulated.")
    end_epoch: int = Field(50, ge=1, le=1000, description="Last epoch (inclusive) whose gradients are modulated.")

    @model_validator(mode="after")
    def _window(self) -> OgmParams:
        if self.end_epoch < self.start_epoch:
            raise field_error(
                "OgmParams", "end_epoch", self.end_epoch,
                f"must be at least start_epoch ({self.start_epoch}): the modulation window is start_epoch..end_epoch",
            )
        return self


class GBlendParams(SpecModel):
    """Gradient-Blending hyperparameters (Wang, Tran and Feiszli, CVPR 2020, section 3.3). The paper gives no
    defaults for these; ours are project choices, small enough for the trials to cost a few epochs."""

    mode: Literal["offline", "online"] = Field(
        "offline",
        description="'offline': estimate the loss weights once, before training; 'online': re-estimate them "
        "every super_epoch epochs from the current weights.",
    )
    super_epoch: int = Field(
        5, ge=1, le=100,
        description="Epochs of each trial training (the window over which G and O are measured), and in "
        "online mode the epochs between two estimates.",
    )
    holdout: float = Field(
        0.1, gt=0, lt=1,
        description="Fraction of the training split held out of the trial trainings to measure their "
        "generalization (the validation split is never used).",
    )


class AdaptiveParams(SpecModel):
    """`adaptive` hyperparameters (trainer/strategies/adaptive.py; docs/methods.md). The defaults are project
    choices fixed before any comparison ran; none was chosen on test data."""

    tau: float = Field(
        0.05, ge=0, le=1,
        description="Dead zone: the dominant modality is slowed only by the excess of the smoothed utilization "
        "gap over tau (MILES's threshold, smaller because the gap is smoothed and the brake is gradual).",
    )
    kappa: float = Field(
        2.0, gt=0, le=100,
        description="Strength: the dominant modality's rate is max(mu, 1 - kappa * (smoothed gap - tau)) * lr.",
    )
    mu: float = Field(
        0.5, gt=0, le=1,
        description="Floor of the multiplier: the dominant modality never runs slower than mu * lr (MILES's brake).",
    )
    beta: float = Field(
        0.5, ge=0, lt=1,
        description="Smoothing of the per-epoch utilization: u_avg = beta * u_avg + (1 - beta) * u (0: no smoothing).",
    )
    patience: int = Field(
        3, ge=1, le=1000,
        description="Epochs without a new best validation metric of the weak modality's head after which that "
        "head counts as at its ceiling and the brake is released (until it improves again).",
    )
    boost: float = Field(
        1.0, ge=1, le=10,
        description="Ceiling of the weak modality's speed-up: while the rule acts, the weak modality's rate is "
        "min(boost, 1 + kappa * (smoothed gap - tau)) * lr (1: never sped up, the rule only brakes).",
        # Left out of the spec at 1, so that every spec written before this field existed reads the same.
        exclude_if=lambda boost: boost == 1.0,
    )


@dataclass(frozen=True)
class MethodSpec:
    name: str
    title: str
    description: str
    params: type[SpecModel]
    strategy: str  # "module:Class" in trainer.strategies, imported on demand
    # A run of it trains one modality alone (a modality's ceiling): its config names exactly one
    # modality, and a grid expands it to one cell per modality of the pair instead of per fusion.
    single_modality: bool = False
    # The fusions it works with (None: every fusion); a config naming another is refused at validation.
    fusions: tuple[str, ...] | None = None

    def strategy_class(self) -> type[Strategy]:
        module, _, name = self.strategy.partition(":")
        return getattr(importlib.import_module(module), name)

    def params_schema(self) -> dict[str, Any]:
        return self.params.model_json_schema()

    def params_for_run(self, params: dict[str, Any], dataset: str, modalities: list[str], optimizer: str) -> dict[str, Any]:
        """``params`` validated and fitted to the run's dataset, modalities and optimizer (`ParamsMismatch`: what
        does not fit)."""
        model = self.params.model_validate(params)
        return model.for_run(dataset, modalities, optimizer).model_dump() if isinstance(model, RunParams) else model.model_dump()


METHODS: dict[str, MethodSpec] = {
    spec.name: spec
    for spec in (
        MethodSpec(
            "joint",
            "Joint training (vanilla)",
            "The fused loss alone. The per-modality heads are trained on detached features, so they "
            "measure each encoder without shaping it: the reference every table compares against.",
            NoParams,
            "trainer.strategies.joint:JointStrategy",
        ),
        MethodSpec(
            "joint_aux",
            "Joint training with auxiliary losses",
            "The fused loss plus one auxiliary loss per modality head (MILES's Eq. 3) and no balancing: "
            "separates what MILES gains from its auxiliary losses from what it gains from its schedule.",
            NoParams,
            "trainer.strategies.joint:JointAuxStrategy",
        ),
        MethodSpec(
            "miles",
            "MILES",
            "Modality-Informed Learning rate Scheduler: after each epoch, lowers the learning rate of "
            "the modality the model relies on most when the conditional utilization gap exceeds tau.",
            MilesParams,
            "trainer.strategies.miles:MilesStrategy",
        ),
        MethodSpec(
            "unimodal",
            "One modality alone",
            "The one modality the run names, with the encoder and the head it has in the multimodal model and "
            "nothing fused: that modality's ceiling (the paper's Table I row). A grid runs it once per modality.",
            NoParams,
            "trainer.strategies.unimodal:UnimodalStrategy",
            single_modality=True,
        ),
        MethodSpec(
            "mses",
            "MSES (modality-specific early stopping)",
            "Fujimori et al. 2019: every head learns (Eq. 3); a modality whose own validation metric has not "
            "improved for `patience` epochs is frozen (learning rate 0), and the run ends once every part is.",
            MsesParams,
            "trainer.strategies.mses:MsesStrategy",
        ),
        MethodSpec(
            "mslr_keep",
            "MSLR-Keep (modality-specific learning rates)",
            "Yao and Mihalcea 2022: each modality trains at its own best unimodal rate (`lrs`, or the ones "
            "`miles tune-lr` recorded), the fusion at the global rate.",
            MslrParams,
            "trainer.strategies.mslr:MslrKeepStrategy",
        ),
        MethodSpec(
            "mslr_smooth",
            "MSLR-Smooth",
            "MSLR with each modality's rate moved halfway toward the mean of the modalities' rates, narrowing "
            "the gap between them.",
            MslrParams,
            "trainer.strategies.mslr:MslrSmoothStrategy",
        ),
        MethodSpec(
            "mslr_dynamic",
            "MSLR-Dynamic",
            "MSLR whose rates follow the modalities' progress: after each epoch a modality's rate is its initial "
            "rate times its validation metric over the mean of the previous `window` epochs.",
            MslrDynamicParams,
            "trainer.strategies.mslr:MslrDynamicStrategy",
        ),
        MethodSpec(
            "ogm",
            "OGM (on-the-fly gradient modulation)",
            "Peng et al., CVPR 2022: every batch, the modality whose share of the fused logits scores the true "
            "class higher has its encoder's gradients scaled down by 1 - tanh(alpha * ratio). Needs a fusion "
            "whose logits split into one share per modality: concat or sum.",
            OgmParams,
            "trainer.strategies.ogm:OgmStrategy",
            fusions=("concat", "sum"),
        ),
        MethodSpec(
            "ogm_ge",
            "OGM-GE (gradient modulation with generalization enhancement)",
            "OGM plus Gaussian noise, with the standard deviation of each encoder gradient, added to the "
            "modulated gradients (Peng et al., CVPR 2022). Concat or sum fusion.",
            OgmParams,
            "trainer.strategies.ogm:OgmGeStrategy",
            fusions=("concat", "sum"),
        ),
        MethodSpec(
            "gblend",
            "G-Blend (gradient blending)",
            "Wang et al., CVPR 2020: the loss is a weighted sum over the fused head and each modality's head, "
            "with weights w_i = (G_i / O_i^2) / Z from short trial trainings on held-out training data "
            "(generalization gained over overfitting), estimated once (offline) or every super-epoch (online).",
            GBlendParams,
            "trainer.strategies.gblend:GBlendStrategy",
        ),
        MethodSpec(
            "adaptive",
            "Adaptive (this project's balancing schedule)",
            "MILES's losses and utilization, with a smoothed utilization gap, a continuous brake on the dominant "
            "modality (max(mu, 1 - kappa * (gap - tau))) instead of MILES's on/off one, released while the weak "
            "modality's head is no longer improving (its ceiling, not its speed, is then the gap).",
            AdaptiveParams,
            "trainer.strategies.adaptive:AdaptiveStrategy",
        ),
    )
}
