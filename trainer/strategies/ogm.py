"""OGM and OGM-GE: on-the-fly gradient modulation (Peng et al., "Balanced Multimodal Learning via
On-the-fly Gradient Modulation", CVPR 2022), as MILES.md section 5 states them.

Every batch, after ``backward()``:

- each modality's share of the fused logits ``out_m`` (`MultiHeadFusionNet.logit_shares`: for concat,
  the fused layer's columns on ``z_m`` plus ``b / M``; for sum, the modality's own projection);
- its score ``s_m = sum_i softmax(out_m)_i[y_i]`` (Eq. 8-9 of the paper);
- the discrepancy ratio ``rho_m = s_m / s_other`` (Eq. 9) and the coefficient (Eq. 10)
  ``k_m = 1 - tanh(alpha * rho_m)`` when ``rho_m > 1``, else 1;
- every gradient of modality m's encoder is multiplied by ``k_m`` during epochs ``[start, end]``
  (Eq. 11), and OGM-GE then adds ``N(0, std(g)^2)`` to it (Eq. 12).

Where we follow the OGM-GE code (GeWu-Lab/OGM-GE_CVPR2022, main.py) and BalanceBenchmark
(balancemm/trainer/OGM_trainer.py): the coefficient takes ``alpha * rho`` itself, not ``rho - 1``
(so it drops from 1 to ``1 - tanh(alpha)`` as soon as one modality leads); the GE noise's standard
deviation is the unmodulated gradient's (``grad.std()`` before scaling, plus 1e-8), and every encoder in
the window receives noise, the non-dominant one too; the fused loss alone trains the encoders (the
auxiliary heads learn on detached features, as in `joint`, so that they measure without shaping).

Where we choose what they leave open: every encoder parameter is modulated (the code takes only 4-D
convolution weights, BalanceBenchmark every non-bias tensor; MILES.md section 5); a tie (``rho = 1``)
modulates neither (the code's ``else`` branch would modulate audio); with more than two modalities
``rho_m = s_m / min_j s_j``, as BalanceBenchmark does for three; for a multilabel task the score of a
sample is the mean over classes of the probability its sigmoid gives the true value; for a
one-element parameter (no spread) the GE noise is 1e-8.

FiLM and gated fusion do not split the fused logits into one share per modality, so the method's
catalogue entry refuses them when the config is validated (the OGM-GE code computes shares for them
from halves of the output layer's columns, which are not per-modality there).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from trainer.methods import OgmParams
from trainer.models import MultiHeadFusionNet, Outputs
from trainer.strategies.base import EpochResult, Event, Strategy
from trainer.trials import TrialTrainings

GE_EPSILON = 1e-8


def modality_scores(shares: Tensor, labels: Tensor) -> Tensor:
    """``s_m = sum_i p_m(y_i | x_i)`` for stacked shares ``(M, batch, classes)``: the softmax of each share at
    the true class (for multilabel ``labels``, the sigmoid's probability of each true value, averaged over
    classes). One value per modality, in the stacking order."""
    if labels.dim() == 1:
        return shares.softmax(dim=2).gather(2, labels.expand(shares.shape[0], -1)[..., None]).sum(dim=(1, 2))
    p = shares.sigmoid()
    return (labels * p + (1 - labels) * (1 - p)).mean(dim=2).sum(dim=1)


def modulation_coefficients(scores: Tensor, alpha: float) -> tuple[Tensor, Tensor]:
    """Eq. 9 and 10: the ratios ``rho_m = s_m / min_j s_j`` (``s_A / s_B`` for two modalities) and the
    coefficients ``k_m = 1 - tanh(alpha * rho_m)`` if ``rho_m > 1``, else 1."""
    ratios = scores / scores.min().clamp_min(torch.finfo(torch.float32).tiny)
    return ratios, torch.where(ratios > 1, 1 - torch.tanh(alpha * ratios), 1.0)


def gradient_spreads(grads: list[Tensor]) -> list[Tensor]:
    """Each gradient's standard deviation plus 1e-8, the spread of Eq. 12's noise: ``std(g)`` with Bessel's
    correction (as ``Tensor.std``), 0 for a one-element tensor. All gradients at once, in the two-pass form
    ``||g - mean(g)|| / sqrt(n - 1)``: one foreach subtraction and one foreach norm, no host round trip."""
    spreads = torch._foreach_norm(torch._foreach_sub(grads, [g.mean() for g in grads]))
    torch._foreach_div_(spreads, [math.sqrt(max(g.numel() - 1, 1)) for g in grads])
    torch._foreach_add_(spreads, GE_EPSILON)
    return spreads


def enhance_(grads: Tensor | list[Tensor], coefficients: Tensor | list[Tensor]) -> None:
    """OGM-GE's Eq. 12 in place, over a list of gradients (or one): ``g <- k * g + N(0, (std(g) + 1e-8)^2)``,
    the spread taken before scaling; ``coefficients`` is one ``k`` for all or one per gradient.

    One draw of normal numbers for all the gradients, as many as they hold elements (the method's own
    cost, and most of its time on small encoders), cut into one view per gradient; the spreads, the
    scaling and the noise are a few foreach operations whatever the number of gradients. On the CPU the
    draw gives the same numbers as one draw per gradient in turn when every gradient holds a multiple of
    16 elements (PyTorch fills normals 16 at a time); otherwise, and on a GPU, the stream differs, the
    distribution (mean 0, each gradient's own spread) does not."""
    grads = [grads] if isinstance(grads, Tensor) else grads
    if not grads:
        return
    spreads = gradient_spreads(grads)
    torch._foreach_mul_(grads, coefficients)
    numels = [g.numel() for g in grads]
    noise = torch.randn(sum(numels), dtype=grads[0].dtype, device=grads[0].device)
    torch._foreach_addcmul_(grads, [n.view_as(g) for n, g in zip(noise.split(numels), grads, strict=True)], spreads)


class OgmStrategy(Strategy):
    """OGM: the dominant modality's encoder gradients scaled by ``1 - tanh(alpha * rho)`` every batch."""

    name = "ogm"
    detach_aux = True
    params: OgmParams
    generalization_enhancement = False

    def __init__(self, params: OgmParams, modalities: list[str], lr: float) -> None:
        super().__init__(params, modalities, lr)
        self.epoch = 1  # the epoch being trained (set by before_epoch)
        self._coef: dict[str, float] = {}
        self._encoders: nn.Module | None = None
        self._parameters: list[list[nn.Parameter]] = []
        self._reset()

    def _reset(self) -> None:
        self.batches = 0
        # The ratios and coefficients of each batch in the window, on the device, averaged once at the epoch's
        # end: a few floats a batch, and no tensor operation of their own on every batch.
        self.per_batch: list[tuple[Tensor, Tensor]] = []

    def in_window(self, epoch: int) -> bool:
        return self.params.start_epoch <= epoch <= self.params.end_epoch

    def before_epoch(self, epoch: int, trials: TrialTrainings) -> list[Event]:
        self.epoch = epoch
        self._reset()
        return []

    def _encoder_parameters(self, model: MultiHeadFusionNet) -> list[list[nn.Parameter]]:
        """Each modality's encoder parameters, in modality order; listed once per model, not on every batch
        (walking a module tree costs more than the scaling itself on small encoders)."""
        if self._encoders is not model.encoders:
            self._encoders = model.encoders
            self._parameters = [list(model.encoders[m].parameters()) for m in self.modalities]
        return self._parameters

    @torch.no_grad()
    def after_backward(self, model: nn.Module, outputs: Outputs, labels: Tensor) -> None:
        self.batches += 1
        if not self.in_window(self.epoch):
            return
        assert isinstance(model, MultiHeadFusionNet)
        # In float32, outside autocast: under mixed precision the features are bfloat16 or float16. Every
        # modality at once, on the device and without a host round trip: this runs on every batch.
        shares = model.logit_shares({m: z.detach().float() for m, z in outputs.features.items()})
        ratios, coefficients = modulation_coefficients(modality_scores(shares, labels), self.params.alpha)
        grads = [[p.grad for p in params if p.grad is not None] for params in self._encoder_parameters(model)]
        if self.generalization_enhancement:  # every encoder at once: one draw, one foreach per step
            enhance_([g for encoder in grads for g in encoder],
                     [k for k, encoder in zip(coefficients.unbind(), grads, strict=True) for _ in encoder])
        else:
            for k, encoder in zip(coefficients, grads, strict=True):
                if encoder:
                    torch._foreach_mul_(encoder, k)
        self.per_batch.append((ratios, coefficients))

    def _means(self) -> tuple[dict[str, float], ...]:
        """Means over the epoch's batches of the coefficients (1 outside the window), the ratios and the
        share of batches each modality led (NaN outside the window)."""
        if not self.in_window(self.epoch) or not self.per_batch:
            nan = dict.fromkeys(self.modalities, float("nan"))
            return dict.fromkeys(self.modalities, 1.0), nan, nan
        ratios, coefficients = (torch.stack(column) for column in zip(*self.per_batch, strict=True))
        rows = torch.stack([coefficients.mean(0), ratios.mean(0), (coefficients < 1).float().mean(0)]).tolist()
        return tuple(dict(zip(self.modalities, row, strict=True)) for row in rows)

    def on_epoch_end(self, result: EpochResult) -> list[Event]:
        coef, ratio, dominant = self._means()
        if not self.in_window(self.epoch):
            where = "before" if self.epoch < self.params.start_epoch else "after"
            message = (f"no modulation: epoch {self.epoch} is {where} the window "
                       f"{self.params.start_epoch}..{self.params.end_epoch}")
        else:
            lead = max(dominant, key=lambda m: dominant[m])
            message = (f"{lead} led in {dominant[lead]:.0%} of batches; mean gradient coefficients "
                       + ", ".join(f"{m} {coef[m]:.3f}" for m in self.modalities))
        data = {
            "epoch": self.epoch, "coefficients": coef, "ratios": ratio, "dominant_share": dominant,
            "alpha": self.params.alpha, "window": [self.params.start_epoch, self.params.end_epoch],
            "in_window": self.in_window(self.epoch), "batches": self.batches,
            "noise": self.generalization_enhancement,
        }
        self._coef = coef
        return [Event("ogm.modulation", message, data)]

    def epoch_metrics(self) -> dict[str, float]:
        return {f"ogm/coef/{m}": k for m, k in self._coef.items()}


class OgmGeStrategy(OgmStrategy):
    """OGM-GE: OGM, then Gaussian noise with each gradient's own standard deviation (Eq. 12)."""

    name = "ogm_ge"
    generalization_enhancement = True
